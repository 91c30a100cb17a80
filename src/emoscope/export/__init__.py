"""What leaves a run folder for other tools: a Hugging Face folder (hf.py) and its model card (card.py)."""
