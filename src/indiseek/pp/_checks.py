"""Checks of what :func:`indiseek.pp.prepare` is given: the two modalities and their counts,
and a reference fit."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import _keys as K
from .._validate import (
    check_counts,
    check_same_cells,
    check_unique_names,
    get_modality,
    in_memory,
    on_disk,
    resolve_counts,
)


def reference_state(reference) -> dict[str, Any]:
    if hasattr(reference, "uns"):
        state = reference.uns.get(K.UNS, {}).get("prepare")
        if state is None:
            raise ValueError(
                "reference= is a MuData that was never prepared (no "
                "uns['indiseek']['prepare']); pass the prepared training MuData."
            )
        return state
    if not isinstance(reference, dict) or not {"rna", "adt"} <= set(reference):
        raise TypeError(
            "reference= must be a prepared MuData or its uns['indiseek']['prepare'] dict, got "
            f"{type(reference).__name__}."
        )
    need = {"rna": ("genes", "mean", "std", "pca_mean", "loadings", "n_pcs"), "adt": ("mean",)}
    missing = [f"{m}.{k}" for m, keys in need.items() for k in keys if k not in reference[m]]
    if missing:
        raise ValueError(
            f"reference= lacks {missing}; pass a MuData prepared by isk.pp.prepare or its "
            "uns['indiseek']['prepare'] dict as written."
        )
    return reference


def checked_counts(
    mdata, rna, adt, rna_layer, adt_layer, n_top_genes, adt_clr_axis, seed=0, n_pcs=None
):
    """Both modalities (same cells, same order) and their count matrices, checked."""
    rna_ad = get_modality(mdata, rna, "rna")
    adt_ad = get_modality(mdata, adt, "adt")
    if rna == adt:
        raise ValueError(
            f"rna and adt name the same modality ({rna!r}); pass the two modalities of the "
            f"MuData (it has {sorted(mdata.mod)})."
        )
    check_same_cells(mdata, rna, adt)
    if not rna_ad.obs_names.equals(adt_ad.obs_names):
        raise ValueError(
            f"Modalities {rna!r} and {adt!r} hold the same cells in a different order; reorder "
            f"one, e.g. mdata.mod[{adt!r}] = mdata.mod[{adt!r}][mdata.mod[{rna!r}].obs_names]."
        )
    for name, value, low in (("n_top_genes", n_top_genes, 2), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if n_pcs is not None and (
        isinstance(n_pcs, bool) or not isinstance(n_pcs, int | np.integer) or n_pcs < 1
    ):
        raise ValueError(f"n_pcs must be a positive integer or None, got {n_pcs!r}.")
    for mod, role, least in ((rna_ad, rna, 2), (adt_ad, adt, 2)):
        if mod.n_vars < least:
            raise ValueError(
                f"Modality {role!r} has {mod.n_vars} feature(s); at least {least} are needed "
                "(CLR and PCA need several)."
            )
    if n_top_genes < 2:
        raise ValueError(f"n_top_genes must be >= 2, got {n_top_genes}.")
    if adt_clr_axis not in (0, 1):
        raise ValueError(f"adt_clr_axis must be 0 or 1, got {adt_clr_axis!r}.")
    check_unique_names(mdata, (rna, adt))
    for mod, role in ((rna_ad, rna), (adt_ad, adt)):
        if on_disk(mod.X) and getattr(mod.X, "format", None) == "csc":
            warnings.warn(
                f"Modality {role!r} (.X) is a backed CSC matrix: reading a chunk of cells reads "
                "the whole matrix, so preprocessing will be slow and memory-hungry. Store the "
                "counts as CSR (cells in rows), e.g. adata.X = scipy.sparse.csr_matrix(adata.X) "
                "before writing the file.",
                UserWarning,
                stacklevel=4,
            )
    obs_names = rna_ad.obs_names
    rna_counts, rna_layer = resolve_counts(rna_ad, rna_layer, rna, "rna")
    adt_counts, adt_layer = resolve_counts(adt_ad, adt_layer, adt, "adt")
    check_counts(rna_counts, rna, obs_names, f"layer {rna_layer!r}" if rna_layer else ".X")
    adt_counts = in_memory(adt_counts)  # proteins are few: read once (RNA is read in chunks)
    check_counts(adt_counts, adt, obs_names, f"layer {adt_layer!r}" if adt_layer else ".X")
    return rna_ad, adt_ad, rna_counts, adt_counts, rna_layer, adt_layer
