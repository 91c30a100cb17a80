"""Representation analysis of a run: the tracker (named hook points, activation cache), the structure metrics,
figures and summary; `pipeline.run_analysis` is `emoscope analyze`."""

from emoscope.analysis.observer import TrackerObserver
from emoscope.analysis.pipeline import run_analysis
from emoscope.analysis.probe import read_cooccurrence, read_probe, select_probe, write_cooccurrence, write_probe
from emoscope.analysis.tracker import (
    RepresentationTracker,
    capture,
    capture_epoch,
    capture_texts,
    load_capture,
    save_capture,
    text_batches,
)
from emoscope.core.runfolder import capture_path

__all__ = [
    "RepresentationTracker",
    "TrackerObserver",
    "capture",
    "capture_epoch",
    "capture_path",
    "capture_texts",
    "load_capture",
    "read_cooccurrence",
    "read_probe",
    "run_analysis",
    "save_capture",
    "select_probe",
    "text_batches",
    "write_cooccurrence",
    "write_probe",
]
