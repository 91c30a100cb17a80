"""emoscope: fine-grained emotion classification and layer-by-layer representation analysis.

The public API, imported on first use so that `import emoscope` stays light:

>>> from emoscope import Predictor
>>> Predictor("runs/cpu-default").predict(["thank you so much!"], top_k=3)

Each sub-package is one stage, and data flows one way between them: the order is written once, in
pyproject.toml's `[tool.importlinter]` layers (`lint-imports` checks it).
"""

from emoscope.core.version import RUN_FORMAT_VERSION, __version__

_PUBLIC = {
    "Predictor": "emoscope.inference.predictor",
    "EnsemblePredictor": "emoscope.inference.ensemble",
    "OnnxPredictor": "emoscope.inference.onnx",
    "TrainConfig": "emoscope.core.config",
    "train_run": "emoscope.recipes.train",
    "crossfit_run": "emoscope.recipes.crossfit",
    "export_hf": "emoscope.export.hf",
    "export_onnx": "emoscope.export.onnx",
    "score_file": "emoscope.inference.corpus",
}

__all__ = ["RUN_FORMAT_VERSION", "__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'emoscope' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_PUBLIC[name]), name)
