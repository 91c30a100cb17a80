"""Training, the stage that makes a run's weights: `setup` (everything before the first step: devices, data, model,
optimizer and schedule, resume), `losses`, `loop` (the loop itself, top to bottom) and `checkpoint` (atomic,
sha256-checked). Its typed configuration and presets live in `emoscope.core.config`; what follows training
(thresholds, final scores, export, report) in `emoscope.recipes.train`."""

from emoscope.train.loop import Trained, TrainingObserver, train
from emoscope.train.setup import SoftTargets

__all__ = ["SoftTargets", "Trained", "TrainingObserver", "train"]
