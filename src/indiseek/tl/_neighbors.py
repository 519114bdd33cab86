"""k-nearest neighbours: exact (scikit-learn) or approximate (pynndescent)."""

from __future__ import annotations

from typing import Literal

import numpy as np

#: Above this many cells ``method="auto"`` switches to approximate neighbours.
APPROX_THRESHOLD = 50_000


def knn_indices(
    x: np.ndarray, k: int, method: Literal["auto", "exact", "approx"] = "auto", seed: int = 0
) -> np.ndarray:
    """Indices of each row's ``k`` nearest other rows (Euclidean; the row itself excluded)."""
    n = len(x)
    if method == "auto":
        method = "approx" if n > APPROX_THRESHOLD else "exact"
    if method == "exact":
        from sklearn.neighbors import NearestNeighbors

        idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
    elif method == "approx":
        from pynndescent import NNDescent

        idx = NNDescent(x, n_neighbors=k + 1, random_state=seed).neighbor_graph[0]
    else:
        raise ValueError(f"method must be 'auto', 'exact' or 'approx', got {method!r}.")
    return _drop_self(idx, k)


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    # Duplicated points can put a twin before the cell itself; drop the cell wherever it sits.
    n = len(idx)
    is_self = idx == np.arange(n)[:, None]
    has_self = is_self.any(axis=1)
    out = np.empty((n, k), dtype=np.int64)
    out[has_self] = idx[has_self][~is_self[has_self]].reshape(-1, k)
    out[~has_self] = idx[~has_self][:, :k]
    return out
