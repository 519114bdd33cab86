"""Figures of θ per cell type: the ranking and the rank scatter (the paper's Figure 4)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys as K
from ._common import OKABE_ITO, doc_params, finish, new_axes, parent_colors, parent_legend

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mudata import MuData


def _as_table(data, groupby, weight_key, reference, parent_key, theta_key, need_reference):
    """``(table, mdata)`` from a rank table or a MuData (whose table is computed here)."""
    if isinstance(data, pd.DataFrame):
        if "mean_theta" not in data:
            raise ValueError(
                "Expected a table from isk.tl.rank_comparison (column 'mean_theta') or a MuData; "
                f"got a DataFrame with columns {list(data.columns)[:8]}."
            )
        return data, None
    if not hasattr(data, "mod"):
        raise TypeError(
            f"Expected a MuData (after isk.tl.theta_score) or a rank table, got {type(data).__name__}."
        )
    if groupby is None:
        raise TypeError("Pass groupby=<cell-type column> with a MuData.")
    if need_reference and weight_key is None and reference is None:
        raise ValueError("Pass weight_key (per-cell RNA weight) or reference (per type).")
    from ..tl._ranks import type_table

    return type_table(data, groupby, weight_key, theta_key, reference, parent_key), data


def _colors(t: pd.DataFrame, mdata, parent_key: str | None):
    if mdata is not None and parent_key is not None:
        return parent_colors(t["parent"], mdata, parent_key)
    return parent_colors(t["parent"])


@doc_params
def theta_ranking(
    data: MuData | pd.DataFrame,
    groupby: str | None = None,
    *,
    parent_key: str | None = None,
    theta_key: str = K.THETA,
    title: str | None = None,
    ax=None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Mean θ per cell type, sorted, coloured by level-1 parent (paper Figure 4, left).

    After an ensemble's :func:`indiseek.tl.theta_score`, a line across each bar spans the
    per-type mean θ of the members read alone (how much single models disagree), and each bar
    is labelled with its mean β_RNA / β_ADT.

    Parameters
    ----------
    {table}
    title
        Figure title.
    {ax_save}

    Examples
    --------
    >>> isk.pl.theta_ranking(mdata, "celltype.l2", parent_key="celltype.l1")  # doctest: +SKIP
    """
    table, mdata = _as_table(data, groupby, None, None, parent_key, theta_key, False)
    t = table.sort_values("mean_theta")
    fig, ax = new_axes(ax, (6.5, max(3.0, 0.28 * len(t) + 1.2)))
    if "parent" in t:
        colors = _colors(t, mdata, parent_key)
        bar_colors = [colors[str(p)] for p in t["parent"]]
        parent_legend(ax, colors, loc="lower right")
    else:
        bar_colors = OKABE_ITO[4]
    y = np.arange(len(t))
    bars = ax.barh(y, t["mean_theta"], color=bar_colors)
    if "theta_min" in t:  # where the members, each read alone, put the type
        ax.hlines(y, t["theta_min"], t["theta_max"], color="0.25", lw=0.9)
        ax.annotate(
            "line: range over the members, each read alone",
            (0.0, 0.0),
            xytext=(3, 3),
            xycoords="axes fraction",
            textcoords="offset points",
            fontsize=6,
            color="0.3",
            va="bottom",
        )
    if "beta_rna" in t:  # θ ≈ 0 can mean "both separate the type" or "neither does"
        x_text = ax.get_xlim()[1]
        ax.annotate(
            "β_RNA / β_ADT",
            (x_text, len(t) - 0.4),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=6,
            color="0.3",
            annotation_clip=False,
        )
        for yi, (br, ba) in enumerate(zip(t["beta_rna"], t["beta_adt"], strict=True)):
            ax.annotate(
                f"β {br:.2f} / {ba:.2f}",
                (x_text, yi),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=6,
                color="0.3",
                annotation_clip=False,
            )
    for bar, included in zip(bars, t["included"], strict=True):
        if not included:  # excluded from the ranks (too few cells): drawn faint and hatched
            bar.set_alpha(0.35)
            bar.set_hatch("//")
    ax.set_yticks(
        y, [f"{i} (n={n})" for i, n in zip(t.index, t["n_cells"], strict=True)], fontsize=8
    )
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlabel(
        "mean θ = log(β_RNA / β_ADT)\n← defined by ADT-specific features   ·   defined by RNA-specific features →"
    )
    ax.set_title(title or "Which modality defines each cell type (mean θ per type)")
    return finish(fig, save, show, return_fig)


@doc_params
def rank_scatter(
    data: MuData | pd.DataFrame,
    groupby: str | None = None,
    *,
    weight_key: str | None = "rna:mod_weight",
    reference: pd.Series | dict | None = None,
    parent_key: str | None = None,
    theta_key: str = K.THETA,
    ax=None,
    title: str | None = None,
    show: bool | None = None,
    save: str | os.PathLike | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Rank of mean θ against rank of mean WNN RNA weight per type; ρ in the title (Figure 4, right).

    Parameters
    ----------
    {table}
    weight_key
        Per-cell RNA weight column (with a MuData), e.g. ``"rna:mod_weight"``
        (:func:`indiseek.tl.wnn_weights`) or Seurat's ``"RNA.weight"``.
    reference
        Instead of ``weight_key``: one reference value per type.
    title
        Prefix of the title, which gives ρ.
    {ax_save}

    Examples
    --------
    >>> isk.pl.rank_scatter(mdata, "celltype.l2", weight_key="rna:mod_weight")  # doctest: +SKIP
    """
    table, mdata = _as_table(data, groupby, weight_key, reference, parent_key, theta_key, True)
    if "weight_rank" not in table:
        raise ValueError("The table has no reference ranks; make it with weight_key or reference.")
    t = table[table["included"]]
    ref = "mean_weight" if "mean_weight" in t else "reference"
    fig, ax = new_axes(ax, (5.5, 5.0))
    if "parent" in t:
        colors = _colors(t, mdata, parent_key)
        for p in colors:
            s = t[t["parent"].astype(str) == p]
            ax.scatter(
                s["weight_rank"],
                s["theta_rank"],
                color=colors[p],
                label=p,
                s=40,
                edgecolor="k",
                lw=0.4,
            )
        parent_legend(ax, colors)
    else:
        ax.scatter(
            t["weight_rank"], t["theta_rank"], color=OKABE_ITO[4], s=40, edgecolor="k", lw=0.4
        )
    for name, row in t.iterrows():
        ax.annotate(
            str(name),
            (row["weight_rank"], row["theta_rank"]),
            fontsize=6,
            alpha=0.8,
            xytext=(3, 3),
            textcoords="offset points",
        )
    n = len(t)
    ax.plot([1, n], [1, n], color="0.6", lw=0.8, ls="--")
    what = "mean WNN RNA weight" if ref == "mean_weight" else "reference (truth)"
    ax.set_xlabel(f"rank of {what} (1 = most RNA-weighted)")
    ax.set_ylabel("rank of mean θ (1 = most RNA-specific)")
    rho = table.attrs.get("spearman", float("nan"))
    p = table.attrs.get("pvalue", float("nan"))
    ax.set_title(f"{title + ': ' if title else ''}Spearman ρ = {rho:.3f} (p = {p:.2g}, {n} types)")
    return finish(fig, save, show, return_fig)
