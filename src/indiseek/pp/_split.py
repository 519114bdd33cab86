"""The train/test split of cells: what preprocessing and IndiSeek may learn from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import check_mudata, find_labels

if TYPE_CHECKING:
    from mudata import MuData


def split_cells(
    n_cells: int, train_size: float | int, seed: int = 0, groups: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of training cells for a reproducible random split.

    Parameters
    ----------
    n_cells
        Number of cells.
    train_size
        A fraction in (0, 1] or a number of cells in [1, n_cells].
    seed
        Seed of the permutation.
    groups
        A group code per cell (e.g. donors): the split is drawn within each group, each
        contributing its share of ``train_size`` (rounded), so every group is in both parts.

    Returns
    -------
    Boolean array, ``True`` for training cells.

    Examples
    --------
    >>> split_cells(10, 0.5, seed=0).sum()
    np.int64(5)
    """
    if isinstance(train_size, bool) or not isinstance(
        train_size, int | float | np.integer | np.floating
    ):
        raise TypeError(f"train_size must be a fraction or a number of cells, got {train_size!r}.")
    if not np.isfinite(train_size) or train_size <= 0:
        raise ValueError(
            f"train_size must be a fraction in (0, 1] or a number of cells >= 2, got "
            f"{train_size!r}."
        )
    if isinstance(train_size, float | np.floating) and train_size <= 1:
        n_train = round(train_size * n_cells)
    else:
        if train_size != int(train_size):
            raise ValueError(
                f"train_size={train_size!r} is neither a fraction in (0, 1] nor a whole number of cells."
            )
        n_train = int(train_size)
    if n_train > n_cells:
        raise ValueError(f"train_size={train_size!r} is larger than the data ({n_cells} cells).")
    if n_train < 2:
        raise ValueError(f"train_size={train_size!r} leaves fewer than 2 training cells.")
    mask = np.zeros(n_cells, dtype=bool)
    rng = np.random.default_rng(seed)
    if groups is None:
        mask[rng.permutation(n_cells)[:n_train]] = True
        return mask
    groups = np.asarray(groups)
    fraction = n_train / n_cells
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        n_g = round(fraction * len(members))
        if n_g == 1:  # a group's statistics need 2 training cells, or none
            n_g = 2 if len(members) >= 2 else 0
        mask[rng.permutation(members)[:n_g]] = True
    if mask.sum() < 2:
        raise ValueError(f"train_size={train_size!r} leaves fewer than 2 training cells.")
    return mask


def read_split(mdata: MuData, split_key: str) -> np.ndarray:
    """Training cells of a ``"train"``/``"test"`` column of ``mdata.obs``, checked."""
    if not isinstance(split_key, str) or split_key not in mdata.obs:
        raise KeyError(
            f"split_key={split_key!r} is not a column of mdata.obs (it has "
            f"{list(mdata.obs.columns)}); write one with isk.pp.split_by_group."
        )
    values = mdata.obs[split_key].astype(object)
    bad = sorted({str(v) for v in values.dropna()} - {"train", "test"})
    if bad or values.isna().any():
        raise ValueError(
            f"mdata.obs[{split_key!r}] must hold 'train' or 'test' for every cell; found "
            f"{bad + (['NaN'] if values.isna().any() else [])}."
        )
    train = (values == "train").to_numpy()
    if train.sum() < 2:
        raise ValueError(
            f"mdata.obs[{split_key!r}] names {int(train.sum())} training cells; 2+ needed."
        )
    return train


def split_by_group(
    mdata: MuData,
    group_key: str,
    test: Sequence[str],
    *,
    key_added: str = K.SPLIT,
) -> None:
    """Hold out whole groups (donors, sites): a train/test column for ``pp.prepare(split_key=...)``.

    Parameters
    ----------
    mdata
        MuData whose ``.obs`` (or a modality's) holds ``group_key``.
    group_key
        Column of the groups, e.g. ``"donor"``.
    test
        Groups whose cells become test cells; the others are training cells.
    key_added
        ``mdata.obs`` column written (``"train"``/``"test"``).

    Returns
    -------
    Nothing; writes ``mdata.obs[key_added]``.

    Examples
    --------
    >>> isk.pp.split_by_group(mdata, "donor", test=["donor2"])  # doctest: +SKIP
    >>> isk.pp.prepare(mdata, batch_key="donor", split_key="indiseek_split")  # doctest: +SKIP
    """
    check_mudata(mdata)
    groups = find_labels(mdata, group_key).astype(object)
    if isinstance(test, str):
        test = [test]
    names = {str(g) for g in groups.dropna()}
    unknown = [t for t in test if str(t) not in names]
    if unknown or not len(test):
        raise ValueError(
            f"test={list(test)!r}: every test group must be a value of mdata.obs[{group_key!r}] "
            f"(it has {sorted(names)})."
        )
    is_test = groups.astype(str).isin([str(t) for t in test]).to_numpy()
    if groups.isna().any():
        raise ValueError(f"mdata.obs[{group_key!r}] has no group for some cells.")
    if is_test.all():
        raise ValueError("Every cell would be a test cell; leave at least one group for training.")
    mdata.obs[key_added] = pd.Categorical(
        np.where(is_test, "test", "train"), categories=["train", "test"]
    )


def training_cells(mdata, n, train_size, split_key, seed, batches, ref_state) -> np.ndarray:
    """Which cells the preprocessing is fitted on: a drawn split (within each batch), the
    user's split column, or every cell."""
    if ref_state is not None:
        if train_size is not None or split_key is not None:
            raise ValueError(
                "train_size and split_key cannot be combined with reference= (nothing is fitted)."
            )
        return np.ones(n, dtype=bool)
    if split_key is not None:
        if train_size is not None:
            raise ValueError(
                "Pass either train_size (draw a split) or split_key (use a split column), not both."
            )
        return read_split(mdata, split_key)
    if train_size is None:
        return np.ones(n, dtype=bool)
    return split_cells(n, train_size, seed, None if batches is None else batches.codes)
