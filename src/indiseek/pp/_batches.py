"""Batches (donors, lanes, sites) in preprocessing: which batch each cell is from, and the
per-batch means that :func:`indiseek.pp.prepare` removes from the model inputs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._validate import find_labels

if TYPE_CHECKING:
    from mudata import MuData


#: A batch without training cells is centred on its own cells only when it has this many; a
#: smaller one (a handful of new cells) would lose its own biology to its mean, so it is centred
#: on the average of the training batches' means instead.
MIN_OWN_CELLS = 20


def own_means_ok(codes: np.ndarray, b: int) -> bool:
    """Whether batch ``b`` (without training cells) has enough cells to be its own reference."""
    return int((codes == b).sum()) >= MIN_OWN_CELLS


@dataclass(frozen=True)
class Batches:
    """Each cell's batch: ``codes`` index ``names`` (the training fit's batches first)."""

    key: str
    names: np.ndarray
    codes: np.ndarray

    @property
    def n(self) -> int:
        return len(self.names)


def read_batches(mdata: MuData, batch_key: str, known: np.ndarray | None = None) -> Batches:
    """The batch column ``batch_key`` of ``mdata.obs`` (or a modality's ``.obs``), checked.

    ``known``: batch names of a training fit; they keep their codes, batches it lacks are
    appended after them.
    """
    if not isinstance(batch_key, str) or not batch_key:
        raise TypeError(f"batch_key must be a column name of mdata.obs, got {batch_key!r}.")
    try:
        column = find_labels(mdata, batch_key)
    except KeyError as err:
        raise KeyError(
            f"batch_key={batch_key!r} is not a column of mdata.obs or of a modality's .obs "
            f"(mdata.obs has {list(mdata.obs.columns)})."
        ) from err
    missing = column.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"mdata.obs[{batch_key!r}] has no batch for {int(missing.sum())} of {len(column)} "
            f"cells (e.g. {list(column.index[missing][:3])}); every cell needs one."
        )
    values = column.astype(str).to_numpy()
    names = list(np.asarray(known, dtype=str)) if known is not None else []
    new = [b for b in pd.unique(values) if b not in set(names)]
    names = np.asarray(names + sorted(new), dtype=str)
    codes = pd.Index(names).get_indexer(values)
    return Batches(batch_key, names, codes.astype(np.int64))


def check_training_batches(batches: Batches, train: np.ndarray) -> np.ndarray:
    """Training cells per batch; a batch with a single training cell is an error (its mean
    would be that cell)."""
    counts = np.bincount(batches.codes[train], minlength=batches.n)
    few = batches.names[(counts > 1) & (counts < MIN_OWN_CELLS)]
    if len(few):
        warnings.warn(
            f"Batch(es) {[str(b) for b in few]} of mdata.obs[{batches.key!r}] have fewer than "
            f"{MIN_OWN_CELLS} training cells: their means (and local neighbours) are noisy and "
            "remove part of their own biology; consider merging them with a similar batch.",
            UserWarning,
            stacklevel=4,
        )
    lonely = batches.names[counts == 1]
    if len(lonely):
        raise ValueError(
            f"Batch(es) {[str(b) for b in lonely]} of mdata.obs[{batches.key!r}] have a single "
            "training cell; each batch needs at least 2 (or none: then it is treated as a new "
            "batch)."
        )
    return counts


def group_means(x: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Mean of the rows of ``x`` in each group ``0..n-1`` (float64; NaN for an empty group)."""
    sums = np.zeros((n, x.shape[1]))
    for g in np.unique(codes):
        sums[g] = np.asarray(x[codes == g], dtype=np.float64).sum(axis=0)
    counts = np.bincount(codes, minlength=n).astype(np.float64)[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def with_unseen_means(mean: np.ndarray, codes: np.ndarray, n: int, own_mean) -> np.ndarray:
    """The fit's per-batch means (rows), then one for each batch it has none for (codes
    ``len(mean)..n-1``): ``own_mean(b)``, its own cells' mean, when it has
    :data:`MIN_OWN_CELLS` cells, else the average of the fit's batches."""
    pooled = mean.mean(axis=0)
    extra = [own_mean(b) if own_means_ok(codes, b) else pooled for b in range(len(mean), n)]
    return np.vstack([mean, *extra]) if extra else mean


def warn_unseen(batches: Batches, seen: int, modality: str, stacklevel: int = 5) -> None:
    """Batches without training cells are centred on their own cells: say which."""
    unseen = np.arange(seen, batches.n)
    unseen = unseen[np.isin(unseen, batches.codes)]
    if len(unseen):
        own = [str(batches.names[b]) for b in unseen if own_means_ok(batches.codes, b)]
        few = [str(batches.names[b]) for b in unseen if not own_means_ok(batches.codes, b)]
        parts = []
        if own:
            parts.append(f"{own} are centred on their own cells' means")
        if few:
            parts.append(
                f"{few} (fewer than {MIN_OWN_CELLS} cells) on the average of the training "
                "batches' means, without the local correction"
            )
        warnings.warn(
            f"Preprocessing: batch(es) of mdata.obs[{batches.key!r}] without training cells: "
            f"{'; '.join(parts)} ({modality} inputs).",
            UserWarning,
            stacklevel=stacklevel,
        )


def batches_for(mdata: MuData, batch_key: str | None, ref_state: dict | None):
    """The batch column to use (``batch_key``, or the reference's) and each cell's batch
    (``None`` without batches)."""
    inherited = ref_state is not None and batch_key is None
    ref_key = None if ref_state is None else ref_state.get("params", {}).get("batch_key") or None
    if ref_state is not None and batch_key is not None and ref_key and batch_key != ref_key:
        raise ValueError(
            f"batch_key={batch_key!r}, but the reference's batches are mdata.obs[{ref_key!r}]; "
            f"leave batch_key=None (the new cells need obs[{ref_key!r}])."
        )
    if inherited:
        batch_key = ref_key
    try:
        batches = None if batch_key is None else read_batches(mdata, batch_key)
    except KeyError as err:
        if not inherited:
            raise
        raise KeyError(
            f"The reference was prepared with batch_key={batch_key!r}: these cells need "
            f"mdata.obs[{batch_key!r}] too (new batches are centred on their own cells)."
        ) from err
    return batch_key, batches


def order_batches(mdata: MuData, batches: Batches | None, train: np.ndarray, ref_state):
    """Batches re-coded with the fit's batches (those with training cells) first, and those
    batches' names; warns about batches without training cells."""
    if batches is None:
        return None, None
    batch_key = batches.key
    known = ref_state["rna"].get("batches") if ref_state is not None else None
    if ref_state is not None and known is None:
        raise ValueError(
            f"batch_key={batch_key!r} was given, but the reference was prepared without "
            "batches; prepare the new cells without batch_key."
        )
    if known is None:  # the batches with training cells come first
        per_batch = check_training_batches(batches, train)
        known = batches.names[per_batch > 0]
    batches = read_batches(mdata, batch_key, known)
    warn_unseen(batches, len(known), "RNA and ADT")
    return batches, known
