"""The model card (README.md) of an export: Hub metadata and a body whose every number is read from the run's
eval/ files, so the card cannot say more than the run measured."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData, try_to_load_from_cache

from emoscope.core.config import TrainConfig, train_command
from emoscope.core.errors import UserError
from emoscope.core.runfolder import EVAL, eval_file, read_config, read_labels, split_metrics, split_per_emotion
from emoscope.models.backbone import hub_id, resolve_backbone

DATASET = "google-research-datasets/go_emotions"
# (metric_config, name, key in eval/test_metrics.json): the headline numbers and their bootstrap 95% CIs.
CARD_METRICS = (
    ("macro", "macro-F1", "macro_f1"),
    ("macro, 95% CI low", "macro-F1 95% CI low", "macro_f1_ci95_low"),
    ("macro, 95% CI high", "macro-F1 95% CI high", "macro_f1_ci95_high"),
    ("micro", "micro-F1", "micro_f1"),
    ("micro, 95% CI low", "micro-F1 95% CI low", "micro_f1_ci95_low"),
    ("micro, 95% CI high", "micro-F1 95% CI high", "micro_f1_ci95_high"),
)
STRATEGIES = {
    "fixed": "One fixed threshold, {threshold}, for every label: set by hand, not tuned",
    "global": "One threshold for every label, the one that maximised macro-F1 on the dev split",
    "per_emotion": "Each label's own threshold, the one that maximised its F1 on the dev split",
    "per_emotion_bagged": "Each label's own threshold: the median, over 50 bootstrap resamples of the dev split, "
    "of the threshold that maximised its F1",
}
CITATION = """@inproceedings{demszky2020goemotions,
  title = {{GoEmotions}: A Dataset of Fine-Grained Emotions},
  author = {Demszky, Dorottya and Movshovitz-Attias, Dana and Ko, Jeongwoo and Cowen, Alan and Nemade, Gaurav
            and Ravi, Sujith},
  booktitle = {Proceedings of the 58th Annual Meeting of the Association for Computational Linguistics},
  year = {2020},
  pages = {4040--4054}
}"""
RARE_SUPPORT = 50  # held-out examples below which a label's F1 is called out as resting on few examples


def read_eval(run_dir: Path) -> tuple[str, dict, list[dict]]:
    """(split, summary, per-emotion rows) as training wrote them to eval/: test's, or dev's for a run that had
    no test split."""
    for split in ("test", "dev"):
        metrics, table = eval_file(run_dir, split_metrics(split)), eval_file(run_dir, split_per_emotion(split))
        if metrics.is_file() and table.is_file():
            with table.open(newline="", encoding="utf-8") as handle:
                return split, json.loads(metrics.read_text(encoding="utf-8")), list(csv.DictReader(handle))
    raise UserError(f"{run_dir / EVAL} holds no test or dev evaluation: the model card's numbers come from them")


def backbone_license(name: str) -> str:
    """The backbone's license from its own model card, where one is at hand; else "unknown"."""
    try:
        source = resolve_backbone(name)
    except UserError:
        return "unknown"
    readme = Path(source) / "README.md" if Path(source).is_dir() else try_to_load_from_cache(source, "README.md")
    if not isinstance(readme, str | Path) or not Path(readme).is_file():
        return "unknown"
    return ModelCard.load(readme).data.license or "unknown"


def card_metadata(config: TrainConfig, split: str, scores: dict, name: str) -> ModelCardData:
    official = config.train_file is None
    dataset = {"dataset_type": DATASET if official else "custom", "dataset_name": "GoEmotions" if official else "own"}
    results = [
        EvalResult(
            task_type="text-classification",
            task_name="Multi-label emotion classification",
            **dataset,
            dataset_split=split,
            metric_type="f1",
            metric_name=metric_name,
            metric_config=metric_config,
            metric_value=scores[key],
        )
        for metric_config, metric_name, key in CARD_METRICS
    ]
    return ModelCardData(
        license=backbone_license(config.backbone),
        language="en",
        datasets=[DATASET] if official else None,
        base_model=hub_id(config.backbone),
        pipeline_tag="text-classification",
        library_name="transformers",
        tags=["emoscope", "multi-label-classification", "emotion"],
        model_name=name,
        eval_results=results,
    )


def _number(cell: str) -> str:
    """A per-emotion CSV cell to three decimals; eval/ writes an undefined number as an empty cell."""
    return f"{float(cell):.3f}" if cell else "n/a"


def _training_data(config: TrainConfig) -> tuple[str, str]:
    """What the run was trained on, and the domain that limits it."""
    data = "the GoEmotions training split" if config.train_file is None else f"`{Path(config.train_file).name}`"
    if config.max_train_examples:
        data += f" ({config.max_train_examples:,} of its examples)"
    domain = (
        "Trained on English Reddit comments (GoEmotions, 2005-2019, labelled by raters): other languages, registers "
        "and platforms are outside what it was measured on, and the labels carry the raters' reading of the text."
        if config.train_file is None
        else f"Trained and measured on {data} alone: other text is outside what it was measured on."
    )
    return data, domain


def _loading(remote_code: str | None) -> tuple[str, str, str]:
    """The pipeline's remote-code argument, where its thresholds are, and a sentence on how the folder loads."""
    if remote_code:
        return (
            ", trust_remote_code=True",
            'json.load(open("PATH/thresholds.json"))["thresholds"]  # chosen on dev',
            f"This folder needs `trust_remote_code=True`: {remote_code}.",
        )
    return (
        "",
        "classify.model.config.thresholds  # chosen on dev, also in thresholds.json",
        "This folder is the standard transformers class: it loads without remote code.",
    )


def model_card(run_dir: Path, remote_code: str | None) -> str:
    """README.md for an export of `run_dir` (`remote_code`: why loading it needs trust_remote_code, or None)."""
    config = read_config(run_dir)
    labels = read_labels(run_dir)["labels"]
    split, scores, per_emotion = read_eval(run_dir)
    backbone = hub_id(config.backbone) or Path(config.backbone).name
    name = f"emoscope {backbone.split('/')[-1]} ({config.head} head), {len(labels)} emotions"
    metadata = card_metadata(config, split, scores, name)
    held_out = (
        f"the test split ({scores['n_examples']} texts, never used for any choice)"
        if split == "test"
        else f"the dev split ({scores['n_examples']} texts; this run had no test split, and its thresholds and "
        "checkpoint were chosen on these texts, so the numbers are optimistic)"
    )
    rare = sorted(per_emotion, key=lambda row: int(row["support"]))
    rare = [row for row in rare if int(row["support"]) < RARE_SUPPORT] or rare[:3]
    columns = ("f1", "precision", "recall", "threshold")
    table = "\n".join(
        f"| {row['label']} | " + " | ".join(_number(row[c]) for c in columns) + f" | {row['support']} |"
        for row in per_emotion
    )
    data, domain = _training_data(config)
    trust, thresholds, loading = _loading(remote_code)

    def ci(metric: str) -> str:
        low, high = scores[f"{metric}_ci95_low"], scores[f"{metric}_ci95_high"]
        return f"{scores[metric]:.3f} (95% CI {low:.3f} to {high:.3f})"

    body = f"""
# {name}

Multi-label emotion classification of English text: one sigmoid score for each of {len(labels)} labels
({", ".join(labels)}),
and a label is predicted when its score reaches its threshold. Trained with emoscope
on {data}, its checkpoint chosen on dev.

## Results on {held_out}

- macro-F1: {ci("macro_f1")}
- micro-F1: {ci("micro_f1")}

The intervals are bootstrap 95% intervals over those texts (1,000 resamples).

## Thresholds: chosen on dev, never on test

{STRATEGIES[config.threshold_strategy].format(threshold=config.threshold)}. They are in `thresholds.json`
{"" if remote_code else "and in `config.json` (`thresholds`, by label) "}and the numbers above apply them
unchanged.

## Per emotion ({split})

| emotion | F1 | precision | recall | threshold | {split} support |
|---|---|---|---|---|---|
{table}

## Limits

- {domain}
- Rare emotions: {", ".join(f"{row['label']} ({row['support']} {split} examples)" for row in rare)}; their F1
  rests on few examples and moves a lot between runs.
- A text is cut at {config.max_len} tokens, as in training (pass `truncation=True` to the pipeline).

## How it was trained

```bash
{train_command(config)}
```

## How to load it

{loading}

```python
from transformers import pipeline

classify = pipeline("text-classification", model="PATH_OR_HUB_ID", top_k=None{trust})
scores = classify(["thank you so much!"], truncation=True)  # every label with its sigmoid score
thresholds = {thresholds}
predicted = [s["label"] for s in scores[0] if s["score"] >= thresholds[s["label"]]]
```

ONNX, from the run folder: `emoscope export RUN_DIR --format onnx`, then
`Predictor(RUN_DIR, backend="onnx")` (onnxruntime and tokenizers alone run `RUN_DIR/onnx`).
emoscope: `from emoscope import Predictor; Predictor(RUN_DIR).predict(["thank you so much!"])`.

## Citation

```bibtex
{CITATION}
```
"""
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n{body}"))
