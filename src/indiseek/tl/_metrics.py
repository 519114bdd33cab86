"""Clustering agreement (ARI, NMI) of embeddings with cell-type labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import check_mudata, find_labels, get_obsm
from ._scored_cells import _subset_mask

if TYPE_CHECKING:
    from mudata import MuData

DEFAULT_KEYS = [*K.OBSM.values(), K.OBSM_ALL]


def cluster_metrics(
    mdata: MuData,
    label_key: str | Sequence[str],
    obsm_keys: Sequence[str] | None = None,
    *,
    n_clusters: int | None = None,
    n_init: int = 10,
    seed: int = 0,
    subset: str | np.ndarray | None = "auto",
    split_key: str | None = None,
) -> pd.DataFrame:
    """ARI and NMI between k-means clusters of embeddings and cell-type labels.

    For each embedding × label column, k-means (scikit-learn) with ``k`` = number of distinct
    labels (or ``n_clusters``) is compared with the labels. Cells without a label are left out.

    Parameters
    ----------
    mdata
        MuData with embeddings in ``.obsm``.
    label_key
        One or more label columns (``mdata.obs`` or a modality's ``.obs``).
    obsm_keys
        Embeddings to score (default: the IndiSeek keys present in ``mdata.obsm``).
    n_clusters
        Number of clusters (default: number of labels).
    n_init
        k-means restarts.
    seed
        k-means seed.
    subset
        Restrict to cells: ``"auto"`` (default: held-out cells when ``mdata.obs[split_key]``
        has any, else all; as :func:`theta_score`), ``None`` (all), a boolean mask or a value
        of ``mdata.obs[split_key]``.
    split_key
        Column ``subset`` refers to (default: the one ``setup_mudata`` recorded, else
        ``"indiseek_split"``).

    Returns
    -------
    Tidy DataFrame with columns ``embedding``, ``label_key``, ``n_clusters``, ``n_cells``,
    ``ARI``, ``NMI``.

    Examples
    --------
    >>> isk.tl.cluster_metrics(mdata, label_key=["celltype.l1", "celltype.l2"])  # doctest: +SKIP
    """
    check_mudata(mdata)
    labels_keys = [label_key] if isinstance(label_key, str) else list(label_key)
    if isinstance(obsm_keys, str):
        obsm_keys = [obsm_keys]
    if n_clusters is not None and (
        isinstance(n_clusters, bool)
        or not isinstance(n_clusters, int | np.integer)
        or n_clusters < 2
    ):
        raise ValueError(f"n_clusters must be an integer >= 2 or None, got {n_clusters!r}.")
    if isinstance(n_init, bool) or not isinstance(n_init, int | np.integer) or n_init < 1:
        raise ValueError(f"n_init must be a positive integer, got {n_init!r}.")
    if obsm_keys is None:
        obsm_keys = [k for k in DEFAULT_KEYS if k in mdata.obsm]
        if not obsm_keys:
            raise KeyError(
                "No IndiSeek embeddings in mdata.obsm; run model.write_obsm(mdata) or pass obsm_keys."
            )
    base = _subset_mask(mdata, subset, split_key)
    rows = []
    for lk in labels_keys:
        labels = find_labels(mdata, lk)
        mask = base & labels.notna().to_numpy()
        lab = labels.astype(object).to_numpy()[mask]
        k = n_clusters or len(pd.unique(lab))
        if k < 2 or mask.sum() <= k:
            raise ValueError(
                f"Label {lk!r}: {mask.sum()} labelled cells and {k} labels; need more cells than labels and at least 2 labels."
            )
        for key in obsm_keys:
            ari, nmi = cluster_scores(get_obsm(mdata, key)[mask], lab, k, n_init, seed)
            rows.append(
                {
                    "embedding": key,
                    "label_key": lk,
                    "n_clusters": int(k),
                    "n_cells": int(mask.sum()),
                    "ARI": ari,
                    "NMI": nmi,
                }
            )
    return pd.DataFrame(rows)


def cluster_scores(
    x: np.ndarray, labels: np.ndarray, n_clusters: int, n_init: int = 10, seed: int = 0
) -> tuple[float, float]:
    """ARI and NMI of k-means (``n_clusters``) on ``x`` against ``labels``: arrays in, numbers out."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    pred = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(x)
    return float(adjusted_rand_score(labels, pred)), float(
        normalized_mutual_info_score(labels, pred)
    )
