"""Disentanglement diagnostics of a trained model: what each Z still knows of the other C."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .._validate import check_mudata, split_column
from ._leakage import predictability

if TYPE_CHECKING:
    from mudata import MuData

_OTHER = {"rna": "adt", "adt": "rna"}


def disentanglement(
    mdata: MuData,
    model: Any,
    *,
    cells: Literal["test", "all"] = "test",
    split_key: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """How much of the other modality's shared features each Z still carries.

    For each modality i: the R² with which a k-nearest-neighbour regression predicts
    C_other from Z_i (cross-validated, see :func:`predictability`; near 0 is the goal), the
    same from C_i for reference, and the relative reconstruction error of X_i from
    (Z_i, C_i). Every number is the mean over the ensemble's members, the same members whose
    θ :func:`theta_score` averages.

    Parameters
    ----------
    mdata
        Cells to evaluate (the training MuData or new cells with the same features).
    model
        A trained :class:`indiseek.IndiSeek`.
    cells
        ``"test"``: cells that did not train the model (known by name to the model, also
        after :meth:`~indiseek.IndiSeek.load`; for models saved before 0.3, cells with
        ``mdata.obs[split_key] == "test"``) when there are any, else all; ``"all"``.
    split_key
        Column of the train/test split (default: the one ``setup_mudata`` recorded, else
        ``"indiseek_split"``).
    seed
        Seed of the cross-validation folds.

    Returns
    -------
    DataFrame indexed by modality: ``r2_Z_to_C_other``, ``r2_C_own_to_C_other``,
    ``rel_rec_error``, ``n_cells``, ``n_members``. Nothing is written to ``mdata``.

    Examples
    --------
    >>> isk.tl.disentanglement(mdata, model)  # doctest: +SKIP
    """
    check_mudata(mdata)
    if not hasattr(model, "get_representations") or not getattr(model, "is_trained", False):
        raise TypeError(f"model must be a trained IndiSeek model, got {type(model).__name__}.")
    if cells not in ("test", "all"):
        raise ValueError(f"cells must be 'test' or 'all', got {cells!r}.")
    every = model.get_representations(mdata, members=True)
    mask = np.ones(mdata.n_obs, dtype=bool)
    trained_on = getattr(model, "training_cells", None)
    if cells == "test" and trained_on is not None:
        # the model knows its training cells by name (also after load, and on new cells)
        test = ~np.isin(np.asarray(mdata.obs_names, dtype=str), trained_on)
        mask = test if test.any() else mask
    elif cells == "test" and (split_key := split_column(mdata, split_key)) in mdata.obs:
        test = (mdata.obs[split_key].astype(str) == "test").to_numpy()
        mask = test if test.any() else mask
    n = model.n_members
    blocks = {k: np.split(v[mask], n, axis=1) for k, v in every.items()}
    errors = model.reconstruction_error(mdata, mask)
    rows = {}
    for m, other in _OTHER.items():
        r2_z = [
            predictability(z, c, seed=seed)
            for z, c in zip(blocks[f"Z_{m}"], blocks[f"C_{other}"], strict=True)
        ]
        r2_c = [
            predictability(c, o, seed=seed)
            for c, o in zip(blocks[f"C_{m}"], blocks[f"C_{other}"], strict=True)
        ]
        rows[m] = {
            "r2_Z_to_C_other": float(np.mean(r2_z)),
            "r2_C_own_to_C_other": float(np.mean(r2_c)),
            "rel_rec_error": errors[m],
            "n_cells": int(mask.sum()),
            "n_members": n,
        }
    return pd.DataFrame(rows).T
