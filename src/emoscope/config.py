"""Typed training configuration, YAML presets, and command-line overrides of any field."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from emoscope.errors import UserError
from emoscope.vocab import HEADS, POOLINGS, PRECISIONS, TAXONOMIES, THRESHOLD_STRATEGIES, check_head_pooling


@dataclass
class TrainConfig:
    preset: str = "cpu-default"
    # data
    data_dir: str | None = None
    taxonomy: str = "original"
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    dev_fraction: float = 0.1  # carved from train_file, with the seed, when no dev_file is given
    skip_bad_rows: bool = False
    max_train_examples: int | None = None  # a random subset, for quick experiments and tests
    max_eval_examples: int | None = None
    # model
    backbone: str = "all-MiniLM-L6-v2"
    head: str = "linear"
    pooling: str = "mean"
    head_dropout: float = 0.1
    backbone_dropout: float | None = None  # None keeps the backbone's own config
    train_last_layers: int | None = None  # None trains every layer
    freeze_embeddings: bool = False
    max_len: int = 64
    trust_pickle: bool = False  # a backbone with only pickled weights (.bin) can run code when loaded
    # optimisation
    epochs: int = 3
    batch_size: int = 32  # global: split over ranks, before accumulation
    grad_accum: int = 1
    lr: float = 1e-4
    head_lr: float | None = 1e-3  # None: same as lr
    layer_lr_decay: float = 1.0  # lr of layer i is lr * decay ** (layers above it)
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    schedule: str = "linear"
    clip_grad: float | None = 1.0
    label_smoothing: float = 0.0
    pos_weight: str = "none"
    focal_gamma: float = 0.0
    precision: str = "auto"  # bf16 where the hardware runs it natively, else fp32 (fp16 on older GPUs)
    seed: int = 42
    early_stopping_patience: int | None = 2
    group_by_length: bool = True
    # thresholds, always chosen on dev
    threshold_strategy: str = "per_emotion"
    threshold: float = 0.5
    lexical_baseline: bool = True  # also fit TF-IDF + logistic regression (baseline/): the floor to beat
    # run folder
    run_dir: str | None = None
    overwrite: bool = False
    resume: bool = False
    checkpoint_every: int = 500  # optimizer steps; every epoch end too
    keep_checkpoints: int = 2
    log_every: int = 20
    eval_batch_size: int = 128
    num_threads: int | None = None
    progress: bool = True
    # representation tracking
    visualize: bool = False
    probe_size: int = 2000
    capture_pooling: str = "mean"
    extra: dict = field(default_factory=dict)  # free-form notes kept in config.yaml

    def validate(self) -> TrainConfig:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "max_len": self.max_len,
                    "grad_accum": self.grad_accum, "eval_batch_size": self.eval_batch_size,
                    "probe_size": self.probe_size, "checkpoint_every": self.checkpoint_every}
        if self.head_lr is not None:
            positive["head_lr"] = self.head_lr
        for name, value in positive.items():
            if not value > 0:  # NaN too
                raise UserError(f"--{name} must be positive, got {value}")
        choices = {"schedule": ("linear", "cosine", "constant"), "precision": PRECISIONS,
                   "pos_weight": ("none", "balanced", "sqrt"), "taxonomy": TAXONOMIES,
                   "threshold_strategy": THRESHOLD_STRATEGIES, "capture_pooling": POOLINGS,
                   "pooling": POOLINGS, "head": HEADS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"--{name} must be one of {', '.join(allowed)}, got '{getattr(self, name)}'")
        ranges = {"warmup_ratio": (0, 1), "dev_fraction": (0, 1), "label_smoothing": (0, 1),
                  "head_dropout": (0, 1), "threshold": (0, 1), "layer_lr_decay": (0, 1)}
        for name, (low, high) in ranges.items():
            value = getattr(self, name)
            if not (low <= value <= high) or (name in {"dev_fraction", "layer_lr_decay"} and value == low):
                raise UserError(f"--{name} must be in ({low}, {high}], got {value}")
        if self.train_last_layers is not None and self.train_last_layers < 0:
            raise UserError(f"--train_last_layers must be >= 0, got {self.train_last_layers}")
        check_head_pooling(self.head, self.pooling)
        return self


PRESETS_PACKAGE = "emoscope.presets"
_ALIASES = {"train_csv": "train_file", "dev_csv": "dev_file", "test_csv": "test_file", "save_dir": "run_dir",
            "output_dir": "run_dir"}


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(PRESETS_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict:
    """A preset name (packaged) or a path to a YAML file of fields."""
    path = Path(name)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise UserError(f"preset file {path} does not exist")
        text, origin = path.read_text(encoding="utf-8"), str(path)
    else:
        if name not in preset_names():
            raise UserError(f"unknown preset '{name}'; choose one of {', '.join(preset_names())} or a .yaml path")
        text, origin = (resources.files(PRESETS_PACKAGE) / f"{name}.yaml").read_text(encoding="utf-8"), name
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"preset {origin} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(values, dict):
        raise UserError(f"preset {origin} must be a mapping of field: value")
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise UserError(f"preset {origin} has unknown fields: {', '.join(unknown)}")
    return values


def _base_type(annotation) -> type:
    """`int | None` -> int; `bool` -> bool (annotations are strings under `from __future__`)."""
    hint = typing.get_type_hints(TrainConfig)[annotation] if isinstance(annotation, str) else annotation
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got '{text}'")


def _optional(convert):
    def parse(text: str):
        return None if text.lower() in {"none", "null"} else convert(text)
    parse.__name__ = convert.__name__  # argparse names it in errors: "invalid float value: 'fast'"
    return parse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per field, spelled --a-b or --a_b; booleans also work as bare flags (--visualize)."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in {"preset", "extra"}:
            continue
        kind = _base_type(hints[f.name])
        names = {f"--{f.name}", f"--{f.name.replace('_', '-')}"}
        names |= {f"--{alias}" for alias, target in _ALIASES.items() if target == f.name}
        if kind is bool:
            parser.add_argument(*sorted(names), dest=f.name, nargs="?", const=True, type=_parse_bool,
                                default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        else:
            parser.add_argument(*sorted(names), dest=f.name, type=_optional(kind), default=argparse.SUPPRESS,
                                metavar=kind.__name__.upper(), help=argparse.SUPPRESS)


def resolve_config(preset: str, overrides: dict) -> TrainConfig:
    """Preset values, then command-line overrides; the result is validated."""
    values = {**load_preset(preset), **overrides}
    values["preset"] = preset
    return TrainConfig(**values).validate()
