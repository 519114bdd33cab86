"""Train objectives × λ × seeds on the same data and score each run (the paper's Figure 5)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._validate import find_labels
from ._metrics import cluster_scores
from ._ranks import rank_table
from ._scored_cells import _subset_mask
from ._theta import theta_arrays

if TYPE_CHECKING:
    from mudata import MuData


def compare_methods(
    mdata: MuData,
    objectives: Sequence[str] = ("indiseek", "factorized_cl", "infodisen"),
    lams: Sequence[float] = (0.1, 1.0, 10.0),
    seeds: Sequence[int] = (0, 1, 2),
    *,
    label_key: str,
    weight_key: str | None = "rna:mod_weight",
    reference: pd.Series | dict | None = None,
    subset: str | np.ndarray | None = "auto",
    split_key: str | None = None,
    k: int = 10,
    min_cells: int = 10,
    cluster_embeddings: Sequence[str] = ("Z_rna", "Z_adt", "all"),
    model_kwargs: dict[str, Any] | None = None,
    train_kwargs: dict[str, Any] | None = None,
    reuse_clip: bool = True,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """Train every objective × λ × seed and report θ's Spearman ρ, ARI/NMI and training time.

    Runs that share a seed share step 1 (CLIP) when ``reuse_clip`` is set: it is trained once
    per seed and copied, which gives the same result as retraining it and saves its time.
    ``objective="clip"`` ignores λ and runs once per seed (its Z are the CLIP features).
    ``mdata`` is not modified.

    Parameters
    ----------
    mdata
        Prepared MuData registered with :meth:`IndiSeek.setup_mudata`.
    objectives
        Objectives to compare.
    lams
        λ grid.
    seeds
        Seeds; the spread over seeds gives the error bars.
    label_key
        Cell-type labels for θ and the metrics.
    weight_key
        Per-cell WNN RNA weight (from :func:`wnn_weights` or Seurat) to rank against.
    reference
        Or one reference value per type (e.g. the simulator's truth).
    subset
        Cells to score: ``"auto"`` (test cells when a split exists, else all), a split name,
        a boolean mask or ``None`` (all cells).
    split_key
        Column of the train/test split that ``subset`` refers to (default: the one
        ``setup_mudata`` recorded, else ``"indiseek_split"``).
    k, min_cells
        θ neighbours, and the smallest type that is ranked.
    cluster_embeddings
        Embeddings scored by ARI/NMI: ``"C_rna"``, ``"C_adt"``, ``"Z_rna"``, ``"Z_adt"``,
        ``"all"`` (the concatenation).
    model_kwargs, train_kwargs
        Passed to :class:`IndiSeek` and :meth:`IndiSeek.train` (e.g. ``max_epochs``).
    reuse_clip
        Share step 1 between runs with the same seed.
    progress_bar
        Show a progress bar over runs.

    Returns
    -------
    Tidy DataFrame: ``objective``, ``lam``, ``seed``, ``spearman``, ``pvalue``,
    ``ARI_<emb>``/``NMI_<emb>`` per embedding, ``train_time_s``.

    Examples
    --------
    >>> df = isk.tl.compare_methods(mdata, lams=[1, 10], seeds=[0, 1])  # doctest: +SKIP
    >>> isk.pl.compare_methods(df)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from ..model import IndiSeek

    model_kwargs = dict(model_kwargs or {})
    train_kwargs = {"progress_bar": False, **(train_kwargs or {})}
    labels = find_labels(mdata, label_key)
    mask = _subset_mask(mdata, subset, split_key) & labels.notna().to_numpy()
    lab = labels.astype(object).to_numpy()[mask]
    weights = None
    if reference is None:
        if weight_key is None:
            raise ValueError("Pass weight_key or reference to rank θ against.")
        weights = find_labels(mdata, weight_key).to_numpy(dtype=float)[mask]
    n_labels = len(pd.unique(lab))
    runs = []
    for seed in seeds:
        for obj in objectives:
            for lam in [float("nan")] if obj == "clip" else lams:
                runs.append((seed, obj, lam))
    clip_models: dict[int, IndiSeek] = {}
    rows = []
    for seed, obj, lam in tqdm(runs, desc="compare_methods", disable=not progress_bar):
        model = IndiSeek(mdata, objective=obj, lam=10.0 if np.isnan(lam) else lam, **model_kwargs)
        t0 = time.perf_counter()
        reuse = clip_models.get(seed) if reuse_clip else None
        model.train(seed=seed, clip_from=reuse, **train_kwargs)
        elapsed = time.perf_counter() - t0
        if reuse_clip and seed not in clip_models:
            clip_models[seed] = model
        # θ, clustering and the concatenation all read the whole ensemble, as write_obsm has it
        reps = model.get_representations()
        reps["all"] = model.get_latent_representation(representation="all")
        theta, _, _ = theta_arrays(reps["Z_rna"][mask], reps["Z_adt"][mask], lab, k)
        table = rank_table(lab, theta, weights=weights, reference=reference, min_cells=min_cells)
        row = {
            "objective": obj,
            "lam": lam,
            "seed": seed,
            "spearman": table.attrs["spearman"],
            "pvalue": table.attrs["pvalue"],
            "train_time_s": elapsed,
            "clip_reused": reuse is not None,
        }
        for emb in cluster_embeddings:
            ari, nmi = cluster_scores(reps[emb][mask], lab, n_labels, seed=seed)
            row[f"ARI_{emb}"], row[f"NMI_{emb}"] = ari, nmi
        rows.append(row)
    return pd.DataFrame(rows)
