"""What every figure shares: palette, axes, saving, and the parameters they document alike."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]


def palette(n: int) -> list:
    if n <= len(OKABE_ITO):
        return OKABE_ITO[:n]
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab20" if n <= 20 else "gist_ncar")
    return [cmap(i / max(n - 1, 1)) if n > 20 else cmap(i) for i in range(n)]


def new_axes(ax, figsize: tuple[float, float]):
    import matplotlib.pyplot as plt

    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


def parent_colors(parents: pd.Series) -> dict[str, object]:
    names = list(pd.unique(parents.astype(str)))
    return dict(zip(names, palette(len(names)), strict=True))


def finish(fig: Figure, save: str | os.PathLike | None) -> Figure:
    fig.tight_layout()
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    return fig


#: Docstring entries every plot shares (filled in by :func:`doc_params`).
DOC = {
    "table": """table
        Output of :func:`indiseek.tl.rank_comparison` (with ``parent_key``, coloured by
        level-1 type).""",
    "ax_save": """ax
        Axes to draw on (default: a new figure).
    save
        Path to save the figure to.

    Returns
    -------
    The matplotlib Figure.""",
    "save": """save
        Path to save the figure to.

    Returns
    -------
    The matplotlib Figure.""",
}


def doc_params(func):
    """Fill ``{ax_save}`` / ``{save}`` in a plot's docstring with the shared entries."""
    func.__doc__ = func.__doc__.format(**DOC)
    return func


def parent_legend(ax, colors: dict, **kwargs) -> None:
    """Legend of level-1 types (``colors``: name → colour)."""
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=p) for p, c in colors.items()]
    ax.legend(
        handles=handles, title="level-1 type", fontsize=8, title_fontsize=8, frameon=False, **kwargs
    )
