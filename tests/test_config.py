"""The typed configuration: help generated from the fields, --print-config, and validation before anything runs."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

import emoscope
from emoscope.cli import build_parser, main
from emoscope.core.config import GROUPS, TrainConfig, config_overrides, resolve_config
from emoscope.core.errors import UserError
from emoscope.core.runfolder import read_config, write_config

FIELDS = dataclasses.fields(TrainConfig)


def train_help(capsys) -> str:
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # lines wrap at the terminal's width


def test_every_field_has_a_help_line_in_a_group_and_appears_in_train_help(capsys):
    text = train_help(capsys)
    for f in FIELDS:
        assert f.metadata.get("help", "").strip(), f"{f.name} has no help line"
        assert f.name == "preset" or f.metadata["group"] in GROUPS, f.name
        option = f"--{f.name}" if f.name != "extra" else f"extra: {f.metadata['help']}"
        assert option in text, f"{f.name} is missing from emoscope train --help"
    for group in GROUPS:
        assert f" {group}: --" in text
    # Type, default (the default preset's) and help on one option's lines.
    assert "--epochs INT" in text and "passes over the training data (default: 4)" in text
    assert "--schedule {linear,cosine,constant}" in text and "--head-lr, --head_lr FLOAT|none" in text


@pytest.mark.parametrize("spelling", [["--log-every", "5"], ["--log_every", "5"], ["--log_every=5"]])
def test_both_spellings_of_an_option(spelling):
    assert config_overrides(build_parser().parse_args(["train", *spelling])) == {"log_every": 5}


def test_none_is_a_choice_where_the_choices_hold_it_and_no_value_elsewhere():
    parsed = build_parser().parse_args(["train", "--pos_weight", "none", "--head_lr", "none"])
    assert config_overrides(parsed) == {"pos_weight": "none", "head_lr": None}
    assert resolve_config("cpu-default", config_overrides(parsed)).pos_weight == "none"


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        ([], None),
        (["--visualize"], True),
        (["--visualize", "false"], False),
        (["--visualize", "true"], True),
        (["--visualize=no"], False),
    ],
)
def test_booleans_are_bare_flags_or_take_a_value(argv, value):
    assert config_overrides(build_parser().parse_args(["train", *argv])).get("visualize") == value


@pytest.mark.parametrize("flag", ["--print-config", "--print_config"])
def test_print_config_prints_the_resolved_yaml_and_creates_nothing(flag, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "seed-a", flag, "--epochs", "2", "--run_dir", str(run)]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == dataclasses.asdict(resolve_config("seed-a", {"epochs": 2, "run_dir": str(run)}))
    assert printed["backbone"] == "roberta-large" and printed["epochs"] == 2
    assert not run.exists()


def test_print_config_still_validates(tmp_path, capsys):
    assert main(["train", "--print-config", "--log_every", "0"]) == 2
    assert capsys.readouterr().err == "emoscope: error: --log_every must be positive, got 0\n"


# Every field with a range or a set of values, one bad value each: (option, value, problem).
INVALID = [
    ("taxonomy", "plutchik", "must be one of original, ekman, sentiment, got 'plutchik'"),
    ("dev_fraction", "0", "must be in (0, 1), got 0.0"),
    ("dev_fraction", "1", "must be in (0, 1), got 1.0"),
    ("split_seed", "-1", "must be in [0, 4294967295], got -1"),
    ("max_train_examples", "0", "must be positive, got 0"),
    ("max_eval_examples", "-5", "must be positive, got -5"),
    ("min_raters", "0", "must be positive, got 0"),
    ("augment_copies", "-1", "must be >= 0, got -1"),
    ("augment_word_drop", "1", "must be in [0, 1), got 1.0"),
    ("crossfit_folds", "1", "must be >= 2, got 1"),
    ("crossfit_fold", "-1", "must be >= 0, got -1"),
    ("distill_weight", "1.5", "must be in [0, 1], got 1.5"),
    ("copies_distill_weight", "-0.5", "must be in [0, 1], got -0.5"),
    ("distill_temperature", "0", "must be positive, got 0.0"),
    ("head", "transformer", "must be one of linear, mlp-attention, cnn, native, got 'transformer'"),
    ("pooling", "max", "must be one of mean, cls, got 'max'"),
    ("head_dropout", "1", "must be in [0, 1), got 1.0"),
    ("backbone_dropout", "-0.1", "must be in [0, 1), got -0.1"),
    ("backbone_dropout", "1.0", "must be in [0, 1), got 1.0"),
    ("train_last_layers", "-1", "must be >= 0, got -1"),
    ("max_len", "0", "must be positive, got 0"),
    ("epochs", "0", "must be positive, got 0"),
    ("batch_size", "-16", "must be positive, got -16"),
    ("grad_accum", "0", "must be positive, got 0"),
    ("train_streams", "0", "must be positive, got 0"),
    ("lr", "nan", "must be positive, got nan"),
    ("head_lr", "-1", "must be positive, got -1.0"),
    ("layer_lr_decay", "0", "must be in (0, 1], got 0.0"),
    ("layer_lr_decay", "1.5", "must be in (0, 1], got 1.5"),
    ("weight_decay", "-0.01", "must be >= 0, got -0.01"),
    ("warmup_ratio", "1.5", "must be in [0, 1], got 1.5"),
    ("schedule", "step", "must be one of linear, cosine, constant, got 'step'"),
    ("clip_grad", "-1", "must be >= 0, got -1.0"),
    ("label_smoothing", "1", "must be in [0, 1), got 1.0"),
    ("pos_weight", "log", "must be one of none, balanced, sqrt, got 'log'"),
    ("focal_gamma", "-2", "must be >= 0, got -2.0"),
    ("asl_gamma_neg", "-1", "must be >= 0, got -1.0"),
    ("asl_clip", "1", "must be in [0, 1), got 1.0"),
    ("aux_weight", "-0.5", "must be >= 0, got -0.5"),
    ("rdrop_weight", "-1", "must be >= 0, got -1.0"),
    ("dropout_samples", "0", "must be positive, got 0"),
    ("precision", "fp8", "must be one of auto, fp32, bf16, fp16, got 'fp8'"),
    ("seed", "-1", "must be in [0, 4294967295], got -1"),
    ("early_stopping_patience", "0", "must be positive, got 0"),
    ("ema_decay", "1", "must be in (0, 1), got 1.0"),
    ("threshold_strategy", "best", "must be one of fixed, global, per_emotion, per_emotion_bagged, got 'best'"),
    ("threshold", "1.01", "must be in [0, 1], got 1.01"),
    ("checkpoint_every", "0", "must be positive, got 0"),
    ("keep_checkpoints", "0", "must be positive, got 0"),
    ("log_every", "0", "must be positive, got 0"),
    ("eval_batch_size", "0", "must be positive, got 0"),
    ("num_threads", "0", "must be positive, got 0"),
    ("probe_size", "0", "must be positive, got 0"),
    ("capture_pooling", "max", "must be one of mean, cls, got 'max'"),
    ("epochs", "none", "must be an integer, got none"),
    ("precision", "none", "must be one of auto, fp32, bf16, fp16, got none"),  # a choice field without "none"
]


@pytest.mark.parametrize(("option", "value", "problem"), INVALID)
def test_an_invalid_value_is_one_line_before_any_run_folder(option, value, problem, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--run_dir", str(run), f"--{option}", value]) == 2
    assert capsys.readouterr().err == f"emoscope: error: --{option} {problem}\n"
    assert not run.exists()


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (
            ["--asl_gamma_neg", "4", "--focal_gamma", "2"],
            "--asl_gamma_neg and --focal_gamma are two ways to focus the loss; set one of them",
        ),
        (
            ["--aux_weight", "0.3", "--taxonomy", "ekman"],
            "--aux_weight needs --taxonomy original: the Ekman and sentiment groups are groups of its emotions",
        ),
        (
            ["--copies_distill_weight", "1", "--augment_copies", "1"],
            "--copies_distill_weight needs --augment_copies and a --teacher: it weighs the copies",
        ),
        (["--crossfit_fold", "1"], "--crossfit_fold and --crossfit_folds go together (emoscope crossfit sets both)"),
        (["--crossfit_folds", "3"], "--crossfit_fold and --crossfit_folds go together (emoscope crossfit sets both)"),
        (
            ["--crossfit_folds", "3", "--crossfit_fold", "3"],
            "--crossfit_fold must be below --crossfit_folds (3), got 3",
        ),
    ],
)
def test_fields_that_depend_on_each_other_are_checked_together(options, problem, tmp_path, capsys):
    assert main(["train", "--run_dir", str(tmp_path / "run"), *options]) == 2
    assert capsys.readouterr().err == f"emoscope: error: {problem}\n"
    assert not (tmp_path / "run").exists()


def test_teachers_accumulate_and_must_be_a_list_of_folders(tmp_path, capsys):
    assert main(["distill", "--print-config", "--teacher", "a", "--teacher", "b", "--teachers", "c"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["teachers"] == ["a", "b", "c"]
    preset = tmp_path / "p.yaml"
    preset.write_text("teachers: runs/a\n")
    assert main(["train", "--preset", str(preset), "--print-config"]) == 2
    assert capsys.readouterr().err == "emoscope: error: --teachers must be a list of strings, got 'runs/a'\n"


def test_every_field_with_a_range_or_choices_is_exercised():
    checked = {f.name for f in FIELDS if f.metadata.get("allowed") is not None}
    assert checked == {option for option, _, _ in INVALID}


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("epochs: three\n", "--epochs must be an integer, got 'three'"),
        ("epochs: 2.5\n", "--epochs must be an integer, got 2.5"),
        ("epochs: true\n", "--epochs must be an integer, got True"),
        ("visualize: 1\n", "--visualize must be true or false, got 1"),
        ("lr: 1e-4\n", "--lr must be a number, got '1e-4'"),  # YAML 1.1 reads 1e-4 as a string; 1.0e-4 is a number
        ("backbone: 7\n", "--backbone must be a string, got 7"),
        ("extra: [1]\n", "--extra must be a mapping, got [1]"),
    ],
)
def test_a_preset_file_is_type_checked(yaml_text, problem, tmp_path):
    (tmp_path / "mine.yaml").write_text(yaml_text)
    with pytest.raises(UserError) as info:
        resolve_config(str(tmp_path / "mine.yaml"), {})
    assert str(info.value) == problem


def test_an_integer_is_a_valid_float():
    config = resolve_config("cpu-default", {"lr": 1, "threshold": 0})
    assert (config.lr, config.threshold) == (1.0, 0.0) and isinstance(config.lr, float)


def test_read_config_validates_and_refuses_unknown_fields(tmp_path):
    path = tmp_path / "config.yaml"
    write_config(tmp_path, resolve_config("seed-b", {}))
    assert read_config(tmp_path) == resolve_config("seed-b", {})
    values = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**values, "foo": 1}))
    with pytest.raises(UserError) as info:
        read_config(tmp_path)
    assert str(info.value) == (
        f"{path}: unknown field 'foo' (this emoscope reads run-folder format {emoscope.RUN_FORMAT_VERSION}); "
        "written by a newer emoscope? upgrade it: pip install -U emoscope"
    )
    path.write_text(yaml.safe_dump({**values, "log_every": 0}))
    with pytest.raises(UserError) as info:
        read_config(tmp_path)
    assert str(info.value) == f"{path}: --log_every must be positive, got 0"


def test_a_run_folder_written_before_split_seed_keeps_the_data_its_seed_drew(tmp_path):
    write_config(tmp_path, resolve_config("cpu-default", {"seed": 7}))
    values = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert values["split_seed"] == 42 and read_config(tmp_path).split_seed == 42  # recorded, fixed by default
    del values["split_seed"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(values))
    assert read_config(tmp_path).split_seed == 7
