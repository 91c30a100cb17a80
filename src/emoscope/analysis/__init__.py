"""Representation analysis: the tracker (named hook points, activation cache), metrics, figures, summary."""

from emoscope.analysis.observer import TrackerObserver
from emoscope.analysis.probe import read_cooccurrence, read_probe, select_probe, write_cooccurrence, write_probe
from emoscope.analysis.run import run_analysis
from emoscope.analysis.tracker import (
    RepresentationTracker,
    capture,
    capture_epoch,
    capture_texts,
    load_capture,
    save_capture,
    text_batches,
)
from emoscope.runfolder import capture_path

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
