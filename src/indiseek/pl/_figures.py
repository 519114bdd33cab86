"""Figures of embeddings, method comparisons and training curves."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import check_mudata, find_labels, get_obsm
from ._common import OKABE_ITO, category_colors, doc_params, finish, new_axes, palette

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mudata import MuData


def _fingerprint(x: np.ndarray) -> str:
    import hashlib

    x = np.ascontiguousarray(x, dtype=np.float32)
    return hashlib.sha1(x.tobytes() + str(x.shape).encode()).hexdigest()


def _umap(mdata: MuData, key: str, recompute: bool, seed: int) -> np.ndarray:
    """UMAP of an embedding, cached in ``obsm`` with a fingerprint of what it was made from."""
    cache = f"X_umap_{key.removeprefix('X_').replace(':', '_')}"
    x = get_obsm(mdata, key)
    made_from = mdata.uns.get(K.UNS, {}).get("umap", {}).get(cache)
    if cache in mdata.obsm and not recompute and made_from == f"{_fingerprint(x)}:{seed}":
        return np.asarray(mdata.obsm[cache])
    import umap

    n_neighbors = min(15, max(2, len(x) - 1))
    with warnings.catch_warnings():  # a seeded UMAP runs on one thread; umap says so each time
        warnings.filterwarnings("ignore", message=".*overridden to 1 by setting random_state.*")
        coords = umap.UMAP(n_neighbors=n_neighbors, random_state=seed).fit_transform(x)
    mdata.obsm[cache] = coords.astype(np.float32)
    mdata.uns.setdefault(K.UNS, {}).setdefault("umap", {})[cache] = f"{_fingerprint(x)}:{seed}"
    return coords


@doc_params
def embeddings(
    mdata: MuData,
    color: str | Sequence[str] | None = None,
    keys: str | Sequence[str] | None = None,
    *,
    recompute: bool = False,
    seed: int = 0,
    point_size: float | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """UMAP panels of the IndiSeek embeddings, one column per embedding, one row per label.

    Writes: UMAP coordinates to ``mdata.obsm["X_umap_<key>"]`` with a fingerprint of the
    embedding they were made from in ``mdata.uns["indiseek"]["umap"]`` (replotting is
    instant; a changed embedding, e.g. after retraining, is detected and its UMAP
    recomputed), and each label column's colours to ``mdata.uns["<label>_colors"]`` when
    absent or not one per category (as scanpy does), so a cell type has the same colour in every figure.

    Parameters
    ----------
    mdata
        MuData with embeddings (:meth:`IndiSeek.write_obsm`).
    color
        Label column(s) to colour by, one row of panels each (``mdata.obs`` or a modality's
        ``.obs``); ``None``: one uncoloured row.
    keys
        ``mdata.obsm`` keys, or ``"<modality>:<key>"`` (default: C_rna, Z_rna, C_adt, Z_adt
        and the concatenation).
    recompute
        Recompute the UMAPs even when the cache matches.
    seed
        UMAP seed.
    point_size
        Marker size (default scales with the number of cells).
    {save}

    Examples
    --------
    >>> isk.pl.embeddings(mdata, color=["celltype.l1", "celltype.l2"])  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    check_mudata(mdata)
    colors = [None] if color is None else [color] if isinstance(color, str) else list(color)
    if isinstance(keys, str):
        keys = [keys]
    keys = (
        list(keys)
        if keys is not None
        else [K.OBSM["C_rna"], K.OBSM["Z_rna"], K.OBSM["C_adt"], K.OBSM["Z_adt"], K.OBSM_ALL]
    )
    # every key and label resolved before anything is computed or cached
    found = {ck: find_labels(mdata, ck) for ck in colors if ck is not None}
    for key in keys:
        get_obsm(mdata, key)
    titles = {
        K.OBSM["C_rna"]: "C_RNA (shared, from RNA)",
        K.OBSM["Z_rna"]: "Z_RNA (RNA-specific)",
        K.OBSM["C_adt"]: "C_ADT (shared, from ADT)",
        K.OBSM["Z_adt"]: "Z_ADT (ADT-specific)",
        K.OBSM_ALL: "all four concatenated",
    }
    coords = {k: _umap(mdata, k, recompute, seed) for k in keys}
    size = point_size or max(1.0, min(20.0, 30000 / max(mdata.n_obs, 1)))
    fig, axes = plt.subplots(
        len(colors), len(keys), figsize=(3.3 * len(keys) + 1.8, 3.2 * len(colors)), squeeze=False
    )
    for r, ck in enumerate(colors):
        if ck is None:
            labels = np.full(mdata.n_obs, "cells", dtype=object)
            pal, cats = {"cells": OKABE_ITO[4]}, []
        else:
            labels = found[ck].astype(str).where(found[ck].notna(), "NA").to_numpy()
            pal = category_colors(mdata, ck)
            cats = [c for c in pal if c in set(labels)]
            if "NA" in set(labels):
                pal, cats = {**pal, "NA": "lightgrey"}, [*cats, "NA"]
        point_colors = [pal[v] for v in labels]
        for c, key in enumerate(keys):
            ax = axes[r, c]
            xy = coords[key]
            ax.scatter(xy[:, 0], xy[:, 1], c=point_colors, s=size, linewidths=0, rasterized=True)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles.get(key, key), fontsize=10)
            if c == 0:
                ax.set_ylabel("UMAP" if ck is None else f"UMAP · coloured by {ck}", fontsize=9)
        if ck is None:
            continue
        handles = [plt.Line2D([], [], marker="o", ls="", color=pal[v], label=v) for v in cats]
        axes[r, -1].legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            fontsize=7,
            frameon=False,
            ncol=1 if len(cats) <= 16 else 2,
            title=ck,
            title_fontsize=8,
        )
    return finish(fig, save, show, return_fig)


@doc_params
def compare_methods(
    df: pd.DataFrame,
    metric: str = "spearman",
    *,
    ax=None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """A metric per objective across λ, mean ± sd over seeds (paper Figure 5).

    Parameters
    ----------
    df
        Output of :func:`indiseek.tl.compare_methods`.
    metric
        Column to plot (``"spearman"``, ``"ARI_all"``, ...).
    {ax_save}

    Examples
    --------
    >>> isk.pl.compare_methods(df)  # doctest: +SKIP
    """

    if not isinstance(df, pd.DataFrame) or not {"objective", "lam", "seed"} <= set(df.columns):
        raise TypeError(
            "Expected the DataFrame of isk.tl.compare_methods (columns objective, lam, seed, "
            f"metrics), got {type(df).__name__}."
        )
    if metric not in df:
        raise KeyError(
            f"No column {metric!r} in the comparison table; columns: {list(df.columns)}."
        )
    fig, ax = new_axes(ax, (6, 4))
    objs = list(pd.unique(df["objective"]))
    pal = dict(zip(objs, palette(len(objs)), strict=True))
    lams = sorted(df["lam"].dropna().unique())
    for obj in objs:
        d = df[df["objective"] == obj]
        if d["lam"].isna().all():
            m, s = d[metric].mean(), d[metric].std(ddof=0)
            ax.axhline(m, color=pal[obj], ls="--", label=f"{obj} (no λ)")
            if lams:
                ax.fill_between([min(lams), max(lams)], m - s, m + s, color=pal[obj], alpha=0.15)
            continue
        g = d.groupby("lam")[metric]
        ax.errorbar(
            g.mean().index,
            g.mean(),
            yerr=g.std(ddof=0).fillna(0),
            marker="o",
            capsize=3,
            color=pal[obj],
            label=obj,
        )
    if lams and min(lams) > 0:
        ax.set_xscale("log")
    ax.set_xlabel("λ (weight of the completeness term)")
    ax.set_ylabel("Spearman ρ of θ ranks vs reference" if metric == "spearman" else metric)
    n_seeds = df["seed"].nunique()
    ax.set_title(f"Methods across λ (mean ± sd over {n_seeds} seed{'s' if n_seeds > 1 else ''})")
    ax.legend(fontsize=8, frameon=False)
    return finish(fig, save, show, return_fig)


@doc_params
def training_curves(
    history: pd.DataFrame | Any,
    *,
    member: int = 0,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Loss terms per epoch for step 1 (InfoNCE) and step 2 (CLUB, relative reconstruction error).

    Parameters
    ----------
    history
        A trained model, or its ``model.history``.
    member
        Ensemble member to show (``model.history["member"]``; the models of an ensemble train
        one after another on the same schedule).
    {save}

    Examples
    --------
    >>> isk.pl.training_curves(model.history)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if not isinstance(history, pd.DataFrame):
        if getattr(history, "history", None) is None:
            raise TypeError(
                f"Expected a trained IndiSeek model or its .history, got {type(history).__name__}."
            )
        history = history.history
    if "step" not in history or "epoch" not in history:
        raise ValueError(
            f"Not a training history (needs columns 'step' and 'epoch'); got {list(history.columns)[:8]}."
        )
    if "member" in history:
        members = sorted(history["member"].unique())
        if member not in members:
            raise ValueError(f"member={member!r} is not in the history; it has {members}.")
        history = history[history["member"] == member]
    h1 = history[history["step"] == "clip"]
    h2 = history[history["step"] == "specific"]
    panels = [("InfoNCE (step 1: shared features)", h1, ["train_infonce", "val_infonce"])]
    for mod in ("rna", "adt"):
        panels.append(
            (f"CLUB estimate, {mod.upper()} (step 2)", h2, [f"train_{mod}_club", f"val_{mod}_club"])
        )
        panels.append(
            (
                f"relative reconstruction error, {mod.upper()}",
                h2,
                [f"train_{mod}_rel_rec_error", f"val_{mod}_rel_rec_error"],
            )
        )
    panels = [p for p in panels if len(p[1]) and any(c in p[1] for c in p[2])]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2), squeeze=False)
    for ax, (title, h, cols) in zip(axes[0], panels, strict=True):
        for col, color in zip(cols, (OKABE_ITO[4], OKABE_ITO[5]), strict=True):
            if col in h:
                ax.plot(
                    h["epoch"],
                    h[col],
                    color=color,
                    label="train" if col.startswith("train") else "validation",
                )
        ax.set_title(title, fontsize=9)
        if "CLUB" in title:  # a sampled bound: mostly near 0, with spikes; keep both readable
            ax.set_yscale("symlog", linthresh=1.0)
            ax.axhline(0, color="0.6", lw=0.6)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7, frameon=False)
    return finish(fig, save, show, return_fig)
