"""Isotype controls: which ADT features are antibodies against no target, kept out of the model."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: ``isotype_controls="auto"`` takes a protein for an isotype control when its name contains
#: "isotype", or a host species followed by IgG/IgM (``Mouse-IgG1κ-isotype-Ctrl``,
#: ``ADT_mouse_IgG2a``, ``Rat IgG2b``, ``MouseIgG1``, ``Armenian-Hamster-IgG``), or an IgG/IgM
#: class followed by "ctrl"/"control" (10x's ``IgG1_control_TotalSeqB``). Markers such as
#: ``IgD``, ``IgM``, ``IgG Fc``, ``Mouse-IgD`` or ``anti-mouse IgM`` do not match; other names (clone-only names
#: like ``MOPC-21``) must be listed by hand.
ISOTYPE_PATTERN = re.compile(
    r"isotype"
    r"|(^|(?<!anti)[ _.-])(mouse|ms|rat|rabbit|goat|hamster|armenian[ _.-]?hamster)[ _.-]*ig[gm]"
    r"|(^|[ _.-])ig[gm]\w*?[ _.-]*(ctrl|control)",
    re.IGNORECASE,
)


def isotype_mask(
    proteins: pd.Index, isotype_controls: str | Sequence[str] | None, modality: str
) -> np.ndarray:
    """Boolean mask of the isotype controls among ``proteins`` (what :func:`prepare` leaves out).

    Parameters
    ----------
    proteins
        Protein names, e.g. ``mdata.mod["adt"].var_names``.
    isotype_controls
        ``"auto"``: names matching :data:`ISOTYPE_PATTERN`; a list: exactly those names (each
        must be a protein of the modality); ``None``: none.
    modality
        Modality name, for error messages.

    Returns
    -------
    One boolean per protein.

    Examples
    --------
    >>> import pandas as pd
    >>> isotype_mask(pd.Index(["CD3", "Mouse-IgG1-isotype", "IgD"]), "auto", "adt").tolist()
    [False, True, False]
    """
    names = pd.Index(proteins).astype(str)
    if isotype_controls is None:
        mask = np.zeros(len(names), dtype=bool)
    elif isinstance(isotype_controls, str):
        if isotype_controls != "auto":
            raise ValueError(
                f"isotype_controls must be 'auto', None or a list of protein names, got "
                f"{isotype_controls!r} (for one protein pass [{isotype_controls!r}])."
            )
        mask = np.array([bool(ISOTYPE_PATTERN.search(n)) for n in names], dtype=bool)
    else:
        values = list(isotype_controls)
        if any(isinstance(v, bool | np.bool_) for v in values):
            raise ValueError(
                "isotype_controls must be 'auto', None or a list of protein names, got a "
                "boolean mask; pass the names, e.g. list(adata.var_names[mask])."
            )
        wanted = pd.Index([str(n) for n in values])
        missing = wanted.difference(names)
        if len(missing):
            raise ValueError(
                f"isotype_controls names {list(missing[:5])}, which modality {modality!r} does "
                f"not have (its proteins include {list(names[:5])})."
            )
        mask = names.isin(wanted)
    if (~mask).sum() < 2:
        raise ValueError(
            f"Modality {modality!r} would keep {int((~mask).sum())} protein(s) after removing "
            f"{int(mask.sum())} isotype control(s); at least 2 are needed for the model."
        )
    return mask
