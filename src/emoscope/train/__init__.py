"""Typed configuration, presets, and the one training loop."""

from emoscope.train.config import TrainConfig, add_config_arguments, preset_names, read_config, resolve_config
from emoscope.train.loop import TrainingObserver, train

__all__ = ["TrainConfig", "TrainingObserver", "add_config_arguments", "preset_names", "read_config",
           "resolve_config", "train"]
