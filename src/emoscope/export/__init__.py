"""Export: what leaves a run folder for other tools, loadable without emoscope: a Hugging Face folder (`hf`,
with the modeling template `hf_modeling` for emoscope's own heads) and its model card (`card`), and an ONNX graph
with an optional int8 model (`onnx`)."""
