"""How well one embedding predicts another: a check of disentanglement."""

from __future__ import annotations

import numpy as np


def predictability(
    features: np.ndarray,
    target: np.ndarray,
    n_neighbors: int = 15,
    n_splits: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated R² of a k-nearest-neighbour regression of ``target`` on ``features``.

    A model-free measure of how much of ``target`` can be read off ``features``: near 1 when
    ``features`` determine ``target``, near 0 (or below) when they carry none of it. Features
    are standardised per dimension first so that no dimension dominates the distances.

    Parameters
    ----------
    features
        Cells × dims (e.g. Z_rna).
    target
        Cells × dims to predict (e.g. C_adt).
    n_neighbors
        Neighbours of the regression.
    n_splits
        Cross-validation folds.
    seed
        Seed of the folds.

    Returns
    -------
    The R² (uniform average over target dimensions, weighted by their variance).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(500, 3))
    >>> round(predictability(x, x[:, :1] * 2), 1) > 0.8
    True
    """
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    features = np.asarray(features, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if len(features) != len(target):
        raise ValueError(f"features has {len(features)} rows but target has {len(target)}.")
    if len(features) < 2 * n_splits:
        raise ValueError(
            f"Need at least {2 * n_splits} cells for {n_splits}-fold CV, got {len(features)}."
        )
    x = StandardScaler().fit_transform(features)
    k = min(n_neighbors, len(x) - len(x) // n_splits - 1)
    pred = cross_val_predict(
        KNeighborsRegressor(n_neighbors=k),
        x,
        target,
        cv=KFold(n_splits, shuffle=True, random_state=seed),
    )
    ss_res = ((target - pred) ** 2).sum()
    ss_tot = ((target - target.mean(axis=0)) ** 2).sum()
    return float(1 - ss_res / ss_tot)
