"""The one training loop; its typed configuration and presets live in `emoscope.config`."""

from emoscope.train.loop import TrainingObserver, train

__all__ = ["TrainingObserver", "train"]
