"""2-D t-SNE layouts (openTSNE) of one hook point across epochs, kept comparable from epoch to epoch."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from openTSNE import TSNEEmbedding, affinity, initialization
from sklearn.decomposition import PCA


def tsne_series(by_epoch: Mapping[int, np.ndarray], *, perplexity: float = 30.0, n_iter: int = 150,
                seed: int = 0, n_jobs: int = 1) -> dict[int, np.ndarray]:
    """Layouts [n, 2] of the same probe rows at successive epochs.

    The first epoch starts from PCA; every later epoch starts from the previous layout (rescaled to the
    small spread t-SNE expects), so a group stays where it was unless the representation moved it, and
    needs fewer iterations to settle (0.6x). Cosine affinities on the first 50 principal components, as the
    other numbers use cosine too. Iterations are modest on purpose: a grid of ~50 layouts must fit the
    analysis time budget, and on 2,000 probe texts 100 + 150 iterations preserve 10-nearest neighbours as
    well as openTSNE's default 250 + 500. `n_jobs=1` by default: on a busy 2-core machine openTSNE's
    threads cost several times the CPU of a single thread for the same layout.
    """
    layouts: dict[int, np.ndarray] = {}
    previous = None
    for epoch in sorted(by_epoch):
        X = np.asarray(by_epoch[epoch], dtype=np.float64)
        n = len(X)
        reduced = PCA(min(50, X.shape[1], n), random_state=seed).fit_transform(X)
        affinities = affinity.PerplexityBasedNN(reduced, perplexity=min(perplexity, (n - 1) / 3), metric="cosine",
                                                method="exact" if n <= 5000 else "annoy", n_jobs=n_jobs,
                                                random_state=seed)
        if previous is None:
            start, iterations = initialization.pca(reduced, random_state=seed), n_iter
        else:
            start, iterations = initialization.rescale(previous), max(1, round(0.6 * n_iter))
        embedding = TSNEEmbedding(start, affinities, n_jobs=n_jobs, random_state=seed,
                                  negative_gradient_method="bh")
        embedding.optimize(max(1, round(iterations * 2 / 3)), exaggeration=12, inplace=True)
        embedding.optimize(iterations, inplace=True)
        previous = layouts[epoch] = np.asarray(embedding)
    return layouts
