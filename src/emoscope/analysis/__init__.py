"""Representation analysis: the tracker (named hook points, activation cache), metrics, figures, summary."""

from emoscope.analysis.probe import read_probe, select_probe, write_probe
from emoscope.analysis.run import read_cooccurrence, run_analysis, write_cooccurrence
from emoscope.analysis.tracker import (
    RepresentationTracker,
    capture,
    capture_epoch,
    capture_path,
    capture_probe,
    capture_texts,
    load_capture,
    save_capture,
)

__all__ = [
    "RepresentationTracker",
    "capture",
    "capture_epoch",
    "capture_path",
    "capture_probe",
    "capture_texts",
    "load_capture",
    "read_cooccurrence",
    "read_probe",
    "run_analysis",
    "save_capture",
    "select_probe",
    "write_cooccurrence",
    "write_probe",
]
