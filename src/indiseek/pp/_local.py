"""Local batch correction: what a donor adds to its cells depends on the cell type, so removing
each batch's global means leaves type-specific offsets behind. Each cell is moved by the local
difference between the batches around it: the mean of its ``k`` nearest training cells in every
batch, averaged over batches, minus the mean of its ``k`` nearest in its own batch (the idea of
mutual-nearest-neighbour corrections, fitted on training cells only so that new cells can be
corrected the same way)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._batches import own_means_ok
from ._transforms import chunks

#: Neighbours per batch whose mean estimates where that batch puts a cell's neighbourhood
#: (donor benchmark: 25, 50, 100, 200 tried; 100 left Z least able to tell the donors apart).
BATCH_NEIGHBORS = 100
#: ... but never more than this share of a batch's reference cells, so that in a small batch
#: the neighbourhood stays local.
MAX_SHARE = 0.1
#: Leading input dimensions the neighbour search uses (the RNA PCs past these are mostly noise).
SEARCH_DIMS = 50
#: Training cells kept per batch as the reference (a seeded subsample above it): bounds the fit
#: stored in ``uns`` and the neighbour searches on atlases.
REF_MAX = 5_000
#: Above this many query × reference pairs the search is approximate (pynndescent).
EXACT_MAX_PAIRS = 1e9


def fit_local(
    inputs: dict[str, np.ndarray], codes: np.ndarray, train: np.ndarray, n_seen: int, seed: int
) -> dict[str, Any]:
    """The reference: up to :data:`REF_MAX` training cells of each training batch, their
    (globally centred) inputs and batch."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 31_337]))
    rows = []
    for b in range(n_seen):
        cells = np.flatnonzero(train & (codes == b))
        if len(cells) > REF_MAX:
            cells = np.sort(rng.choice(cells, REF_MAX, replace=False))
        rows.append(cells)
    ref = np.concatenate(rows)
    state: dict[str, Any] = {m: np.asarray(x[ref], dtype=np.float32) for m, x in inputs.items()}
    state["codes"] = codes[ref].astype(np.int64)
    state["k"] = int(BATCH_NEIGHBORS)
    return state


def apply_local(
    x: np.ndarray,
    codes: np.ndarray,
    ref_x: np.ndarray,
    ref_codes: np.ndarray,
    k: int,
    seed: int,
) -> np.ndarray:
    """Move each cell by (mean over training batches of its neighbourhood's centroid in that
    batch) − (its neighbourhood's centroid in its own batch).

    A batch without reference cells (one with no training cells) is its own reference. A
    reference cell identical to the cell itself is not counted among its neighbours, so a
    training cell gets the same correction whether prepared with the fit or again from it.
    """
    x = np.asarray(x, dtype=np.float32)
    n_seen = int(ref_codes.max()) + 1
    refs = {b: ref_x[ref_codes == b] for b in range(n_seen)}
    for b in np.unique(codes[codes >= n_seen]):
        if own_means_ok(codes, int(b)):  # else left without a local correction
            refs[int(b)] = x[codes == b]
    target = np.zeros_like(x)
    own = np.full_like(x, np.nan)
    for b, r in refs.items():
        if len(r) < 2:
            continue
        c = _centroids(x, r, k, seed)  # cells × dims: a batch at a time bounds memory
        if b < n_seen:
            target += c / n_seen
        own[codes == b] = c[codes == b]
    lonely = np.isnan(own[:, 0])
    own[lonely] = target[lonely]  # a batch too small to compare with: left as it is
    out = x.copy()
    out += target
    out -= own
    return out


def _centroids(x: np.ndarray, ref: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Mean of each row's ``k`` nearest reference rows (by the first :data:`SEARCH_DIMS`
    dimensions), leaving out a reference row identical to it."""
    k = max(1, min(k, int(MAX_SHARE * len(ref)), len(ref) - 1))
    d = min(SEARCH_DIMS, x.shape[1])
    query = np.ascontiguousarray(x[:, :d])
    index = np.ascontiguousarray(ref[:, :d])
    if len(x) * len(ref) > EXACT_MAX_PAIRS:
        from pynndescent import NNDescent

        nn = NNDescent(index, n_neighbors=k + 1, random_state=seed)
        search = lambda q: nn.query(q, k=k + 1)  # noqa: E731
        flip = True
    else:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k + 1).fit(index)
        search = lambda q: nn.kneighbors(q)  # noqa: E731
        flip = False
    out = np.empty_like(x)
    for rows in chunks(len(x), 5_000):  # 5,000 cells × k neighbours × dims at a time
        res = search(query[rows])
        idx, dist = (res[0], res[1]) if flip else (res[1], res[0])
        scale = 1e-6 * (1.0 + np.linalg.norm(query[rows], axis=1))
        is_self = dist[:, 0] <= scale
        keep = np.where(is_self[:, None], idx[:, 1:], idx[:, :k])
        out[rows] = ref[keep].mean(axis=1)
    return out


def correct_locally(inputs, batches, train, known, ref_state, seed: int):
    """Both modalities' inputs after the local step (fitted on ``train``, or the reference's
    fit), and that fit (``None`` without batches)."""
    if batches is None:
        return inputs, None
    names = ("rna", "adt")
    if ref_state is None:
        state = fit_local(
            dict(zip(names, inputs, strict=True)), batches.codes, train, len(known), seed
        )
    else:
        state = ref_state["local"]
    ref_codes, k = np.asarray(state["codes"]), int(state["k"])
    out = tuple(
        apply_local(x, batches.codes, np.asarray(state[m]), ref_codes, k, seed)
        for m, x in zip(names, inputs, strict=True)
    )
    return out, state
