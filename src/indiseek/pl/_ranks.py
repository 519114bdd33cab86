"""Figures of θ per cell type: the ranking and the rank scatter (the paper's Figure 4)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._common import OKABE_ITO, doc_params, finish, new_axes, parent_colors, parent_legend

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@doc_params
def theta_ranking(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    ax=None,
    save: str | os.PathLike | None = None,
) -> Figure:
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
    >>> table = isk.tl.rank_comparison(mdata, parent_key="celltype.l1")  # doctest: +SKIP
    >>> isk.pl.theta_ranking(table)  # doctest: +SKIP
    """
    t = table.sort_values("mean_theta")
    fig, ax = new_axes(ax, (6.5, max(3.0, 0.28 * len(t) + 1.2)))
    if "parent" in t:
        colors = parent_colors(t["parent"])
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
    return finish(fig, save)


@doc_params
def rank_scatter(
    table: pd.DataFrame,
    *,
    ax=None,
    title: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Rank of mean θ against rank of mean WNN RNA weight per type; ρ in the title (Figure 4, right).

    Parameters
    ----------
    {table}
    title
        Prefix of the title, which gives ρ.
    {ax_save}

    Examples
    --------
    >>> isk.pl.rank_scatter(table)  # doctest: +SKIP
    """

    t = table[table["included"]]
    ref = "mean_weight" if "mean_weight" in t else "reference"
    fig, ax = new_axes(ax, (5.5, 5.0))
    if "parent" in t:
        colors = parent_colors(t["parent"])
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
    return finish(fig, save)
