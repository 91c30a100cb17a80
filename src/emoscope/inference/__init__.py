"""Inference: a finished run (or ensemble) as a model that scores texts and files.

`Predictor(folder, backend=...)` is the one loader: it picks the class that serves the folder and backend, the
torch model (`predictor`), an ensemble of runs (`ensemble`) or the ONNX export in onnxruntime (`onnx`);
`corpus` streams a whole file through any of them. Nothing here imports training.
"""

from emoscope.inference.ensemble import EnsemblePredictor
from emoscope.inference.onnx import OnnxPredictor
from emoscope.inference.predictor import Predictor

__all__ = ["EnsemblePredictor", "OnnxPredictor", "Predictor"]
