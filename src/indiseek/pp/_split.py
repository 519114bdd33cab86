"""The train/test split of cells: what preprocessing and IndiSeek may learn from."""

from __future__ import annotations

import numpy as np


def split_cells(n_cells: int, train_size: float | int, seed: int = 0) -> np.ndarray:
    """Boolean mask of training cells for a reproducible random split.

    Parameters
    ----------
    n_cells
        Number of cells.
    train_size
        A fraction in (0, 1] or a number of cells in [1, n_cells].
    seed
        Seed of the permutation.

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
    mask[np.random.default_rng(seed).permutation(n_cells)[:n_train]] = True
    return mask
