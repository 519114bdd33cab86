"""Isotype controls: which ADT features are antibodies against no target, kept out of the model."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: ``isotype_controls="auto"`` takes a protein for an isotype control when its name contains
#: "isotype" or starts with a host species and an immunoglobulin class, e.g.
#: ``Mouse-IgG1κ-isotype-Ctrl``, ``mouse_IgG2a``, ``Rat IgG2b``, ``Hamster-IgG``. Targets such as
#: ``IgD`` or ``IgM`` (no species) are markers, not controls, and do not match.
ISOTYPE_PATTERN = re.compile(
    r"isotype|^(mouse|rat|rabbit|goat|hamster|armenian[ _.-]?hamster)[ _.-]*ig[gmaed]",
    re.IGNORECASE,
)


def isotype_mask(
    proteins: pd.Index, isotype_controls: str | Sequence[str] | None, modality: str
) -> np.ndarray:
    """Boolean mask of the isotype controls among ``proteins``.

    ``"auto"``: names matching :data:`ISOTYPE_PATTERN`; a list: exactly those names (each must
    be a protein of the modality); ``None``: none.
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
        wanted = pd.Index([str(n) for n in isotype_controls])
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
