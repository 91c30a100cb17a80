"""2-D t-SNE layouts (openTSNE) of one hook point across epochs, kept comparable from epoch to epoch."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from openTSNE import TSNEEmbedding, affinity, initialization
from sklearn.decomposition import PCA


def tsne_series(by_epoch: Mapping[int, np.ndarray], *, perplexity: float = 30.0, n_iter: int = 150,
                early_iter: int = 75, seed: int = 0, n_jobs: int = 2) -> dict[int, np.ndarray]:
    """Layouts [n, 2] of the same probe rows at successive epochs.

    The first epoch starts from PCA; every later epoch starts from the previous layout (rescaled to the
    small spread t-SNE expects), so a group stays where it was unless the representation moved it. Cosine
    affinities on the first 50 principal components, as the other numbers use cosine too. The iteration
    counts are modest on purpose: a grid of ~50 layouts must fit the analysis time budget, and a layout
    that starts from its predecessor needs few iterations to settle.
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
        start = (initialization.pca(reduced, random_state=seed) if previous is None
                 else initialization.rescale(previous))
        embedding = TSNEEmbedding(start, affinities, n_jobs=n_jobs, random_state=seed,
                                  negative_gradient_method="bh")
        embedding.optimize(early_iter, exaggeration=12, inplace=True)
        embedding.optimize(n_iter, inplace=True)
        previous = layouts[epoch] = np.asarray(embedding)
    return layouts
