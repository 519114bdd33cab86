"""Simulated CITE-seq with known shared, RNA-specific and ADT-specific structure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mudata import MuData

TRUTH_KEY = "synthetic_truth"
LATENT_KEYS = {
    "shared": "latent_shared",
    "rna": "latent_rna_specific",
    "adt": "latent_adt_specific",
}


def _type_design(n_lineages: int, n_types: int, rng: np.random.Generator) -> pd.DataFrame:
    """Assign level-2 types to lineages and give each a (shared, RNA, ADT) mixture."""
    if n_lineages < 1:
        raise ValueError(f"n_lineages must be >= 1, got {n_lineages}.")
    if n_types < 2 * n_lineages:
        raise ValueError(
            f"n_types={n_types} is too small for n_lineages={n_lineages}: every lineage needs "
            f"at least 2 level-2 types (n_types >= {2 * n_lineages})."
        )
    sizes = np.full(n_lineages, n_types // n_lineages)
    sizes[: n_types % n_lineages] += 1
    rows = []
    # Pure archetypes first (one modality alone separates the type from its siblings), then
    # graded mixtures; rotating the archetypes keeps every lineage different.
    archetypes = [(0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)]
    for lin, size in enumerate(sizes):
        for j in range(size):
            k = (j + lin) % (len(archetypes) + 2)
            if j < len(archetypes) and k < len(archetypes):
                w_s, w_r, w_a = archetypes[k]
            else:
                w_s = rng.uniform(0.0, 0.5)
                t = rng.uniform(0.0, 1.0)
                w_r, w_a = (1 - w_s) * t, (1 - w_s) * (1 - t)
            rows.append(
                {
                    "celltype.l1": f"lineage{lin + 1}",
                    "celltype.l2": f"lineage{lin + 1}-{chr(ord('a') + j)}",
                    "w_shared": w_s,
                    "w_rna": w_r,
                    "w_adt": w_a,
                }
            )
    design = pd.DataFrame(rows).set_index("celltype.l2", drop=False)
    design.index.name = None
    design["rna_importance"] = design["w_rna"] - design["w_adt"]
    return design


#: Cells whose RNA counts are drawn at once; larger simulations are drawn (and stored sparse) in
#: chunks of this many, so 10⁶ cells fit in memory. Up to this size results are as before.
SIM_CHUNK = 50_000


def _nb(rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray | float) -> np.ndarray:
    """Negative-binomial counts as a gamma-Poisson mixture (variance mean + mean²/dispersion)."""
    lam = rng.gamma(shape=dispersion, scale=mean / dispersion)
    return rng.poisson(lam).astype(np.float32)


def _to_mudata(
    rna: np.ndarray,
    adt: np.ndarray,
    l1: np.ndarray,
    l2: np.ndarray,
    l1_categories: np.ndarray,
    l2_categories: np.ndarray,
) -> MuData:
    """Counts and per-cell labels → MuData (CSR counts, labels in ``mdata.obs``)."""
    import anndata as ad
    import mudata as md
    from scipy import sparse

    obs_names = [f"cell{i:06d}" for i in range(rna.shape[0])]

    def modality(counts: np.ndarray, prefix: str, width: int) -> ad.AnnData:
        names = [f"{prefix}{i:0{width}d}" for i in range(counts.shape[1])]
        return ad.AnnData(
            sparse.csr_matrix(counts, dtype=np.float32),
            obs=pd.DataFrame(index=obs_names),
            var=pd.DataFrame(index=names),
        )

    mdata = md.MuData({"rna": modality(rna, "gene", 5), "adt": modality(adt, "prot", 3)})
    mdata.obs["celltype.l1"] = pd.Categorical(l1, categories=l1_categories)
    mdata.obs["celltype.l2"] = pd.Categorical(l2, categories=l2_categories)
    return mdata


def softmax_rows(eta: np.ndarray) -> np.ndarray:
    """Row-wise softmax (expression fractions from log-rates), computed stably."""
    frac = np.exp(eta - eta.max(axis=1, keepdims=True))
    return frac / frac.sum(axis=1, keepdims=True)


def _rna_counts(rng: np.random.Generator, latent: dict, n_genes: int):
    """RNA: sparse loadings so that each factor drives its own gene programme (dense counts, or
    CSR above :data:`SIM_CHUNK` cells)."""
    n_cells, n_latent = latent["shared"].shape
    base_g = rng.normal(-1.0, 1.5, size=n_genes)
    a_s = rng.normal(0, 0.25, size=(n_latent, n_genes)) * (rng.random((n_latent, n_genes)) < 0.2)
    a_r = rng.normal(0, 0.35, size=(n_latent, n_genes)) * (rng.random((n_latent, n_genes)) < 0.2)
    lib_rna = rng.lognormal(np.log(3000), 0.35, size=(n_cells, 1))
    disp_g = rng.lognormal(np.log(4.0), 0.5, size=n_genes)
    if n_cells <= SIM_CHUNK:
        frac = softmax_rows(base_g + latent["shared"] @ a_s + latent["rna"] @ a_r)
        return _nb(rng, lib_rna * frac + 1e-8, disp_g)
    # atlas sizes: draw and store counts chunk by chunk (sparse), never all cells × genes dense
    from scipy import sparse

    parts = []
    for start in range(0, n_cells, SIM_CHUNK):
        rows = slice(start, start + SIM_CHUNK)
        frac = softmax_rows(base_g + latent["shared"][rows] @ a_s + latent["rna"][rows] @ a_r)
        parts.append(sparse.csr_matrix(_nb(rng, lib_rna[rows] * frac + 1e-8, disp_g)))
    return sparse.vstack(parts, format="csr")


def _adt_counts(rng: np.random.Generator, latent: dict, n_proteins: int) -> np.ndarray:
    """ADT: dense loadings on shared and ADT-specific factors plus ambient background."""
    n_cells, n_latent = latent["shared"].shape
    base_p = rng.normal(0.0, 0.8, size=n_proteins)
    b_s = rng.normal(0, 0.4, size=(n_latent, n_proteins))
    b_a = rng.normal(0, 0.4, size=(n_latent, n_proteins))
    frac_p = softmax_rows(base_p + latent["shared"] @ b_s + latent["adt"] @ b_a)
    ambient = rng.dirichlet(np.full(n_proteins, 2.0))
    lib_adt = rng.lognormal(np.log(1500), 0.4, size=(n_cells, 1))
    return _nb(rng, lib_adt * (0.85 * frac_p + 0.15 * ambient) + 1e-8, 10.0)


def _check_params(
    n_cells, n_genes, n_proteins, n_latent, separation, programmes, min_shared, shared_noise
) -> None:
    for name, value, low in [
        ("n_cells", n_cells, 10),
        ("n_genes", n_genes, 10),
        ("n_proteins", n_proteins, 3),
        ("n_latent", n_latent, 1),
    ]:
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    if separation <= 0:
        raise ValueError(f"separation must be positive, got {separation!r}.")
    if programmes not in ("recurring", "per_type"):
        raise ValueError(f"programmes must be 'recurring' or 'per_type', got {programmes!r}.")
    if not 0.0 <= min_shared <= 1.0:
        raise ValueError(f"min_shared must be in [0, 1], got {min_shared!r}.")
    if not shared_noise > 0:
        raise ValueError(f"shared_noise must be positive, got {shared_noise!r}.")


def synthetic_citeseq(
    n_cells: int = 4000,
    n_genes: int = 1000,
    n_proteins: int = 30,
    n_lineages: int = 5,
    n_types: int = 20,
    n_latent: int = 8,
    separation: float = 3.5,
    seed: int = 0,
    *,
    programmes: Literal["recurring", "per_type"] = "recurring",
    min_shared: float = 0.0,
    shared_noise: float = 1.0,
) -> MuData:
    """Simulate a CITE-seq experiment (raw RNA and ADT counts) with known ground truth.

    Generative model. Each cell belongs to a level-2 type ``t`` inside a level-1 lineage ``L``.
    Three latent factors are drawn per cell (each of dimension ``n_latent``):

    - shared ``s = m[L] + 2·w_s(t)·δ·u_s[t] + σ_s·ε``  (seen by both modalities),
    - RNA-specific ``r = w_r(t)·δ·u_r[t] + ε``  (seen only by RNA),
    - ADT-specific ``a = w_a(t)·δ·u_a[t] + ε``  (seen only by ADT),

    with ``ε ~ N(0, I)``, ``σ_s = shared_noise``, lineage centres ``m`` (on the shared factor
    only), random unit directions ``u`` and ``δ = separation``. With ``programmes="recurring"``
    (default) the ``j``-th type of every lineage moves along the same specific direction (states
    such as activation or cycling that recur across lineages), so the specific factors are
    nearly independent of the shared one. With ``programmes="per_type"`` every type has its own
    direction, so a specific factor also tells which lineage a cell is in: a harder case for any
    method that makes Z independent of C. The mixture ``(w_s, w_r, w_a)`` (on the simplex) says
    through which signal a type differs from its siblings: some types only through RNA-specific
    signal ``(0, 1, 0)``, some only through ADT-specific ``(0, 0, 1)``, some only through shared
    ``(1, 0, 0)``, the rest through graded mixtures.

    RNA counts are negative binomial with mean ``ℓ · softmax(b + A_s s + A_r r)`` (gene
    baselines ``b``, sparse loadings ``A``, log-normal library size ``ℓ``, gene-wise
    dispersion). ADT counts are negative binomial with mean
    ``ℓ' · (0.85 · softmax(c + B_s s + B_a a) + 0.15 · ambient)``: dense loadings and an ambient
    background shared by all cells, as in droplet data.

    Ground truth: ``mdata.uns["synthetic_truth"]`` is a table per level-2 type with the
    mixture weights and ``rna_importance = w_rna - w_adt`` (positive: the type is defined by
    RNA-specific signal; negative: by ADT-specific signal). The latent factors are in
    ``mdata.obsm["latent_shared"]``, ``["latent_rna_specific"]``, ``["latent_adt_specific"]``.

    Parameters
    ----------
    n_cells
        Number of cells.
    n_genes
        Number of genes in the RNA modality.
    n_proteins
        Number of surface proteins in the ADT modality.
    n_lineages
        Number of level-1 types (lineages).
    n_types
        Number of level-2 types, at least two per lineage.
    n_latent
        Dimension of each latent factor (shared, RNA-specific, ADT-specific).
    separation
        Distance (in noise standard deviations) between a type and its lineage centre along
        the signal that defines it.
    seed
        Random seed; the same seed gives the same data.
    programmes
        ``"recurring"`` or ``"per_type"`` specific directions (see above).
    min_shared
        Lower bound on every type's shared weight ``w_s`` (0–1). Above 0, every type also
        differs from its siblings through shared signal, which per-modality PCA sees in both
        modalities; ``rna_importance`` is unchanged.
    shared_noise
        Standard deviation ``σ_s`` of the shared factor within a type (1 = as the specific
        factors). Above 1, cells of a type spread along shared signal that both modalities
        see (think of a continuous shared state). A hard case for IndiSeek: the spread that
        C does not capture ends up in Z (see docs, "When θ from Z beats per-modality PCA").

    Returns
    -------
    MuData with modalities ``"rna"`` and ``"adt"`` (raw counts, float32 CSR in ``.X``),
    labels in ``obs["celltype.l1"]`` and ``obs["celltype.l2"]``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.synthetic_citeseq(n_cells=500, seed=0)
    >>> mdata.mod["rna"].shape, mdata.mod["adt"].shape
    ((500, 1000), (500, 30))
    """
    _check_params(
        n_cells, n_genes, n_proteins, n_latent, separation, programmes, min_shared, shared_noise
    )

    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
    rng = np.random.default_rng(seed)
    design = _type_design(n_lineages, n_types, rng)
    types = design.index.to_numpy()
    lineages = design["celltype.l1"].to_numpy()
    lineage_names = np.unique(lineages)
    lin_idx = np.searchsorted(lineage_names, lineages)

    # Imbalanced but not degenerate type sizes.
    props = rng.dirichlet(np.full(n_types, 3.0))
    props = 0.7 * props + 0.3 / n_types
    cell_type = rng.choice(n_types, size=n_cells, p=props)

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, n_latent))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    latent = {}
    lineage_scale = {"shared": 2.5 * separation, "rna": 0.0, "adt": 0.0}
    weight_col = {"shared": "w_shared", "rna": "w_rna", "adt": "w_adt"}
    # Sibling j of every lineage moves along the same modality-specific programme u[j]
    # (think activation or cycling states that recur across lineages), so the specific factors
    # are nearly independent of the lineage, i.e. of the shared factor, as IndiSeek assumes.
    sibling = design.groupby("celltype.l1").cumcount().to_numpy()
    for key in ("shared", "rna", "adt"):
        centres = lineage_scale[key] * unit(len(lineage_names))
        weights = design[weight_col[key]].to_numpy()
        if key == "shared":
            directions = 2.0 * unit(n_types)
            weights = np.maximum(weights, min_shared)
        elif programmes == "recurring":
            directions = unit(int(sibling.max()) + 1)[sibling]
        else:
            directions = unit(n_types)
        offsets = separation * weights[:, None] * directions
        mean = centres[lin_idx] + offsets
        noise_sd = shared_noise if key == "shared" else 1.0
        noise = noise_sd * rng.normal(size=(n_cells, n_latent))
        latent[key] = (mean[cell_type] + noise).astype(np.float32)

    rna = _rna_counts(rng, latent, n_genes)
    adt = _adt_counts(rng, latent, n_proteins)

    mdata = _to_mudata(rna, adt, lineages[cell_type], types[cell_type], lineage_names, types)
    for key, name in LATENT_KEYS.items():
        mdata.obsm[name] = latent[key]
    truth = design[["celltype.l1", "w_shared", "w_rna", "w_adt", "rna_importance"]].copy()
    truth["n_cells"] = np.bincount(cell_type, minlength=n_types)
    mdata.uns[TRUTH_KEY] = truth
    mdata.uns["synthetic_params"] = {
        "n_cells": n_cells,
        "n_genes": n_genes,
        "n_proteins": n_proteins,
        "n_lineages": n_lineages,
        "n_types": n_types,
        "n_latent": n_latent,
        "separation": float(separation),
        "seed": seed,
        "programmes": programmes,
        "min_shared": float(min_shared),
        "shared_noise": float(shared_noise),
    }
    return mdata
