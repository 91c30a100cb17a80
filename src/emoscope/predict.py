"""Moved: `Predictor` lives in `emoscope.inference` (`from emoscope import Predictor`), the transformers export in
`emoscope.export.hf`. This path re-exports them for one release."""

from emoscope.export.hf import export_hf
from emoscope.inference import Predictor

__all__ = ["Predictor", "export_hf"]
