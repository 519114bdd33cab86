"""Read-outs across donors or batches: does θ agree between them, and does an embedding know them?"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import check_mudata, find_labels, get_obsm

if TYPE_CHECKING:
    from mudata import MuData


def theta_by_group(
    mdata: MuData,
    groupby: str,
    by: str,
    *,
    theta_key: str = K.THETA,
    min_cells: int = 10,
) -> pd.DataFrame:
    """Per-type mean θ within each donor (or batch), and how well the donors agree.

    Parameters
    ----------
    mdata
        MuData scored by :func:`theta_score` (cells without θ are left out).
    groupby
        Cell-type column of ``mdata.obs``.
    by
        Donor or batch column of ``mdata.obs``.
    theta_key
        ``mdata.obs`` column holding θ.
    min_cells
        A type's mean within a donor needs this many scored cells (else NaN).

    Returns
    -------
    Types × donors table of mean θ. ``attrs["agreement"]``: donors × donors Spearman ρ of the
    per-type means (types scored in both); ``attrs["min_agreement"]``: its smallest
    off-diagonal value (NaN with a single donor).

    Examples
    --------
    >>> table = isk.tl.theta_by_group(mdata, "celltype.l2", by="donor")  # doctest: +SKIP
    >>> table.attrs["min_agreement"]  # doctest: +SKIP
    """
    check_mudata(mdata)
    if theta_key not in mdata.obs:
        raise ValueError(
            f"mdata.obs has no {theta_key!r}; run isk.tl.theta_score first (or pass theta_key)."
        )
    if isinstance(min_cells, bool) or not isinstance(min_cells, int | np.integer) or min_cells < 1:
        raise ValueError(f"min_cells must be a positive integer, got {min_cells!r}.")
    labels = find_labels(mdata, groupby).astype(str).to_numpy()
    groups = find_labels(mdata, by).astype(str).to_numpy()
    theta = mdata.obs[theta_key].to_numpy(dtype=float)
    scored = np.isfinite(theta)
    frame = pd.DataFrame({"type": labels[scored], "group": groups[scored], "theta": theta[scored]})
    stats = frame.groupby(["type", "group"])["theta"].agg(["mean", "size"])
    means = stats["mean"].where(stats["size"] >= min_cells).unstack("group")
    agreement = means.corr(method="spearman", min_periods=3)
    off = agreement.to_numpy()[~np.eye(len(agreement), dtype=bool)]
    means.attrs["agreement"] = agreement
    means.attrs["min_agreement"] = float(np.nanmin(off)) if np.isfinite(off).any() else np.nan
    return means


def label_predictability(
    mdata: MuData,
    label_key: str,
    obsm_keys: Sequence[str],
    *,
    n_neighbors: int = 15,
    n_splits: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """How well each embedding predicts a label (e.g. donor): cross-validated kNN accuracy.

    Use it to check that Z does not know the donor (accuracy near chance) and to report how
    much C does.

    Returns
    -------
    One row per embedding: ``accuracy``, ``chance`` (the largest label's share) and
    ``above_chance``.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_mudata(mdata)
    y = find_labels(mdata, label_key).astype(str).to_numpy()
    chance = float(pd.Series(y).value_counts(normalize=True).iloc[0])
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rows = []
    for key in obsm_keys:
        x = get_obsm(mdata, key)
        knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=n_neighbors))
        acc = float(cross_val_score(knn, x, y, cv=folds).mean())
        rows.append({"embedding": key, "accuracy": acc, "chance": chance})
    out = pd.DataFrame(rows).set_index("embedding")
    out["above_chance"] = out["accuracy"] - out["chance"]
    return out
