"""What every figure shares: palette, axes, saving, and the parameters they document alike."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mudata import MuData

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
    if not hasattr(ax, "figure") or not hasattr(ax, "barh"):
        raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}.")
    return ax.figure, ax


def parent_colors(parents: pd.Series, mdata: MuData | None = None, key: str | None = None):
    """Colour of each level-1 type: from ``mdata.uns["<key>_colors"]`` when given, else by
    sorted name, so the same type has the same colour in every figure."""
    names = sorted(pd.unique(parents.astype(str)))
    if mdata is not None and key is not None:
        return category_colors(mdata, key, names)
    return dict(zip(names, palette(len(names)), strict=True))


def category_colors(mdata: MuData, key: str, names: list[str] | None = None) -> dict[str, object]:
    """Colours of a label column's categories, kept in ``mdata.uns["<key>_colors"]`` as scanpy does.

    The categories are the column's (sorted by name unless categorical). Existing colours are
    reused when they match the number of categories; otherwise a palette is assigned and
    stored, so every later figure colours each category alike.
    """
    from matplotlib.colors import to_hex

    from .._validate import find_labels

    labels = find_labels(mdata, key)
    if isinstance(labels.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in labels.cat.categories]
    else:
        cats = sorted(pd.unique(labels.dropna().astype(str)))
    uns_key = f"{key}_colors"
    stored = mdata.uns.get(uns_key)
    if stored is None or len(stored) != len(cats):
        stored = [to_hex(c) for c in palette(len(cats))]
        mdata.uns[uns_key] = np.asarray(stored, dtype=object)
    colors = dict(zip(cats, list(stored), strict=True))
    if names is not None:
        extra = [n for n in names if n not in colors]
        colors.update(zip(extra, palette(len(extra)), strict=True))
        return {n: colors[n] for n in names}
    return colors


def finish(
    fig: Figure,
    save: str | os.PathLike | None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Lay out, save, and show or return a figure (scanpy's ``show``/``return_fig``/``save``).

    ``return_fig=True`` or ``show=False`` returns the Figure; otherwise it is shown (in
    Jupyter: drawn once) and None is returned.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    fig.tight_layout()
    if save is not None:
        fig.savefig(save, dpi=150, bbox_inches="tight")
    if return_fig or show is False:
        return fig
    if matplotlib.get_backend().lower() not in _NON_INTERACTIVE:
        plt.show()
    plt.close(fig)
    return None


_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


_SHOW_SAVE = """show
        Show the figure (default; in Jupyter it is drawn once) and return None. ``False``:
        return the Figure without showing it.
    save
        Path to save the figure to (any format matplotlib writes, from the suffix).
    return_fig
        Return the Figure (and do not show it).

    Returns
    -------
    The matplotlib Figure when ``return_fig=True`` or ``show=False``, else None."""

#: Docstring entries every plot shares (filled in by :func:`doc_params`).
DOC = {
    "table": """data
        A MuData after :func:`indiseek.tl.theta_score`, or a table from
        :func:`indiseek.tl.rank_comparison` (with ``parent_key``, coloured by level-1 type).
    groupby
        Cell-type column (with a MuData).
    parent_key
        Level-1 type column (with a MuData): colours the types, with the colours kept in
        ``mdata.uns["<parent_key>_colors"]`` (written if absent or of the wrong length), so
        each level-1 type has one colour in every figure.
    theta_key
        θ column (with a MuData).""",
    "ax_save": """ax
        Axes to draw on (default: a new figure).
    {show_save}""",
    "save": """{show_save}""",
}


def doc_params(func):
    """Fill ``{ax_save}`` / ``{save}`` / ``{table}`` in a plot's docstring with the shared entries."""
    entries = {k: v.replace("{show_save}", _SHOW_SAVE) for k, v in DOC.items()}
    func.__doc__ = func.__doc__.format(**entries)
    return func


def parent_legend(ax, colors: dict, **kwargs) -> None:
    """Legend of level-1 types (``colors``: name → colour)."""
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=p) for p, c in colors.items()]
    ax.legend(
        handles=handles, title="level-1 type", fontsize=8, title_fontsize=8, frameon=False, **kwargs
    )
