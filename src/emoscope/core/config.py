"""Typed training configuration, YAML presets, and command-line overrides of any field.

Each field carries its help line, its help group and, where it has one, the set or range of values it accepts:
`emoscope train --help` and the validation of presets, overrides and a run's config.yaml are generated from
them, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from emoscope.core import version
from emoscope.core.errors import UserError
from emoscope.core.vocab import HEADS, POOLINGS, PRECISIONS, TAXONOMIES, THRESHOLD_STRATEGIES, check_head_pooling

# Allowed values of the fields that name a choice: the owners' vocabularies (emoscope.core.vocab) and the loop's own.
CHOICES = {
    "taxonomy": TAXONOMIES,
    "head": HEADS,
    "pooling": POOLINGS,
    "schedule": ("linear", "cosine", "constant"),
    "pos_weight": ("none", "balanced", "sqrt"),
    "precision": PRECISIONS,
    "threshold_strategy": THRESHOLD_STRATEGIES,
    "capture_pooling": POOLINGS,
}


@dataclass(frozen=True)
class Interval:
    """The numbers a field accepts; NaN is never inside."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return "positive" if (self.low, self.low_open) == (0, True) else f">= {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


POSITIVE = Interval(0, low_open=True)
NON_NEGATIVE = Interval(0)
PROBABILITY = Interval(0, 1)
BELOW_ONE = Interval(0, 1, high_open=True)  # dropout, smoothing: 1 would leave nothing to learn from

GROUPS = ("data", "model", "optimisation", "distillation", "thresholds", "run folder", "analysis")


def _option(group: str):
    """A field factory for one help group: `_data(default, "help line", allowed)`."""

    def make(default, help: str, allowed: Interval | tuple | None = None, **kwargs):
        return field(default=default, metadata={"group": group, "help": help, "allowed": allowed}, **kwargs)

    return make


_data, _model, _optimisation, _distillation, _thresholds, _run_folder, _analysis = map(_option, GROUPS)


@dataclass
class TrainConfig:
    preset: str = field(
        default="cpu-default",
        metadata={"help": "a packaged preset or a YAML file of fields; the fields below override it"},
    )
    # data
    data_dir: str | None = _data(
        None, "folder of the GoEmotions files; none: $EMOSCOPE_DATA_DIR, else the cache, else downloaded"
    )
    taxonomy: str = _data(
        "original", "the label set: the 28 original emotions, or Ekman's or the sentiment groups", CHOICES["taxonomy"]
    )
    train_file: str | None = _data(
        None, "a labelled training file in any supported layout, instead of the official train split"
    )
    dev_file: str | None = _data(None, "a labelled dev file (thresholds and early stopping are chosen on it)")
    test_file: str | None = _data(None, "a labelled test file, scored once at the end")
    text_column: str = _data(
        "text", "the column (CSV, Parquet) or field (JSONL) of train_file, dev_file and test_file that holds the text"
    )
    dev_fraction: float = _data(
        0.1,
        "share of train_file carved out as dev, with split_seed, when no dev_file is given",
        Interval(0, 1, low_open=True, high_open=True),
    )
    split_seed: int = _data(
        42,
        "seeds the data a run draws: the dev carved off train_file and the max_train_examples subset, so runs "
        "that differ only in seed share their train, dev and probe texts (a run folder without it used its seed)",
        Interval(0, 2**32 - 1),
    )
    skip_bad_rows: bool = _data(False, "skip and count malformed rows instead of stopping at the first")
    min_raters: int = _data(
        2,
        "raw one-row-per-rater CSVs (goemotions_*.csv): keep a label when at least this many raters chose it, as "
        "the dataset paper did; comments left with no label are dropped and counted",
        POSITIVE,
    )
    max_train_examples: int | None = _data(None, "train on a random subset of this size (quick experiments)", POSITIVE)
    max_eval_examples: int | None = _data(
        None, "score only the first N texts of dev and of test (quick experiments)", POSITIVE
    )
    augment_copies: int = _data(
        0,
        "train on this many word-dropped copies of each train text as well (data/augment.py); a copy keeps its "
        "text's gold labels and gets its own soft label from the teachers; an epoch covers texts and copies",
        NON_NEGATIVE,
    )
    augment_word_drop: float = _data(0.15, "with augment_copies: the chance that a copy loses each word", BELOW_ONE)
    crossfit_folds: int | None = _data(
        None,
        "split train into this many folds (by id and seed) for a cross-fitted teacher; set by emoscope crossfit",
        Interval(2),
    )
    crossfit_fold: int | None = _data(
        None, "train without this fold (0-based) of crossfit_folds: the fold the teacher will label", NON_NEGATIVE
    )
    # model
    backbone: str = _model("all-MiniLM-L6-v2", "a Hugging Face encoder: hub id (cached when offline) or local folder")
    head: str = _model("linear", "the classification head over the backbone's hidden states", CHOICES["head"])
    pooling: str = _model("mean", "how the linear head pools tokens into one vector", CHOICES["pooling"])
    head_dropout: float = _model(0.1, "dropout before the head's classifier", BELOW_ONE)
    dropout_samples: int = _model(
        1,
        "multi-sample dropout (Inoue, 2019): the head runs this many times per batch in training, each with its "
        "own dropout mask over the same encoder output, and the loss is their mean; 1: plain dropout",
        POSITIVE,
    )
    backbone_dropout: float | None = _model(
        None, "every dropout of the backbone; none keeps the backbone's own", BELOW_ONE
    )
    train_last_layers: int | None = _model(
        None, "fine-tune only the last N encoder layers (embeddings frozen); none trains every layer", NON_NEGATIVE
    )
    freeze_embeddings: bool = _model(False, "keep the embedding layer fixed")
    cache_frozen_layers: bool = _model(
        False,
        "with --train_last_layers: run the frozen layers once, without dropout, and train on their saved outputs "
        "every epoch (one process; memory: the train texts' hidden states)",
    )
    init_from: list[str] = field(
        default_factory=list,
        metadata={
            "group": "model",
            "allowed": None,
            "help": "run, ensemble or crossfit folders whose weights, averaged (a folder of several runs: its "
            "members'), start the model in place of the pretrained backbone and a new head",
        },
    )
    max_len: int = _model(64, "tokens per text, special tokens included; longer texts are truncated", POSITIVE)
    trust_pickle: bool = _model(
        False, "accept a backbone with only pickled weights (.bin): loading a pickle can run code"
    )
    emoji_names: bool = _model(
        False,
        "read the train split's emoji that the vocabulary lacks by their names (a crying face as 'loudly crying "
        "face', not [UNK]); the names go into the run's tokenizer, so every reader of the run reads them too",
    )
    # optimisation
    epochs: int = _optimisation(3, "passes over the training data", POSITIVE)
    batch_size: int = _optimisation(
        32, "examples per optimizer step, over all processes, before accumulation", POSITIVE
    )
    grad_accum: int = _optimisation(1, "batches accumulated per optimizer step", POSITIVE)
    lr: float = _optimisation(1e-4, "peak learning rate of the backbone (AdamW)", POSITIVE)
    head_lr: float | None = _optimisation(1e-3, "peak learning rate of the head; none: the same as lr", POSITIVE)
    layer_lr_decay: float = _optimisation(
        1.0, "layer i learns at lr * decay ** (layers above it); 1: no decay", Interval(0, 1, low_open=True)
    )
    weight_decay: float = _optimisation(0.01, "AdamW weight decay of the matrices (not biases or norms)", NON_NEGATIVE)
    warmup_ratio: float = _optimisation(
        0.06, "share of the optimizer steps spent warming the learning rate up", PROBABILITY
    )
    schedule: str = _optimisation("linear", "learning-rate decay after warm-up", CHOICES["schedule"])
    clip_grad: float | None = _optimisation(1.0, "largest gradient norm; 0 or none: no clipping", NON_NEGATIVE)
    label_smoothing: float = _optimisation(0.0, "targets move this far towards 0.5", BELOW_ONE)
    pos_weight: str = _optimisation(
        "none",
        "weight of each emotion's positives in the loss, from train counts (rare emotions weigh more)",
        CHOICES["pos_weight"],
    )
    focal_gamma: float = _optimisation(0.0, "focal-loss exponent; 0: plain binary cross-entropy", NON_NEGATIVE)
    asl_gamma_neg: float = _optimisation(
        0.0,
        "asymmetric loss (Ridnik et al., 2021): focusing exponent of the negative terms only, so the many easy "
        "negatives of a rare emotion weigh less; 0: off",
        NON_NEGATIVE,
    )
    asl_clip: float = _optimisation(
        0.05, "with asl_gamma_neg: a negative whose probability is below this margin costs nothing", BELOW_ONE
    )
    rdrop_weight: float = _optimisation(
        0.0,
        "R-Drop (Liang et al., 2021): each batch runs twice, with two dropout masks, and the loss adds this "
        "weight times the symmetric KL divergence between the two passes' probabilities; costs a second pass; "
        "0: off",
        NON_NEGATIVE,
    )
    aux_weight: float = _optimisation(
        0.0,
        "weight of the auxiliary Ekman and sentiment losses (original taxonomy): a group's logit is the "
        "log-sum-exp of its emotions' logits, trained on whether any of them is a gold label; no extra "
        "parameters, so the saved model is unchanged; 0: off",
        NON_NEGATIVE,
    )
    precision: str = _optimisation(
        "auto", "auto: bf16 where the hardware runs it natively, else fp32 (fp16 on older GPUs)", CHOICES["precision"]
    )
    seed: int = _optimisation(
        42, "seeds initialisation, batch order and dropout (the data drawn: split_seed)", Interval(0, 2**32 - 1)
    )
    early_stopping_patience: int | None = _optimisation(
        2, "stop after this many epochs without a better dev macro-F1; none: run every epoch", POSITIVE
    )
    group_by_length: bool = _optimisation(True, "batch texts of similar length together (less padding)")
    ema_decay: float | None = _optimisation(
        None,
        "keep an exponential moving average of the weights, updated every step with this decay; dev, the saved "
        "weights and all that follows use the average (the raw weights' dev macro-F1 is logged beside it)",
        Interval(0, 1, low_open=True, high_open=True),
    )
    compile: bool = _optimisation(
        False, "torch.compile the training step's forward and backward (inductor; the first steps compile)"
    )
    train_streams: int = _optimisation(
        1,
        "on the CPU, split each batch into this many parts trained side by side, each on one thread of its own "
        "(their gradients add up to the batch's; each part draws its own dropout masks); 1: one stream over all "
        "threads",
        POSITIVE,
    )
    # distillation (emoscope distill)
    teachers: list[str] = field(
        default_factory=list,
        metadata={
            "group": "distillation",
            "allowed": None,
            "help": "run, ensemble or crossfit folders whose probabilities on train the student also learns from",
        },
    )
    distill_weight: float = _distillation(
        0.5, "share of the teachers' soft-label loss; the gold labels' loss has the rest", PROBABILITY
    )
    copies_distill_weight: float | None = _distillation(
        None,
        "with augment_copies: the soft-label loss's share for the copies (none: --distill_weight); 1 trains them "
        "on the teachers' labels alone, since a copy may have lost the words its gold labels rest on",
        PROBABILITY,
    )
    distill_temperature: float = _distillation(
        1.0, "both sides' logits are divided by it in the soft-label loss (times its square)", POSITIVE
    )
    # thresholds, always chosen on dev
    threshold_strategy: str = _thresholds(
        "per_emotion",
        "fixed: --threshold for all; global, per_emotion, per_emotion_bagged: tuned on dev",
        CHOICES["threshold_strategy"],
    )
    threshold: float = _thresholds(0.5, "the probability threshold of the fixed strategy", PROBABILITY)
    lexical_baseline: bool = _thresholds(True, "also fit TF-IDF + logistic regression (baseline/): the floor to beat")
    # run folder
    run_dir: str | None = _run_folder(None, "the run folder to write; none: runs/<preset>-<date>-<time>")
    overwrite: bool = _run_folder(False, "replace an existing run folder")
    resume: bool = _run_folder(False, "continue an existing run folder from its last complete checkpoint")
    checkpoint_every: int = _run_folder(
        500, "optimizer steps between checkpoints (and one at every epoch end)", POSITIVE
    )
    keep_checkpoints: int = _run_folder(2, "how many of the newest checkpoints to keep", POSITIVE)
    log_every: int = _run_folder(20, "optimizer steps between lines of metrics.jsonl", POSITIVE)
    eval_batch_size: int = _run_folder(128, "texts per batch when scoring dev and test", POSITIVE)
    num_threads: int | None = _run_folder(None, "CPU threads for torch; none: torch's default", POSITIVE)
    deterministic: bool = _run_folder(
        False,
        "deterministic algorithms only (torch.use_deterministic_algorithms): on a GPU, a rerun or a resumed run "
        "repeats bit for bit, at some cost in speed; CPU runs repeat without it",
    )
    progress: bool = _run_folder(True, "show a progress bar")
    # representation analysis
    visualize: bool = _analysis(False, "capture the probe set every epoch, then analyse and write report.html")
    probe_size: int = _analysis(2000, "texts in the fixed probe set the captures record", POSITIVE)
    capture_pooling: str = _analysis(
        "mean", "how a capture pools the token vectors of a layer", CHOICES["capture_pooling"]
    )
    extra: dict = field(
        default_factory=dict, metadata={"group": "run folder", "help": "free-form notes kept in config.yaml"}
    )

    def validate(self) -> TrainConfig:
        """Every field's type and range, before anything starts; ints are widened where a float is expected."""
        hints = typing.get_type_hints(TrainConfig)
        for f in dataclasses.fields(self):
            setattr(self, f.name, _checked(f.name, getattr(self, f.name), hints[f.name], f.metadata.get("allowed")))
        check_head_pooling(self.head, self.pooling)
        if (self.crossfit_fold is None) != (self.crossfit_folds is None):
            raise UserError("--crossfit_fold and --crossfit_folds go together (emoscope crossfit sets both)")
        if self.asl_gamma_neg and self.focal_gamma:
            raise UserError("--asl_gamma_neg and --focal_gamma are two ways to focus the loss; set one of them")
        if self.aux_weight and self.taxonomy != "original":
            raise UserError(
                "--aux_weight needs --taxonomy original: the Ekman and sentiment groups are groups of its emotions"
            )
        if self.train_streams > 1 and self.compile:
            raise UserError("--train_streams above 1 and --compile do not go together; choose one")
        if self.cache_frozen_layers and self.train_last_layers is None:
            raise UserError("--cache_frozen_layers needs --train_last_layers: it saves the frozen layers' outputs")
        if self.cache_frozen_layers and self.compile:
            raise UserError("--cache_frozen_layers and --compile do not go together; choose one")
        if self.copies_distill_weight is not None and not (self.augment_copies and self.teachers):
            raise UserError("--copies_distill_weight needs --augment_copies and a --teacher: it weighs the copies")
        if self.crossfit_fold is not None and self.crossfit_fold >= self.crossfit_folds:
            raise UserError(
                f"--crossfit_fold must be below --crossfit_folds ({self.crossfit_folds}), got {self.crossfit_fold}"
            )
        return self


def _kind(annotation) -> tuple[type, bool]:
    """`int | None` -> (int, True); `bool` -> (bool, False)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None)), True
    return typing.get_origin(annotation) or annotation, False  # list[str] -> list


_TYPE_WORDS = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "a mapping",
    list: "a list of strings",
}


def _checked(name: str, value, annotation, allowed: Interval | tuple | None):
    kind, optional = _kind(annotation)
    if value is None and optional:
        return None
    if kind is float:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind is list:
        fits = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:  # True is an int to Python, not to a config
        fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    got = "none" if value is None else repr(value)  # `--precision none` and `precision: null` both arrive as None
    if isinstance(allowed, tuple) and (not fits or value not in allowed):
        raise UserError(f"--{name} must be one of {', '.join(allowed)}, got {got}")
    if not fits:
        raise UserError(f"--{name} must be {_TYPE_WORDS[kind]}{' or none' if optional else ''}, got {got}")
    value = float(value) if kind is float else value
    if isinstance(allowed, Interval) and value not in allowed:
        raise UserError(f"--{name} must be {allowed}, got {value!r}")
    return value


PRESETS_PACKAGE = "emoscope.presets"
_ALIASES = {
    "train_csv": "train_file",
    "dev_csv": "dev_file",
    "test_csv": "test_file",
    "save_dir": "run_dir",
    "output_dir": "run_dir",
    "teacher": "teachers",
}


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


class ConfigHelpFormatter(argparse.HelpFormatter):
    """`--batch-size, --batch_size INT` once, rather than the value after every spelling; wide option column."""

    def __init__(self, prog: str):
        super().__init__(prog, max_help_position=44)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return super()._format_action_invocation(action)
        return f"{', '.join(action.option_strings)} {self._format_args(action, action.dest.upper())}"


def _metavar(kind: type, optional: bool, allowed) -> str:
    word = "{" + ",".join(allowed) + "}" if isinstance(allowed, tuple) else kind.__name__.upper()
    return f"{word}|none" if optional else word


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """`--preset`, then one option per field in its help group, spelled --a-b or --a_b (and the old aliases);
    booleans also work as bare flags (--visualize). The help shows each field's type, its value in the default
    preset and its help line; an option stays absent from the namespace unless given (argparse.SUPPRESS)."""
    preset, extra = (next(f for f in dataclasses.fields(TrainConfig) if f.name == name) for name in ("preset", "extra"))
    defaults = resolve_config(preset.default, {})
    parser.epilog = (
        f"Defaults are the {preset.default} preset's; another --preset changes them. A preset file "
        f"can also set extra: {extra.metadata['help']}."
    )
    parser.add_argument(
        "--preset",
        default=preset.default,
        metavar="NAME|FILE",
        help=f"{preset.metadata['help']} (default: %(default)s; packaged: {', '.join(preset_names())})",
    )
    groups = {name: parser.add_argument_group(name) for name in GROUPS}
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in {"preset", "extra"}:
            continue
        kind, optional = _kind(hints[f.name])
        names = [f"--{f.name.replace('_', '-')}", f"--{f.name}"]
        names += [f"--{alias}" for alias, target in _ALIASES.items() if target == f.name]
        shown = yaml.safe_dump(getattr(defaults, f.name), default_flow_style=True).removesuffix("\n...\n").strip()
        help_line = f"{f.metadata['help']} (default: {shown.replace('null', 'none')})".replace("%", "%%")
        options = dict(
            dest=f.name,
            default=argparse.SUPPRESS,
            help=help_line,
            metavar=_metavar(kind, optional, f.metadata["allowed"]),
        )
        if kind is bool:
            groups[f.metadata["group"]].add_argument(
                *dict.fromkeys(names), nargs="?", const=True, type=_parse_bool, **{**options, "metavar": "BOOL"}
            )
        elif kind is list:  # --teacher A --teacher B, or --teachers A B
            groups[f.metadata["group"]].add_argument(
                *dict.fromkeys(names), nargs="+", action="extend", **{**options, "metavar": "DIR"}
            )
        else:
            # "none" is a value of its own where a field's choices include it (--pos_weight none), else "no value"
            chosen = isinstance(f.metadata["allowed"], tuple) and "none" in f.metadata["allowed"]
            groups[f.metadata["group"]].add_argument(
                *dict.fromkeys(names), type=kind if chosen else _optional(kind), **options
            )


def config_overrides(args: argparse.Namespace) -> dict:
    """The fields given on the command line (`add_config_arguments` leaves the others out)."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name != "preset" and hasattr(args, f.name)
    }


def resolve_config(preset: str, overrides: dict) -> TrainConfig:
    """Preset values, then command-line overrides; the result is validated."""
    values = {**load_preset(preset), **overrides}
    values["preset"] = preset
    return TrainConfig(**values).validate()


def preset_differences(config: TrainConfig) -> dict:
    """The fields where `config` departs from its preset, in field order: what its command line said (the
    command that retrains it, what a report shows first). A preset file since removed compares with the
    packaged default."""
    try:
        preset = resolve_config(config.preset, {})
    except UserError:
        preset = resolve_config(TrainConfig.preset, {})
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name != "preset" and getattr(config, f.name) != getattr(preset, f.name)
    }


def train_command(config: TrainConfig) -> str:
    """`emoscope train --preset P --field value ...`: the command that gives `config` again (free-form `extra`
    notes have no option and stay out)."""
    words = ["emoscope", "train", "--preset", config.preset]
    for name, value in preset_differences(config).items():
        if name == "extra":
            continue
        values = value if isinstance(value, list) else [value]
        words += [f"--{name}", *(str(v).lower() if v is None or isinstance(v, bool) else str(v) for v in values)]
    return shlex.join(words)


def config_yaml(config: TrainConfig) -> str:
    """The resolved configuration as YAML: `config.yaml` of a run, and `emoscope train --print_config`."""
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)


def config_from_values(values: dict, origin: str) -> TrainConfig:
    """A saved configuration (a run's config.yaml), validated like a new run's: a field this version does not
    know is refused, naming `origin` and the run-folder format this emoscope reads."""
    if not isinstance(values, dict):
        raise UserError(f"{origin} must be a mapping of field: value")
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise UserError(
            f"{origin}: unknown field '{unknown[0]}' (this emoscope reads run-folder format "
            f"{version.RUN_FORMAT_VERSION}); written by a newer emoscope? upgrade it: pip install -U emoscope"
        )
    if "split_seed" not in values and "seed" in values:  # written before split_seed: its data followed its seed
        values = {**values, "split_seed": values["seed"]}
    try:
        return TrainConfig(**values).validate()
    except UserError as exc:
        raise UserError(f"{origin}: {exc}") from None
