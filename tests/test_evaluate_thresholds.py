"""Threshold strategies: planted optima, agreement with a brute-force sklearn search, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from emoscope.core.errors import DataError, UserError
from emoscope.core.runfolder import load_thresholds, save_thresholds
from emoscope.evaluate.bootstrap import resample_counts
from emoscope.evaluate.metrics import compute_metrics
from emoscope.evaluate.thresholds import (
    GRID,
    ThresholdChoice,
    choose_thresholds,
    fixed,
    tune_global,
    tune_per_label,
    tune_per_label_bagged,
)


def planted_label(pos: float, near_miss: float, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """n positives at ``pos``, n easy negatives at 0.01 and one negative just below at ``near_miss``:
    only thresholds in (near_miss, pos] give F1 = 1, so with ``pos - near_miss < 0.01`` the grid value
    ``pos`` is the single best one."""
    y = np.r_[np.ones(n), np.zeros(n + 1)].astype(int)
    p = np.r_[np.full(n, pos), np.full(n, 0.01), [near_miss]]
    return y, p


def test_fixed():
    assert fixed(0.3, 4).tolist() == [0.3] * 4
    with pytest.raises(UserError, match=r"^thresholds must lie in \[0, 1\]"):
        fixed(1.2, 4)


def test_global_finds_planted_optimum():
    cols = [planted_label(0.62, 0.615), planted_label(0.62, 0.611)]
    y = np.stack([c[0] for c in cols], axis=1)
    p = np.stack([c[1] for c in cols], axis=1)
    assert tune_global(y, p).tolist() == [0.62, 0.62]


def test_per_label_finds_planted_optima_and_fills_empty_labels():
    cuts = [0.07, 0.33, 0.8]
    cols = [planted_label(c, c - 0.005) for c in cuts]
    y = np.stack([c[0] for c in cols] + [np.zeros_like(cols[0][0])], axis=1)
    p = np.stack([c[1] for c in cols] + [np.linspace(0, 1, len(cols[0][0]))], axis=1)
    values, notes = tune_per_label(y, p, ["a", "b", "c", "never"])
    global_t = tune_global(y, p)[0]
    assert values.tolist() == [*cuts, global_t]
    assert notes == [f"no dev positives for never: they get the global tuned threshold {global_t:.2f}"]
    r = compute_metrics(y, p, values, ["a", "b", "c", "never"])
    assert [row["f1"] for row in r.per_label] == [1.0, 1.0, 1.0, 0.0]


def brute_force_f1(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """F1 [L, len(GRID)] by thresholding at every grid value in turn: slow, obvious, independent."""
    out = np.zeros((y.shape[1], len(GRID)))
    for g, t in enumerate(GRID):
        pred = p >= t
        tp, fp, fn = (pred & (y == 1)).sum(0), (pred & (y == 0)).sum(0), (~pred & (y == 1)).sum(0)
        out[:, g] = np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    return out


def test_brute_force_oracle_agrees_with_sklearn():
    rng = np.random.default_rng(1)
    y = (rng.random((50, 3)) < 0.3).astype(int)
    p = rng.random((50, 3))
    f1 = brute_force_f1(y, p)
    for g in (0, 30, 60, 98):
        expected = f1_score(y, (p >= GRID[g]).astype(int), average=None, zero_division=0)
        np.testing.assert_allclose(f1[:, g], expected)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 60), n_labels=st.integers(1, 4))
def test_tuning_matches_brute_force_search(seed, n, n_labels):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.3).astype(int)
    p = np.round(rng.random((n, n_labels)), 2)  # on-grid values exercise the >= boundary
    f1 = brute_force_f1(y, p)
    per_label, _ = tune_per_label(y, p)
    global_t = tune_global(y, p)[0]
    assert global_t == GRID[int(np.argmax(f1.mean(axis=0)))]
    for j in range(n_labels):
        assert per_label[j] == (GRID[int(np.argmax(f1[j]))] if y[:, j].any() else global_t)


@pytest.mark.parametrize("seed", range(5))
def test_per_label_never_scores_below_global_on_dev(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((400, 6)) < [0.02, 0.05, 0.1, 0.2, 0.4, 0.0]).astype(int)
    p = np.clip(0.25 * y + rng.beta(2, 5, size=y.shape), 0, 1)
    names = [f"l{j}" for j in range(6)]
    per_label = compute_metrics(y, p, tune_per_label(y, p)[0], names)
    glob = compute_metrics(y, p, tune_global(y, p), names)
    assert per_label.summary["macro_f1"] >= glob.summary["macro_f1"]
    for a, b in zip(per_label.per_label, glob.per_label, strict=True):
        assert a["f1"] >= b["f1"]


def test_choose_thresholds_dispatch():
    y, p = planted_label(0.4, 0.395)
    y, p = y[:, None], p[:, None]
    assert choose_thresholds("fixed", fixed_value=0.3, label_names=["a"]) == ThresholdChoice(
        "fixed", None, np.array([0.3])
    )
    per = choose_thresholds("per_emotion", y_dev=y, p_dev=p)
    assert (per.strategy, per.chosen_on, per.values.tolist()) == ("per_emotion", "dev", [0.4])
    assert choose_thresholds("global", y, p).values.tolist() == [0.4]
    bagged = choose_thresholds("per_emotion_bagged", y_dev=y, p_dev=p)
    assert (bagged.strategy, bagged.chosen_on) == ("per_emotion_bagged", "dev")


def rare_label_dev(rng: np.random.Generator, n: int = 600, rate: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """A dev sample of one rare, noisy label: positives score around 0.55, negatives around 0.15, wide spread."""
    y = (rng.random(n) < rate).astype(int)
    p = np.clip(np.where(y == 1, rng.normal(0.55, 0.2, n), rng.normal(0.15, 0.12, n)), 0, 1)
    return y[:, None], p[:, None]


def test_bagged_thresholds_vary_less_across_dev_samples_and_carry_over_better():
    """The point of bagging: on a rare label the direct best threshold jumps from one dev sample to the next; the
    bagged median moves less, and scores at least as well on a large unseen sample of the same label."""
    rng = np.random.default_rng(0)
    y_new, p_new = rare_label_dev(rng, n=200_000)
    direct, bagged = [], []
    for _ in range(40):
        y, p = rare_label_dev(rng)
        direct.append(tune_per_label(y, p)[0][0])
        bagged.append(tune_per_label_bagged(y, p)[0][0])
    assert np.std(bagged) < np.std(direct)
    scored = [[f1_score(y_new[:, 0], p_new[:, 0] >= t) for t in values] for values in (direct, bagged)]
    assert np.mean(scored[1]) > np.mean(scored[0])


def test_bagged_thresholds_are_reproducible_and_fill_labels_without_positives():
    rng = np.random.default_rng(1)
    y, p = rare_label_dev(rng)
    y = np.hstack([y, np.zeros_like(y)])
    p = np.hstack([p, rng.random(p.shape)])
    values, notes = tune_per_label_bagged(y, p, ["rare", "never"])
    assert values.tolist() == tune_per_label_bagged(y, p, ["rare", "never"])[0].tolist()
    direct, direct_notes = tune_per_label(y, p, ["rare", "never"])
    assert values[1] == direct[1] and notes == direct_notes


def test_bagged_thresholds_are_the_median_of_each_resamples_own_best():
    """The definition spelled out: each resample's drawn rows copied and tuned by `tune_per_label` (labels a
    resample has no positives of get that resample's global value), then the median per label. The function
    weights dev texts by their draw counts instead of copying rows; both must agree."""
    rng = np.random.default_rng(7)
    y = (rng.random((300, 4)) < [0.3, 0.1, 0.03, 0.01]).astype(int)
    p = np.clip(0.15 * y + 0.85 * rng.random(y.shape), 0, 1)
    counts = resample_counts(len(y), 20, seed=5)
    rows = [np.repeat(np.arange(len(y)), c.astype(int)) for c in counts]
    assert any(y[r, 3].sum() == 0 for r in rows)  # the rarest label is missing from some resamples
    expected = np.median([tune_per_label(y[r], p[r])[0] for r in rows], axis=0)
    assert expected.tolist() != tune_per_label(y, p)[0].tolist()  # the resamples do move the thresholds
    assert tune_per_label_bagged(y, p, resamples=20, seed=5)[0].tolist() == expected.tolist()


@pytest.mark.parametrize("resamples", [0, -3, 2.5, True])
def test_bagged_thresholds_reject_bad_resamples(resamples):
    y, p = rare_label_dev(np.random.default_rng(2))
    with pytest.raises(UserError, match=r"^resamples must be a whole number of at least 1, got "):
        tune_per_label_bagged(y, p, resamples=resamples)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("best",), "unknown threshold strategy 'best' (choose one of fixed, global, per_emotion, per_emotion_bagged)"),
        (("global",), "the global strategy tunes on dev: pass y_dev and p_dev"),
        (("fixed",), "the fixed strategy needs label_names or p_dev to know the number of labels"),
    ],
)
def test_choose_thresholds_errors(args, message):
    with pytest.raises(UserError) as info:
        choose_thresholds(*args)
    assert str(info.value) == message


def test_tuning_rejects_bad_dev_arrays():
    with pytest.raises(UserError, match=r"^p_dev must be probabilities in \[0, 1\]"):
        tune_per_label(np.ones((3, 2)), np.full((3, 2), 2.0))
    with pytest.raises(UserError, match=r"^p_dev has shape \(3, 1\), expected \(3, 2\)"):
        tune_global(np.ones((3, 2)), np.ones((3, 1)))


def test_save_and_load_roundtrip(tmp_path):
    choice = ThresholdChoice("per_emotion", "dev", np.array([0.07, 0.33, 0.5]))
    path = save_thresholds(tmp_path / "thresholds.json", choice, ["a", "b", "c"])
    assert json.loads(path.read_text()) == {
        "strategy": "per_emotion",
        "chosen_on": "dev",
        "thresholds": {"a": 0.07, "b": 0.33, "c": 0.5},
    }
    loaded = load_thresholds(path, ["c", "a", "b"])  # values follow the asked order
    assert (loaded.strategy, loaded.chosen_on) == ("per_emotion", "dev")
    assert loaded.values.tolist() == [0.5, 0.07, 0.33]
    assert load_thresholds(path).values.tolist() == [0.07, 0.33, 0.5]


HALF = {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not valid JSON"),
        (
            {"strategy": "fixed", "chosen_on": None, "thresholds": {"a": 0.5}},
            "thresholds do not match the labels (1 in file, 2 expected; missing: b)",
        ),
        ({"strategy": "magic", "chosen_on": None, "thresholds": HALF}, "unknown strategy 'magic'"),
        ({"strategy": "global", "chosen_on": "test", "thresholds": HALF}, "chosen_on must be"),
        ({"strategy": "fixed", "chosen_on": None, "thresholds": {"a": 0.5, "b": 7}}, "must lie in [0, 1]; 'b' is 7"),
        ('{"strategy": "fixed", "chosen_on": null, "thresholds": {"a": NaN, "b": 0.5}}', "[0, 1]; 'a' is nan"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "thresholds.json"
    path.write_text("{" if content is None else content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataError) as info:
        load_thresholds(path, ["a", "b"])
    assert str(info.value).startswith(str(path)) and message in str(info.value)
    assert str(info.value).endswith(
        "; restore the file from a copy, or make the folder again (retrain, re-ensemble or re-export)"
    )


def test_load_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such thresholds file"):
        load_thresholds(tmp_path / "nope.json")
