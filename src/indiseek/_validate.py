"""Input checks shared by preprocessing, the model and the tools.

Every error names the modality, key, shape or value at fault and what was expected.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData


def check_mudata(mdata: object, what: str = "mdata") -> None:
    """A MuData (with ``.mod``), or a TypeError naming what was passed."""
    if not hasattr(mdata, "mod") or not hasattr(mdata, "obs"):
        raise TypeError(f"{what} must be a MuData object, got {type(mdata).__name__}.")


def get_modality(mdata: MuData, key: str, role: str) -> AnnData:
    """Return ``mdata.mod[key]`` or raise a KeyError that lists what is there."""
    if not hasattr(mdata, "mod"):
        raise TypeError(
            f"Expected a MuData object with {role} modality {key!r}, got {type(mdata).__name__}."
        )
    if key not in mdata.mod:
        raise KeyError(
            f"No {role} modality {key!r} in the MuData; it has modalities {sorted(mdata.mod)}. "
            f"Pass {role}=<name> to say which one holds {role.upper()}."
        )
    return mdata.mod[key]


def check_same_cells(mdata: MuData, rna: str, adt: str) -> None:
    """Both modalities must hold exactly the same cells (in any order)."""
    a, b = mdata.mod[rna].obs_names, mdata.mod[adt].obs_names
    if a.equals(b):
        return
    only_a = a.difference(b)
    only_b = b.difference(a)
    if len(only_a) or len(only_b) or len(a) != len(b):
        raise ValueError(
            f"Modalities {rna!r} ({len(a)} cells) and {adt!r} ({len(b)} cells) cover different "
            f"cells: {len(only_a)} only in {rna!r} (e.g. {list(only_a[:3])}), {len(only_b)} only in "
            f"{adt!r} (e.g. {list(only_b[:3])}). IndiSeek needs paired cells; subset both "
            "modalities to the shared cells first, e.g. mu.pp.intersect_obs(mdata)."
        )


def get_matrix(adata: AnnData, layer: str | None, modality: str):
    """``.X`` or a named layer of a modality."""
    if layer is None:
        if adata.X is None:
            raise ValueError(f"Modality {modality!r} has no .X; pass the layer that holds counts.")
        return adata.X
    if layer not in adata.layers:
        raise KeyError(
            f"No layer {layer!r} in modality {modality!r}; it has layers {sorted(adata.layers)}."
        )
    return adata.layers[layer]


def check_unique_names(mdata: MuData, modalities: tuple[str, ...]) -> None:
    """Cell names (of the MuData and each modality) and feature names must be unique."""
    where = {"mdata": mdata.obs_names, **{m: mdata.mod[m].obs_names for m in modalities}}
    for name, index in where.items():
        if not index.is_unique:
            dup = index[index.duplicated()].unique()
            fix = (
                "mdata.obs_names_make_unique()"
                if name == "mdata"
                else (f"mdata.mod[{name!r}].obs_names_make_unique() and mdata.update()")
            )
            raise ValueError(
                f"{'The MuData' if name == 'mdata' else f'Modality {name!r}'} has {len(dup)} "
                f"duplicate cell names (e.g. {list(dup[:3])}); cells must be told apart by name. "
                f"Make them unique first, e.g. {fix}."
            )
    for m in modalities:
        names = mdata.mod[m].var_names
        if not names.is_unique:
            dup = names[names.duplicated()].unique()
            raise ValueError(
                f"Modality {m!r} has {len(dup)} duplicate feature names (e.g. {list(dup[:3])}); "
                f"make them unique first, e.g. mdata.mod[{m!r}].var_names_make_unique()."
            )


def on_disk(x) -> bool:
    """Whether a matrix is read from disk on access (``.X`` of a backed AnnData: an h5py
    dataset, or anndata's sparse dataset, which reads rows into a scipy matrix)."""
    if isinstance(x, np.ndarray) or sparse.issparse(x):
        return False
    import h5py

    return isinstance(x, h5py.Dataset) or (hasattr(x, "to_memory") and hasattr(x, "format"))


def in_memory(x):
    """``x`` itself, or, when it is on disk (backed AnnData), all of it read into memory."""
    if not on_disk(x):
        return x
    return x.to_memory() if hasattr(x, "to_memory") else x[()]


def _head(x):
    """A matrix on disk is sampled on its first 2,000 cells (as the first values are in memory)."""
    return x[: min(x.shape[0], 2000)] if on_disk(x) else x


def is_integer_valued(x, n_check: int = 100_000) -> bool:
    """Whether a matrix holds whole numbers (checked on up to ``n_check`` stored values)."""
    x = _head(x)
    values = x.data if sparse.issparse(x) else np.asarray(x).ravel()
    if values.dtype.kind in "iub":
        return True
    if values.dtype.kind != "f":
        return True  # not numbers at all: check_counts says so
    sample = values[:n_check]
    sample = sample[np.isfinite(sample)]  # NaN and inf are reported by check_counts
    return bool(np.all(sample == np.round(sample)))


def resolve_counts(adata: AnnData, layer: str | None, modality: str, role: str):
    """The raw counts of a modality: ``layer``, else ``.X``, else ``layers["counts"]``.

    Whole numbers are expected. When ``.X`` is not whole-numbered (e.g. log-normalised data
    from Seurat's ``data`` slot) and ``layers["counts"]`` is, the counts layer is used with a
    warning; otherwise a ValueError says which layer to pass. Returns ``(matrix, layer)``.
    """
    if layer is None and adata.X is None and "counts" in adata.layers:
        return adata.layers["counts"], "counts"  # no .X at all: the counts layer is the data
    x = get_matrix(adata, layer, modality)
    if is_integer_valued(x):
        return x, layer
    where = f"layer {layer!r}" if layer else ".X"
    if layer is None and "counts" in adata.layers and is_integer_valued(adata.layers["counts"]):
        warnings.warn(
            f"Modality {modality!r}: .X holds non-integer values (normalised data?); using its "
            f"raw counts in layers['counts'] instead. Pass {role}_layer='counts' to say so.",
            UserWarning,
            stacklevel=3,
        )
        return adata.layers["counts"], "counts"
    layers = sorted(adata.layers)
    raise ValueError(
        f"Modality {modality!r} ({where}) holds non-integer values (e.g. "
        f"{_first_fraction(x):g}); raw counts are expected, not normalised data. Pass "
        f"{role}_layer=<layer with raw counts> (layers: {layers}) to isk.pp.prepare; for new "
        "cells of a trained model, prepare them first with isk.pp.prepare(new, "
        f"{role}_layer=..., reference=<training MuData>)."
    )


def _first_fraction(x) -> float:
    x = _head(x)
    values = x.data if sparse.issparse(x) else np.asarray(x).ravel()
    frac = values[values != np.round(values)]
    return float(frac[0]) if len(frac) else float("nan")


def check_counts(x, modality: str, obs_names: pd.Index, where: str = ".X") -> None:
    """Counts must be numbers, finite, non-negative, and every cell must have some.

    A matrix on disk (backed AnnData) is read and checked in preprocessing's chunks of cells
    (50,000): a bad value is reported from the first chunk that holds one, empty cells from all
    chunks.
    """
    if not on_disk(x):
        _check_values(x, modality, where)
        empty = np.flatnonzero(np.asarray(x.sum(axis=1)).ravel() == 0)
    else:
        from .pp._transforms import chunks  # here: pp imports this module

        empty_parts = []
        for rows in chunks(x.shape[0]):
            block = x[rows]
            _check_values(block, modality, where)
            totals = np.asarray(block.sum(axis=1)).ravel()
            empty_parts.append(rows.start + np.flatnonzero(totals == 0))
        empty = np.concatenate(empty_parts) if empty_parts else np.array([], dtype=int)
    if len(empty):
        raise ValueError(
            f"Modality {modality!r} ({where}) has {len(empty)} cells with zero total counts "
            f"(e.g. {list(obs_names[empty[:3]])}); remove them first, e.g. with "
            "sc.pp.filter_cells(..., min_counts=1) on both modalities."
        )


def _check_values(x, modality: str, where: str) -> None:
    values = x.data if sparse.issparse(x) else np.asarray(x)
    if values.dtype.kind not in "biuf":
        raise ValueError(
            f"Modality {modality!r} ({where}) holds {values.dtype} values; raw counts (numbers) "
            "are expected."
        )
    if not np.all(np.isfinite(values)):
        n_bad = int(np.size(values) - np.isfinite(values).sum())
        raise ValueError(
            f"Modality {modality!r} ({where}) holds NaN or infinite values ({n_bad} among "
            f"{np.size(values)} checked); raw counts are expected."
        )
    if values.size and values.min() < 0:
        raise ValueError(
            f"Modality {modality!r} ({where}) holds negative values (minimum {values.min():g}); "
            "raw counts are expected, not normalised or scaled data."
        )


def find_labels(mdata: MuData, key: str) -> pd.Series:
    """Labels from ``mdata.obs[key]`` or a modality's ``.obs`` (``'rna:celltype'`` or ``'celltype'``)."""
    if not isinstance(key, str):
        raise TypeError(f"A column name must be a string, got {key!r}.")
    if key in mdata.obs:
        return mdata.obs[key]
    if ":" in key:
        mod, col = key.split(":", 1)
        if mod in mdata.mod and col in mdata.mod[mod].obs:
            return mdata.mod[mod].obs[col].reindex(mdata.obs_names)
    for mod, adata in mdata.mod.items():
        if key in adata.obs:
            return adata.obs[key].reindex(mdata.obs_names).rename(f"{mod}:{key}")
    candidates = list(mdata.obs.columns) + [
        f"{m}:{c}" for m, a in mdata.mod.items() for c in a.obs.columns
    ]
    raise KeyError(
        f"No label column {key!r} in mdata.obs or any modality's .obs; available columns: "
        f"{candidates}."
    )


def get_obsm(mdata: MuData, key: str, modality: str | None = None) -> np.ndarray:
    """An embedding from ``mdata.obsm``, a modality's ``.obsm`` (``modality`` or ``"mod:key"``).

    A key found in no ``mdata.obsm`` but in exactly one modality's ``.obsm`` is taken from
    there.
    """
    if not isinstance(key, str):
        raise TypeError(f"An .obsm key must be a string, got {type(key).__name__}.")
    x = _find_obsm(mdata, key, modality)
    if x.ndim != 2 or x.dtype.kind not in "fiu" or x.shape[1] < 1:
        raise ValueError(
            f"{key!r} is not an embedding (cells × dimensions of numbers): it has shape "
            f"{x.shape} and dtype {x.dtype}."
        )
    return x


def _find_obsm(mdata: MuData, key: str, modality: str | None) -> np.ndarray:
    if key not in mdata.obsm and ":" in key and modality is None:
        mod, _, inner = key.partition(":")
        if mod in mdata.mod and inner in mdata.mod[mod].obsm:
            return _in_mudata_order(mdata, mod, inner)
    if modality is not None and key in mdata.mod[modality].obsm:
        return _in_mudata_order(mdata, modality, key)
    if key in mdata.obsm:
        return np.asarray(mdata.obsm[key])
    holders = [m for m, a in mdata.mod.items() if key in a.obsm]
    if modality is None and len(holders) == 1:
        return _in_mudata_order(mdata, holders[0], key)
    where = f"mdata.obsm or mdata.mod[{modality!r}].obsm" if modality else "mdata.obsm"
    in_mods = [f"{m}:{k}" for m, a in mdata.mod.items() for k in a.obsm]
    hint = (
        f" It is in several modalities; name one, e.g. {holders[0]}:{key}."
        if len(holders) > 1
        else " Run isk.pp.prepare (inputs) or model.write_obsm(mdata) (IndiSeek embeddings) first."
    )
    raise KeyError(
        f"No embedding {key!r} in {where}; available: {sorted(mdata.obsm)} and, in the "
        f"modalities (as '<modality>:<key>'), {in_mods}.{hint}"
    )


def _in_mudata_order(mdata: MuData, mod: str, key: str) -> np.ndarray:
    """A modality's ``.obsm[key]`` with one row per cell of ``mdata``, in ``mdata``'s order."""
    adata = mdata.mod[mod]
    x = np.asarray(adata.obsm[key])
    if adata.obs_names.equals(mdata.obs_names):
        return x
    idx = adata.obs_names.get_indexer(mdata.obs_names)
    if (idx < 0).any():
        raise ValueError(
            f"Modality {mod!r} lacks {int((idx < 0).sum())} of the MuData's cells, so "
            f"{mod}:{key} has no row for them; subset the MuData to the modality's cells first."
        )
    return x[idx]


def prepare_params(mdata: MuData) -> dict:
    """The parameters ``pp.prepare`` recorded in ``mdata.uns`` (``{}``: not prepared)."""
    return dict(mdata.uns.get("indiseek", {}).get("prepare", {}).get("params", {}))


def split_column(mdata: MuData, split_key: str | None = None) -> str:
    """The train/test column: ``split_key``, else the one ``setup_mudata`` recorded, else the
    one ``pp.prepare`` was given, else ``"indiseek_split"``."""
    if split_key is not None:
        return split_key
    setup = mdata.uns.get("indiseek", {}).get("setup", {})
    recorded = setup.get("split_key") or prepare_params(mdata).get("split_key")
    return str(recorded) if recorded else "indiseek_split"
