"""Export: a finished run as files other tools load without emoscope: a `transformers` folder (`hf`, with its
modeling template `hf_modeling`) and an ONNX graph with optional int8 model (`onnx`)."""
