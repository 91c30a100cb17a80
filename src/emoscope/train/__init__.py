"""The one training loop; its typed configuration and presets live in `emoscope.core.config`, and what follows
training (thresholds, final scores, export, report) in `emoscope.recipes.train`."""

from emoscope.train.loop import Trained, TrainingObserver, train

__all__ = ["Trained", "TrainingObserver", "train"]
