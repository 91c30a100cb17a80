"""The analysis' uncertainty: bootstrap intervals, paired differences, RSA permutation p-values, the layer
ablation. Small seeded inputs; every weighted (resampled) number is checked against the plain one on the
drawn rows."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from scipy.stats import kstest
from sklearn.metrics import f1_score, silhouette_score
from test_analysis_support import (
    EKMAN_OF,
    LABELS,
    SENTIMENT_OF,
    make_directions,
    make_synthetic_run,
    planted,
    random_labels,
)

from emoscope.analysis import load_capture, run_analysis, save_capture
from emoscope.analysis.ablation import _ablated_probs, layer_ablation
from emoscope.analysis.pipeline import Uncertainty
from emoscope.analysis.probe import write_probe
from emoscope.analysis.structure import (
    LabelGroups,
    adjusted_rand,
    cooccurrence_counts,
    cosine_distances,
    group_rdm,
    linear_cka,
    point_metrics,
    rsa,
    spearman_rows,
    weighted_centroid_rdms,
    weighted_cka,
    weighted_macro_f1,
    weighted_silhouettes,
)
from emoscope.analysis.uncertainty import difference, interval, permutation_p, split_half_ceiling
from emoscope.core.runfolder import THRESHOLDS, ThresholdChoice, probe_path, read_config, save_thresholds
from emoscope.evaluate.bootstrap import resample_counts
from emoscope.models import encoder_layers, load_backbone

GROUPS = LabelGroups.from_maps(LABELS, SENTIMENT_OF, EKMAN_OF)


def drawn(weights_row: np.ndarray) -> np.ndarray:
    return np.repeat(np.arange(len(weights_row)), weights_row.astype(int))


def test_weighted_numbers_equal_the_plain_ones_on_the_drawn_rows():
    rng = np.random.default_rng(0)
    n = 70
    X, y = rng.normal(size=(n, 6)), rng.integers(0, 4, n)
    group = np.array(["a", "a", "b", "c"])
    W = resample_counts(n, 3, seed=1)
    sil = weighted_silhouettes(cosine_distances(X).astype(np.float32), y, {"fine": range(4), "coarse": group}, W)
    predicted = rng.integers(0, 5, n)
    f1 = weighted_macro_f1(y, predicted, W)
    Y = X @ rng.normal(size=(6, 4)) + rng.normal(size=(n, 4))
    cka = weighted_cka(X, Y, W)
    for r in range(3):
        idx = drawn(W[r])
        D = cosine_distances(X[idx])
        assert sil["fine"][r] == pytest.approx(silhouette_score(D, y[idx], metric="precomputed"), abs=1e-5)
        assert sil["coarse"][r] == pytest.approx(silhouette_score(D, group[y[idx]], metric="precomputed"), abs=1e-5)
        assert f1[r] == pytest.approx(f1_score(y[idx], predicted[idx], average="macro"), abs=1e-6)
        assert cka[r] == pytest.approx(linear_cka(X[idx], Y[idx]), abs=1e-5)
    a, b = rng.integers(0, 3, 30), rng.integers(0, 4, 30)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(a, b))


def test_rsa_equals_rsatoolbox_on_the_same_rdms():
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rng = np.random.default_rng(3)
    C = rng.normal(size=(12, 5))
    model = cosine_distances(C)
    reference = group_rdm(rng.choice(["p", "n", "a"], 12)) + 0.1 * cosine_distances(rng.normal(size=(12, 5)))
    theirs = rsatoolbox.rdm.compare(
        rsatoolbox.rdm.RDMs(model[None]), rsatoolbox.rdm.RDMs(reference[None]), method="spearman"
    )
    assert rsa(model, reference) == pytest.approx(float(theirs[0, 0]), abs=1e-9)


def test_a_layer_that_separates_groups_beats_the_one_before_it_beyond_its_interval():
    rng = np.random.default_rng(0)
    labels = random_labels(300, rng)
    directions = make_directions(32, rng)
    before, after = (planted(labels, s, 0.4 * s, 32, rng, directions) for s in (0.0, 4.0))
    W = resample_counts(len(labels), 100, seed=0)
    a, b = (point_metrics(X, labels, GROUPS, None, weights=W) for X in (after, before))
    for metric in ("silhouette_posneg", "silhouette_sentiment", "probe_macro_f1", "rsa_sentiment"):
        diff = difference(a["samples"][metric], b["samples"][metric], a[metric] - b[metric])
        assert diff["excludes_zero"] and diff["ci95"][0] > 0, (metric, diff)


def test_structure_free_intervals_cover_the_chance_value():
    """No structure: the RSA's chance value is 0; its interval covers 0 in >= 84% of 50 repetitions. On 150
    texts some emotion has one or two examples, so many resamples draw none of it: they are compared over
    the emotions they drew (were they undefined, 8 of 50 intervals would be)."""
    covered = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        labels = random_labels(150, rng)
        X = rng.normal(size=(150, 8))
        emotions = [i for i in GROUPS.emotions if any(i in y for y in labels)]
        W = np.vstack([np.ones((1, len(labels))), resample_counts(len(labels), 100, seed=seed)])
        point, *samples = spearman_rows(
            weighted_centroid_rdms(X, labels, emotions, W), group_rdm(np.asarray(GROUPS.sentiment)[emotions])
        )
        low, high = interval(np.array(samples), point)
        covered += low <= 0 <= high
    assert covered >= 42


def test_silhouette_intervals_cover_the_value_of_the_whole_population():
    """Resamples draw a text's copies as neighbours at distance 0 and fewer distinct texts per group: their
    silhouettes sit off the estimate, and their percentiles seldom held a structure-free population's value."""
    rng = np.random.default_rng(1)
    directions = make_directions(32, rng)
    population = random_labels(4000, rng)
    X_all = planted(population, 0.0, 0.0, 32, rng, directions)
    truth = point_metrics(X_all, population, GROUPS, None)["silhouette_posneg"]
    covered = 0
    for seed in range(30):
        rows = np.random.default_rng(seed).choice(len(population), 300, replace=False)
        labels = [population[i] for i in rows]
        W = resample_counts(len(rows), 100, seed=seed)
        m = point_metrics(X_all[rows], labels, GROUPS, None, weights=W)
        low, high = interval(m["samples"]["silhouette_posneg"], m["silhouette_posneg"])
        covered += low <= truth <= high
    assert covered >= 25


def test_permutation_p_is_small_for_planted_rsa_and_uniform_for_shuffled():
    rng = np.random.default_rng(0)
    reference = cosine_distances(rng.normal(size=(10, 4)))
    planted_model = reference + 0.05 * cosine_distances(rng.normal(size=(10, 4)))
    assert permutation_p(planted_model, reference, 500, seed=0) < 0.01
    null = [
        permutation_p(cosine_distances(np.random.default_rng(s).normal(size=(10, 4))), reference, 200, s)
        for s in range(50)
    ]
    assert kstest(null, "uniform").pvalue > 0.01


def test_noise_ceiling_of_identical_halves_is_one():
    rng = np.random.default_rng(0)
    labels = random_labels(400, rng)
    counts = cooccurrence_counts(labels, len(LABELS))
    found = split_half_ceiling((counts, 400), (counts, 400), GROUPS.emotions)
    assert found["reliability"] == pytest.approx(1.0) and found["noise_ceiling"] == pytest.approx(1.0)


def test_the_damaged_layer_shows_the_largest_reset_drop(tiny_run, tmp_path):
    """Every layer but layer_1 holds the backbone's own weights, layer_1 is damaged; the test labels are
    the damaged model's own predictions (F1 = 1), so only resetting layer_1 can cost F1. The probe set (for
    the `mean_update` ablation) is the test texts: the tiny run captured none."""
    run = shutil.copytree(tiny_run, tmp_path / "run")
    state = load_file(str(run / "model.safetensors"))
    original = encoder_layers(load_backbone(read_config(run).backbone))
    torch.manual_seed(0)
    for k, layer in enumerate(original, start=1):
        for name, value in layer.state_dict().items():
            key = next(key for key in state if key.endswith(f"layer.{k - 1}.{name}"))
            state[key] = value.clone() + (0.5 * torch.randn_like(value) if k == 1 and value.dim() == 2 else 0)
    save_file(state, str(run / "model.safetensors"))
    from emoscope.inference.predictor import Predictor

    predictor = Predictor(run, precision="fp32")
    path = run / "eval" / "test_predictions.jsonl"
    rows = [json.loads(line) for line in path.open()]
    probs = predictor.predict_proba([r["text"] for r in rows])
    cut = np.median(probs, axis=0)
    save_thresholds(run / THRESHOLDS, ThresholdChoice("per_emotion", None, cut), predictor.labels)
    with path.open("w") as f:
        for r, p in zip(rows, probs, strict=True):
            f.write(
                json.dumps({**r, "labels": [n for n, v, t in zip(predictor.labels, p, cut, strict=True) if v >= t]})
                + "\n"
            )
    write_probe(probe_path(run), [r["id"] for r in rows], [r["text"] for r in rows], [(0,)] * len(rows))
    table = list(csv.DictReader(layer_ablation(run, resamples=50).open()))
    reset = {r["layer"]: float(r["drop"]) for r in table if r["kind"] == "reset" and r["label"] == "macro"}
    assert reset["layer_1"] > 0.05 and reset["layer_1"] == max(reset.values())
    assert all(v == pytest.approx(0.0, abs=1e-9) for k, v in reset.items() if k != "layer_1")
    assert {r["kind"] for r in table} == {"reset", "mean_update"}
    assert (run / "analysis" / "layer_ablation.png").is_file()


def test_replayed_ablations_equal_full_passes_with_the_layer_knocked_out(tiny_run):
    """The ablation replays the layers below the knocked-out one from the intact pass instead of running
    them again: its probabilities must equal a plain forward pass of the model with that layer reset to its
    pre-fine-tuning weights, or with the layer's update (output minus input) replaced by a given vector."""
    from emoscope.inference.predictor import Predictor

    predictor = Predictor(tiny_run)
    texts = [json.loads(line)["text"] for line in (tiny_run / "eval" / "test_predictions.jsonl").open()]
    layers = encoder_layers(predictor.model.backbone)
    original = encoder_layers(load_backbone(read_config(tiny_run).backbone))
    torch.manual_seed(0)
    for layer in original:  # far enough from the trained weights that every reset changes the output
        for value in layer.parameters():
            value.data += 0.3 * torch.randn_like(value)
    updates = [torch.randn(predictor.model.backbone.config.hidden_size) for _ in layers]
    got = _ablated_probs(predictor, texts, original, updates, batch_size=8)
    np.testing.assert_allclose(got["intact"], predictor.predict_proba(texts, batch_size=8), atol=1e-6)
    for k, layer in enumerate(layers, start=1):
        kept = {name: value.clone() for name, value in layer.state_dict().items()}
        layer.load_state_dict(original[k - 1].state_dict())
        try:
            reset = predictor.predict_proba(texts, batch_size=8)
        finally:
            layer.load_state_dict(kept)
        handle = layer.register_forward_hook(lambda _m, args, _out, u=updates[k - 1]: args[0] + u)
        try:
            mean_update = predictor.predict_proba(texts, batch_size=8)
        finally:
            handle.remove()
        for kind, expected in (("reset", reset), ("mean_update", mean_update)):
            assert np.abs(expected - got["intact"]).max() > 1e-3, f"{kind} of layer {k} changes nothing"
            np.testing.assert_allclose(got[kind, k], expected, atol=1e-6, err_msg=f"{kind} of layer {k}")
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # three batches at once, each worker swapping layers in its own copy of the model
    try:
        side_by_side = _ablated_probs(predictor, texts, original, updates, batch_size=8)
    finally:
        torch.set_num_threads(threads)
    assert side_by_side.keys() == got.keys()
    for key, probs in got.items():
        np.testing.assert_allclose(side_by_side[key], probs, atol=1e-6, err_msg=f"{key} side by side")


def test_every_point_is_bootstrapped_on_the_same_resamples(tmp_path):
    """Two points with the same capture get the same intervals only if they share the resamples."""
    run = make_synthetic_run(tmp_path / "run", n_probe=120, n_layers=2, dim=16, epochs=1, onset=1, n_test=40)
    path = run / "captures" / "epoch_0.safetensors"
    arrays, meta = load_capture(path)
    arrays["layer_2"] = arrays["layer_1"]
    save_capture(path, {k: torch.from_numpy(v) for k, v in arrays.items()}, epoch=0, pooling=meta["pooling"])
    out = run_analysis(run, tsne=False, uncertainty=Uncertainty(resamples=30, permutations=10))
    rows = {r["point"]: r for r in csv.DictReader((out / "layer_metrics.csv").open())}
    bounds = [c for c in rows["layer_1"] if "_ci95_" in c and rows["layer_1"][c]]
    assert bounds and all(rows["layer_1"][c] == rows["layer_2"][c] for c in bounds)
