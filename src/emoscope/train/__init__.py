"""The one training loop; its typed configuration and presets live in `emoscope.config`, and what follows
training (thresholds, final scores, export, report) in `emoscope.recipe`."""

from emoscope.train.loop import Trained, TrainingObserver, train

__all__ = ["Trained", "TrainingObserver", "train"]
