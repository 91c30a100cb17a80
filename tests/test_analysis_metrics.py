"""Representation metrics: hand-computed values, CKA invariances, and planted structure ranked correctly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import ortho_group, spearmanr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_analysis_support import EKMAN_OF, LABELS, SENTIMENT_OF, make_directions, planted, random_labels
from threadpoolctl import threadpool_limits

from emoscope.analysis.structure import (
    LabelGroups,
    centroids,
    coannotation_rdm,
    cooccurrence_counts,
    cosine_rdm,
    cosine_silhouette,
    group_rdm,
    linear_cka,
    point_metrics,
    probe_macro_f1,
    rdm_reliability,
    rsa,
    split_halves,
)
from emoscope.evaluate.metrics import as_indicator_matrix

GROUPS = LabelGroups.from_maps(LABELS, SENTIMENT_OF, EKMAN_OF)


def test_silhouette_matches_the_textbook_formula():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, 4))
    g = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - unit @ unit.T
    s = []
    for i in range(len(X)):
        same = (g == g[i]) & (np.arange(len(X)) != i)
        a = D[i, same].mean()
        b = min(D[i, g == other].mean() for other in set(g) - {g[i]})
        s.append((b - a) / max(a, b))
    assert cosine_silhouette(X, g) == pytest.approx(np.mean(s), abs=1e-9)
    assert np.isnan(cosine_silhouette(X, np.zeros(9)))


def test_rsa_is_spearman_of_centroid_dissimilarities_by_hand():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 6))
    labels = [(i % 5,) for i in range(40)]
    C = np.array([X[[i for i, y in enumerate(labels) if y == (k,)]].mean(0) for k in range(5)])
    np.testing.assert_allclose(centroids(X, labels, 5), C)
    unit = C / np.linalg.norm(C, axis=1, keepdims=True)
    model = 1 - unit @ unit.T
    np.testing.assert_allclose(cosine_rdm(C), model, atol=1e-12)
    reference = rng.random((5, 5))
    reference = reference + reference.T
    iu = np.triu_indices(5, 1)
    ranks = [np.argsort(np.argsort(v)) for v in (model[iu], reference[iu])]  # no ties here
    expected = np.corrcoef(*ranks)[0, 1]
    assert rsa(model, reference) == pytest.approx(expected)
    assert group_rdm(["a", "a", "b"]).tolist() == [[0, 0, 1], [0, 0, 1], [1, 1, 0]]


def hsic_cka(X, Y):
    """CKA through the centring matrix H and Gram matrices, the paper's definition."""
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = X @ X.T, Y @ Y.T
    hsic = lambda A, B: np.trace(A @ H @ B @ H)  # noqa: E731
    return hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))


def test_linear_cka_by_hand_and_its_invariances():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 8))
    Y = X[:, :5] @ rng.normal(size=(5, 12)) + 0.5 * rng.normal(size=(30, 12))  # other dimension
    assert linear_cka(X, Y) == pytest.approx(hsic_cka(X, Y))
    assert linear_cka(X, X) == pytest.approx(1.0)
    Q = ortho_group.rvs(8, random_state=4)
    assert linear_cka(X @ Q, Y) == pytest.approx(linear_cka(X, Y))
    assert linear_cka(7.5 * X, Y) == pytest.approx(linear_cka(X, Y))
    assert linear_cka(X + 3.0, Y) == pytest.approx(linear_cka(X, Y))
    assert linear_cka(X, rng.normal(size=(30, 8))) < 0.6


def test_coannotation_is_one_minus_the_correlation_of_label_columns():
    rng = np.random.default_rng(5)
    labels = random_labels(400, rng)
    indicator = as_indicator_matrix(labels, "labels", len(LABELS)).astype(float)
    expected = 1 - np.corrcoef(indicator, rowvar=False)
    np.testing.assert_allclose(coannotation_rdm(cooccurrence_counts(labels, len(LABELS)), 400), expected, atol=1e-12)


@pytest.fixture(scope="module")
def planted_points():
    """Five representations of the same 900 texts, sentiment structure growing from none to strong."""
    rng = np.random.default_rng(0)
    labels = random_labels(900, rng)
    directions = make_directions(64, rng)
    strengths = [0.0, 1.5, 3.0, 5.0, 8.0]
    return labels, [planted(labels, s, 0.4 * s, 64, rng, directions) for s in strengths]


def test_every_metric_ranks_planted_structure_from_shallow_to_deep(planted_points):
    labels, points = planted_points
    coannotation = group_rdm(GROUPS.sentiment)  # a human reference that agrees with the planted structure
    rows = [point_metrics(X, labels, GROUPS, coannotation) for X in points]
    for metric in (
        "silhouette_emotion",
        "silhouette_sentiment",
        "silhouette_ekman",
        "probe_macro_f1",
        "silhouette_posneg",
        "rsa_sentiment",
        "rsa_cooccurrence",
    ):
        values = [r[metric] for r in rows]
        assert values == sorted(values), (metric, values)
        assert values[-1] > values[0] + 0.1, (metric, values)
    for metric in ("rsa_ekman", "ari_sentiment_k3", "ari_ekman_k6"):
        assert rows[-1][metric] > rows[0][metric] + 0.2, (metric, [r[metric] for r in rows])
    assert rows[-1]["ari_sentiment_k3"] == pytest.approx(1.0)
    # CKA: representations carrying the same signal agree; pure noise agrees with nothing
    assert linear_cka(points[3], points[4]) > 0.5 > 0.1 > linear_cka(points[0], points[4])
    to_deepest = [linear_cka(X, points[4]) for X in points[:4]]
    assert to_deepest == sorted(to_deepest)


def test_rdm_reliability_grows_with_signal_and_with_probe_texts():
    """Pure noise gives an RDM its own halves do not reproduce; planted structure gives one they do, more
    so with a stronger signal and with more texts per emotion."""
    rng = np.random.default_rng(1)
    directions = make_directions(64, rng)

    def reliability(n, strength):
        labels = random_labels(n, rng)
        X = planted(labels, strength, 0.4 * strength, 64, rng, directions)
        return rdm_reliability(X - X.mean(0), labels, GROUPS.emotions, len(LABELS))

    noise = [reliability(600, 0.0) for _ in range(5)]
    assert abs(np.mean(noise)) < 0.1, noise
    weak = [reliability(n, 1.0) for n in (300, 600, 2400)]
    assert weak == sorted(weak) and weak[-1] > weak[0] + 0.4, weak
    assert reliability(600, 1.0) + 0.3 < reliability(600, 4.0) < 1
    # one halving by hand: Spearman of the halves' cosine RDMs, stepped up by Spearman-Brown
    labels = random_labels(600, rng)
    X = planted(labels, 2.0, 0.8, 64, rng, directions)
    halves = split_halves(len(X), 0)
    C = [centroids(X[h], [labels[i] for i in h], len(LABELS))[GROUPS.emotions] for h in halves]
    upper = np.triu_indices(len(GROUPS.emotions), 1)
    r = spearmanr(*(squareform(pdist(c, "cosine"))[upper] for c in C)).statistic
    assert rdm_reliability(X, labels, GROUPS.emotions, len(LABELS), splits=1) == pytest.approx(2 * r / (1 + r))


def test_ridge_probe_orders_points_like_logistic_regression(planted_points):
    labels, points = planted_points
    rows = np.array([i for i, y in enumerate(labels) if len(y) == 1])
    y = np.array([labels[i][0] for i in rows])
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
    with threadpool_limits(limits=1):  # threaded BLAS only spins on these small matrices
        logistic = [f1_score(y, cross_val_predict(logistic, X[rows], y, cv=cv), average="macro") for X in points]
        ridge = [probe_macro_f1(X[rows], y) for X in points]
    assert np.argsort(ridge).tolist() == np.argsort(logistic).tolist()
