"""Settings 1–4 of the IndiSeek paper: a 6-d modality with oracle shared features."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: 0-based coordinates an ideal modality-specific Z depends on, per setting.
IDEAL_COORDINATES: dict[int, list[int]] = {1: [2, 3, 4, 5], 2: [4, 5], 3: [2, 3, 4, 5], 4: [4, 5]}
_DISCRETE = np.array([-np.sqrt(7) / 2, -1.0, -0.5, 0.5, 1.0, np.sqrt(7) / 2])


def setting(k: int, n: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` samples of the paper's simulation Setting ``k`` (1–4).

    - Setting 1: ``X ~ N(0, I_6)``; ``C = 0.5u + 0.2 sin(u) + 0.2u³`` with ``u = X[:, 0:2]``.
      The ideal Z depends on coordinates 3–6 (0-based 2–5).
    - Setting 2: ``X[:, [0, 1, 4, 5]] ~ N(0, I_4)``, ``X[:, 2] = 0.2 (X0 + X1)``,
      ``X[:, 3] = X0 · X1``; ``C = X[:, 0:2]``. Ideal Z: coordinates 5–6 (0-based 4–5).
    - Settings 3, 4: as 1 and 2, but the modality-specific coordinates are drawn uniformly
      from {−√7/2, −1, −1/2, 1/2, 1, √7/2}.

    Parameters
    ----------
    k
        Setting number, 1 to 4.
    n
        Number of samples.
    seed
        Random seed.

    Returns
    -------
    ``(x, c)``: float32 arrays of shapes (n, 6) and (n, 2).

    Examples
    --------
    >>> import indiseek as isk
    >>> x, c = isk.sim.setting(2, n=100, seed=0)
    >>> x.shape, c.shape
    ((100, 6), (100, 2))
    """
    if k not in (1, 2, 3, 4):
        raise ValueError(f"Setting k must be 1, 2, 3 or 4, got {k!r}.")
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    specific = IDEAL_COORDINATES[k]
    if k in (3, 4):
        x[:, specific] = rng.choice(_DISCRETE, size=(n, len(specific)))
    if k in (1, 3):
        u = x[:, :2]
        c = 0.5 * u + 0.2 * np.sin(u) + 0.2 * u**3
    else:
        x[:, 2] = 0.2 * (x[:, 0] + x[:, 1])
        x[:, 3] = x[:, 0] * x[:, 1]
        c = x[:, :2].copy()
    return x.astype(np.float32), c.astype(np.float32)


def masking_importance(
    transform: Callable[[np.ndarray], np.ndarray],
    d: int = 6,
    n_points: int = 1000,
    seed: int = 0,
    low: float = -10.0,
    high: float = 10.0,
) -> np.ndarray:
    """Importance of each input coordinate to a representation, by masking it to zero.

    For ``M = n_points`` points drawn uniformly from ``[low, high]^d``, coordinate ``j`` scores
    ``mean ‖h(x) − h(x with x_j = 0)‖²``; scores are normalised to sum to 1.

    Parameters
    ----------
    transform
        The representation ``h`` (numpy in, numpy out), e.g. ``fit.transform``.
    d
        Input dimension.
    n_points
        Number of points ``M``.
    seed
        Random seed of the points.
    low, high
        Range of the uniform points.

    Returns
    -------
    Array of ``d`` importances summing to 1.

    Examples
    --------
    >>> import numpy as np, indiseek as isk
    >>> imp = isk.sim.masking_importance(lambda x: x[:, 2:] * 2.0, d=6)
    >>> np.round(imp, 2)
    array([0.  , 0.  , 0.25, 0.25, 0.25, 0.25])
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n_points, d)).astype(np.float32)
    base = np.asarray(transform(x), dtype=np.float64)
    scores = np.empty(d)
    for j in range(d):
        xm = x.copy()
        xm[:, j] = 0.0
        scores[j] = ((np.asarray(transform(xm), dtype=np.float64) - base) ** 2).sum(1).mean()
    total = scores.sum()
    if total == 0:
        raise ValueError("The representation does not change when any coordinate is masked.")
    return scores / total
