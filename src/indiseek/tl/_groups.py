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
    label_key: str,
    batch_key: str,
    *,
    theta_key: str = K.THETA,
    min_cells: int = 10,
) -> pd.DataFrame:
    """Per-type mean θ within each donor (or batch), and how well the donors agree.

    Parameters
    ----------
    mdata
        MuData scored by :func:`theta_score` (cells without θ are left out).
    label_key
        Cell-type column of ``mdata.obs``.
    batch_key
        Donor or batch column of ``mdata.obs``. Cells without a type or donor are left out.
    theta_key
        ``mdata.obs`` column holding θ.
    min_cells
        A type's mean within a donor needs this many scored cells (else NaN).

    Returns
    -------
    Types × donors table of mean θ. ``attrs["agreement"]``: donors × donors Spearman ρ of the
    per-type means (types scored in both); ``attrs["min_agreement"]``: its smallest
    off-diagonal value (NaN with a single donor); ``attrs["n_types"]``: types with a mean in
    every donor (an agreement over a handful of types means little).

    Examples
    --------
    >>> table = isk.tl.theta_by_group(mdata, "celltype.l2", "donor")  # doctest: +SKIP
    >>> table.attrs["min_agreement"]  # doctest: +SKIP
    """
    check_mudata(mdata)
    if theta_key not in mdata.obs:
        raise ValueError(
            f"mdata.obs has no {theta_key!r}; run isk.tl.theta_score first (or pass theta_key)."
        )
    if isinstance(min_cells, bool) or not isinstance(min_cells, int | np.integer) or min_cells < 1:
        raise ValueError(f"min_cells must be a positive integer, got {min_cells!r}.")
    if label_key == batch_key:
        raise ValueError(f"label_key and batch_key are the same column ({label_key!r}).")
    labels = find_labels(mdata, label_key)
    groups = find_labels(mdata, batch_key)
    theta = mdata.obs[theta_key].to_numpy(dtype=float)
    scored = np.isfinite(theta) & labels.notna().to_numpy() & groups.notna().to_numpy()
    labels = labels.astype(str).to_numpy()
    groups = groups.astype(str).to_numpy()
    frame = pd.DataFrame({"type": labels[scored], "group": groups[scored], "theta": theta[scored]})
    stats = frame.groupby(["type", "group"])["theta"].agg(["mean", "size"])
    means = stats["mean"].where(stats["size"] >= min_cells).unstack("group")
    means.index.name, means.columns.name = label_key, batch_key
    agreement = means.corr(method="spearman", min_periods=3)
    off = agreement.to_numpy()[~np.eye(len(agreement), dtype=bool)]
    means.attrs["agreement"] = agreement
    means.attrs["min_agreement"] = float(np.nanmin(off)) if np.isfinite(off).any() else np.nan
    # how many types each pair of donors could be compared on (few types: ρ means little)
    means.attrs["n_types"] = int(means.notna().all(axis=1).sum())
    return means


def label_predictability(
    mdata: MuData,
    label_key: str,
    obsm_keys: str | Sequence[str],
    *,
    n_neighbors: int = 15,
    n_splits: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """How well each embedding predicts a label (e.g. the donor): cross-validated kNN accuracy.

    Without a donor correction, donor effects seen by one modality are modality-specific
    signal and land in that modality's Z (θ may then partly reflect the donor: check
    :func:`theta_by_group`); shifts seen by both land in C. Read it next to chance.

    Parameters
    ----------
    mdata
        MuData with the embeddings.
    label_key
        Column of ``mdata.obs`` to predict (cells without a label are left out).
    obsm_keys
        Embeddings (``mdata.obsm`` keys or ``"mod:key"``).
    n_neighbors, n_splits, seed
        Neighbours of the classifier (on standardised dimensions), stratified folds and their
        seed.

    Returns
    -------
    One row per embedding: ``accuracy``, ``balanced_accuracy``, ``chance`` (the largest
    label's share), ``balanced_chance`` (1 / number of labels) and ``above_chance``
    (balanced accuracy − balanced chance).

    Examples
    --------
    >>> isk.tl.label_predictability(mdata, "donor", ["X_indiseek_Z_rna"])  # doctest: +SKIP
    """
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_mudata(mdata)
    keys = [obsm_keys] if isinstance(obsm_keys, str) else list(obsm_keys)
    labels = find_labels(mdata, label_key)
    keep = labels.notna().to_numpy()
    y = labels[keep].astype(str).to_numpy()
    counts = pd.Series(y).value_counts()
    if len(counts) < 2 or counts.iloc[-1] < n_splits:
        raise ValueError(
            f"label_predictability needs >= 2 labels with >= n_splits={n_splits} cells each; "
            f"{label_key!r} has {counts.to_dict()}."
        )
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rows = []
    for key in keys:
        x = get_obsm(mdata, key)[keep]
        k = min(n_neighbors, len(y) - len(y) // n_splits - 1)
        knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=k))
        res = cross_validate(knn, x, y, cv=folds, scoring=("accuracy", "balanced_accuracy"))
        rows.append(
            {
                "embedding": key,
                "accuracy": float(res["test_accuracy"].mean()),
                "balanced_accuracy": float(res["test_balanced_accuracy"].mean()),
                "chance": float(counts.iloc[0] / len(y)),
                "balanced_chance": 1.0 / len(counts),
            }
        )
    out = pd.DataFrame(rows).set_index("embedding")
    out["above_chance"] = out["balanced_accuracy"] - out["balanced_chance"]
    return out
