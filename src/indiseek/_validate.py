"""Input checks shared by preprocessing, the model and the tools.

Every error names the modality, key, shape or value at fault and what was expected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData


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


def check_counts(x, modality: str, obs_names: pd.Index, where: str = ".X") -> None:
    """Counts must be finite, non-negative, and every cell must have some."""
    values = x.data if sparse.issparse(x) else np.asarray(x)
    if not np.all(np.isfinite(values)):
        n_bad = int(np.size(values) - np.isfinite(values).sum())
        raise ValueError(
            f"Modality {modality!r} ({where}) holds {n_bad} NaN or infinite values; raw counts "
            "are expected."
        )
    if values.size and values.min() < 0:
        raise ValueError(
            f"Modality {modality!r} ({where}) holds negative values (minimum {values.min():g}); "
            "raw counts are expected, not normalised or scaled data."
        )
    totals = np.asarray(x.sum(axis=1)).ravel()
    empty = np.flatnonzero(totals == 0)
    if len(empty):
        raise ValueError(
            f"Modality {modality!r} ({where}) has {len(empty)} cells with zero total counts "
            f"(e.g. {list(obs_names[empty[:3]])}); remove them first, e.g. with "
            "sc.pp.filter_cells(..., min_counts=1) on both modalities."
        )


def find_labels(mdata: MuData, key: str) -> pd.Series:
    """Labels from ``mdata.obs[key]`` or a modality's ``.obs`` (``'rna:celltype'`` or ``'celltype'``)."""
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
    """An embedding from ``mdata.obsm``, a modality's ``.obsm`` (``modality``), or ``"mod:key"``."""
    if key not in mdata.obsm and ":" in key and modality is None:
        mod, _, inner = key.partition(":")
        if mod in mdata.mod and inner in mdata.mod[mod].obsm:
            return np.asarray(mdata.mod[mod].obsm[inner])
    if modality is not None and key in mdata.mod[modality].obsm:
        return np.asarray(mdata.mod[modality].obsm[key])
    if key in mdata.obsm:
        return np.asarray(mdata.obsm[key])
    where = f"mdata.obsm or mdata.mod[{modality!r}].obsm" if modality else "mdata.obsm"
    raise KeyError(
        f"No embedding {key!r} in {where}; available: {sorted(mdata.obsm)}. "
        "Run isk.pp.prepare (inputs) or model.write_obsm(mdata) (IndiSeek embeddings) first."
    )
