"""Which cells θ scores, and with which members: the split, the ensemble that
``write_obsm`` recorded, and its cross-fitting folds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import _keys as K
from .._validate import split_column

if TYPE_CHECKING:
    from mudata import MuData


def _written(mdata: MuData, rna_key: str, adt_key: str) -> dict:
    """What ``write_obsm`` recorded for the embeddings whose Z keys these are (``{}``: none)."""
    written = dict(mdata.uns.get(K.UNS, {}).get("embeddings", {}))
    if K.OBSM_ALL not in written and "model" in mdata.uns.get(K.UNS, {}):
        written[K.OBSM_ALL] = mdata.uns[K.UNS]["model"]  # written by indiseek < 0.3
    for key_added, info in written.items():
        keys = K.embedding_keys(key_added)
        if (rna_key, adt_key) == (keys["Z_rna"], keys["Z_adt"]):
            return dict(info)
    return {}


def _crossfit_folds(
    mdata: MuData, rna_key: str, adt_key: str, members: int, cross_fit
) -> np.ndarray | None:
    """Each cell's cross-fitting fold (−1: held out from every member) when the embeddings were
    written by a model trained with ``cross_fit=True`` on these cells and ``cross_fit`` allows
    it; ``None`` otherwise (an error when ``cross_fit=True`` cannot be honoured)."""
    folds = None
    if cross_fit is not False:
        info = _written(mdata, rna_key, adt_key)
        written = int(info.get("n_members", 0))
        fold_key = info.get("fold_key")
        if fold_key and fold_key in mdata.obs:
            names = mdata.obs[fold_key].astype(str).to_numpy()
            folds = np.full(len(names), -1, dtype=np.int64)
            for j in range(written):
                folds[names == f"fold{j}"] = j
        if folds is not None and members != written:
            raise ValueError(
                f"members={members}, but {rna_key!r} / {adt_key!r} hold a cross-fitted ensemble "
                f"of {written} members (fold j is scored by member j alone); leave members="
                "'auto' or pass cross_fit=False to ignore the folds."
            )
        if folds is not None and not (folds >= 0).any():
            folds = None  # embedded cells that no member trained on: nothing to cross-fit
    if cross_fit is True and folds is None:
        raise ValueError(
            f"cross_fit=True, but {rna_key!r} / {adt_key!r} were not written by a model trained "
            "with train(cross_fit=True) on these cells (no fold column recorded for them); train "
            "with cross_fit=True and write_obsm, or leave cross_fit='auto'."
        )
    return folds


def _ensemble_members(mdata: MuData, rna_key: str, adt_key: str) -> int:
    """Members side by side in Z keys that ``write_obsm`` wrote, as it recorded them."""
    info = _written(mdata, rna_key, adt_key)
    if info:
        n = int(info.get("n_members", 1))
        width = int(info.get("n_shared" if info.get("z_is_c") else "n_specific", 0))
        shapes = [mdata.obsm[k].shape[1] for k in (rna_key, adt_key) if k in mdata.obsm]
        # indiseek 0.1 wrote the first member alone here (its members went to other keys)
        return n if n > 1 and shapes == [n * width] * 2 else 1
    return 1


def _subset_mask(mdata: MuData, subset, split_key: str | None) -> np.ndarray:
    """Cells to score: ``None`` (all), ``"auto"`` (held-out cells when there is a split with
    some, else all), a value of ``mdata.obs[split_key]``, or a boolean mask."""
    split_key = split_column(mdata, split_key)
    n = mdata.n_obs
    if subset is None:
        return np.ones(n, dtype=bool)
    if isinstance(subset, str) and subset == "auto":
        if split_key in mdata.obs:
            test = (mdata.obs[split_key].astype(str) == "test").to_numpy()
            if test.any():
                return test
        return np.ones(n, dtype=bool)
    if isinstance(subset, str):
        if split_key not in mdata.obs:
            raise KeyError(
                f"subset={subset!r} refers to mdata.obs[{split_key!r}], which does not exist; "
                "run isk.pp.prepare(..., train_size=...) or pass a boolean mask."
            )
        mask = (mdata.obs[split_key].astype(str) == subset).to_numpy()
        if not mask.any():
            raise ValueError(f"No cells with mdata.obs[{split_key!r}] == {subset!r}.")
        return mask
    mask = np.asarray(subset)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(
            f"subset must be a boolean mask of length {n} (or a split name), got {mask.dtype} {mask.shape}."
        )
    return mask
