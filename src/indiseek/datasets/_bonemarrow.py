"""A bone-marrow-like CITE-seq simulation: every type has its own specific programme."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._donors import DonorEffects
from ._synthetic import LATENT_KEYS, TRUTH_KEY, _nb, _to_mudata, softmax_rows

if TYPE_CHECKING:
    from mudata import MuData

# Lineages, how many level-2 types each holds, and the range of the angle φ (in units of π/2)
# that splits a type's specific offset between RNA (cos φ) and protein (sin φ).
LINEAGES = (
    ("T", 9, (0.62, 0.95)),  # T-cell subtypes: told apart mostly by surface protein
    ("Progenitor", 5, (0.05, 0.38)),  # progenitors: mostly by RNA
    ("Myeloid", 5, (0.1, 0.9)),
    ("B", 4, (0.1, 0.9)),
    ("NK", 4, (0.1, 0.9)),
)


def _bm_design(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for lineage, n, (lo, hi) in LINEAGES:
        for j in range(n):
            phi = rng.uniform(lo, hi) * np.pi / 2
            length = rng.uniform(1.3, 1.9)
            rows.append(
                {
                    "celltype.l1": lineage,
                    "celltype.l2": f"{lineage}-{j + 1}",
                    "len_rna": length * np.cos(phi),
                    "len_adt": length * np.sin(phi),
                }
            )
    design = pd.DataFrame(rows).set_index("celltype.l2", drop=False)
    design.index.name = None
    design["rna_importance"] = np.log(design["len_rna"] / design["len_adt"])
    return design


def _unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _check_args(n_cells, seed, specific_strength) -> None:
    if int(n_cells) != n_cells or n_cells < 10:
        raise ValueError(f"n_cells must be an integer >= 10, got {n_cells!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
    strength = specific_strength
    if (
        isinstance(strength, bool)
        or not isinstance(strength, numbers.Real)
        or not (math.isfinite(strength) and strength >= 0)
    ):
        raise ValueError(f"specific_strength must be a finite number >= 0, got {strength!r}.")


def synthetic_bonemarrow(
    n_cells: int = 10_000,
    seed: int = 0,
    *,
    n_donors: int = 1,
    donor_shared: float = 0.0,
    donor_rna: float = 0.0,
    donor_adt: float = 0.0,
    specific_strength: float = 1.0,
) -> MuData:
    """Simulate bone-marrow-like CITE-seq: 27 types in 5 lineages, per-type specific programmes.

    A second simulator family, built differently from :func:`synthetic_citeseq` so that
    defaults can be checked off their home simulator. Generative model:

    - shared factor (8-d): lineage centres far apart (sd 2.5 per dimension), each level-2 type
      its own offset (sd 0.9 per dimension), spread within a type sd 0.35. Subtypes therefore
      differ in signal that *both* modalities see, which makes per-modality PCA a poor θ.
    - RNA-specific (6-d) and ADT-specific (4-d) factors: each type has **its own** random
      direction in each, with offset lengths ``L·cos φ`` and ``L·sin φ`` (``L`` uniform in
      1.3–1.9, ``φ`` per type: T-cell subtypes mostly protein, progenitors mostly RNA, the
      rest mixed); spread within a type sd 0.5.
    - RNA: negative-binomial counts of 2,000 genes; about a third respond to the shared factor
      and a fifth to the RNA-specific one. ADT: 25 proteins, all respond to the shared factor,
      half to the ADT-specific one, plus ambient background.
    - Type sizes from a Dirichlet(3).
    - Donors (``n_donors > 1``; cells assigned uniformly, ``obs["donor"]``): each donor shifts
      the shared factor by a random vector (sd ``donor_shared`` per dimension, seen by both
      modalities), the log-expression of 5 % of genes (sd ``donor_rna``, RNA only) and the
      log-abundance of 20 % of proteins (sd ``donor_adt``, ADT only). The drawn shifts are in
      ``uns["synthetic_donors"]`` (``shared_shift``: donors × 8, ``rna_shift``: donors × genes,
      ``adt_shift``: donors × proteins; zero for features not hit), and
      ``obsm["latent_shared"]`` includes the shared shift. Donor effects are drawn from random
      streams of their own: with the sizes at 0 the counts equal those without donors. The
      truth is unchanged (donors shift cells, not types).

    Ground truth ``mdata.uns["synthetic_truth"]["rna_importance"]`` is
    ``log(|RNA offset| / |ADT offset|)`` per level-2 type.

    Parameters
    ----------
    n_cells
        Number of cells.
    seed
        Random seed; the same seed gives the same data.
    n_donors, donor_shared, donor_rna, donor_adt
        Number of donors and the sizes of their shared, RNA-only and ADT-only shifts.
    specific_strength
        Factor on the loadings of genes and proteins on the specific factors (1: this
        family as described; the random draws are the same for every value). At 0 the
        specific factors leave no trace in the counts and the stored truth means nothing.

    Returns
    -------
    MuData with ``"rna"`` and ``"adt"`` (raw counts, float32 CSR), ``obs["celltype.l1"]``,
    ``obs["celltype.l2"]``, the latent factors in ``obsm`` and the truth in ``uns``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.synthetic_bonemarrow(n_cells=500, seed=0)
    >>> mdata.mod["rna"].shape, mdata.mod["adt"].shape
    ((500, 2000), (500, 25))
    """
    _check_args(n_cells, seed, specific_strength)
    rng = np.random.default_rng(seed)
    design = _bm_design(rng)
    n_types = len(design)
    lineages = design["celltype.l1"].to_numpy()
    lin_names = np.array([name for name, _, _ in LINEAGES])
    lin_idx = np.searchsorted(np.sort(lin_names), lineages)
    cell_type = rng.choice(n_types, size=n_cells, p=rng.dirichlet(np.full(n_types, 3.0)))

    centres = rng.normal(0, 2.5, size=(len(lin_names), 8))[lin_idx] + rng.normal(
        0, 0.9, size=(n_types, 8)
    )
    shared = centres[cell_type] + rng.normal(0, 0.35, size=(n_cells, 8))
    donors = DonorEffects.draw(seed, n_cells, n_donors, donor_shared, donor_rna, donor_adt)
    shared = shared + donors.shared(8)
    spec = {}
    for key, dim, col in (("rna", 6, "len_rna"), ("adt", 4, "len_adt")):
        offsets = design[col].to_numpy()[:, None] * _unit_rows(rng, n_types, dim)
        spec[key] = offsets[cell_type] + rng.normal(0, 0.5, size=(n_cells, dim))

    n_genes, n_prot = 2000, 25
    load_s = rng.normal(0, 0.3, size=(8, n_genes)) * (rng.random(n_genes) < 1 / 3)
    load_r = rng.normal(0, 0.6, size=(6, n_genes)) * (rng.random(n_genes) < 1 / 5)
    load_r = load_r * specific_strength
    frac = softmax_rows(
        rng.normal(-1.0, 1.5, size=n_genes)
        + shared @ load_s
        + spec["rna"] @ load_r
        + donors.features("rna", n_genes, 0.05)
    )
    lib = rng.lognormal(np.log(2500), 0.4, size=(n_cells, 1))
    rna = _nb(rng, lib * frac + 1e-8, rng.lognormal(np.log(3.0), 0.5, size=n_genes))

    b_s = rng.normal(0, 0.35, size=(8, n_prot))
    b_a = rng.normal(0, 0.7, size=(4, n_prot)) * (rng.random(n_prot) < 0.5)
    b_a = b_a * specific_strength
    frac_p = softmax_rows(
        rng.normal(0, 0.8, size=n_prot)
        + shared @ b_s
        + spec["adt"] @ b_a
        + donors.features("adt", n_prot, 0.2)
    )
    ambient = rng.dirichlet(np.full(n_prot, 2.0))
    lib_p = rng.lognormal(np.log(2000), 0.5, size=(n_cells, 1))
    adt = _nb(rng, lib_p * (0.8 * frac_p + 0.2 * ambient) + 1e-8, 8.0)

    truth = design[["celltype.l1", "len_rna", "len_adt", "rna_importance"]].copy()
    truth["n_cells"] = np.bincount(cell_type, minlength=n_types)
    latent = {"shared": shared, "rna": spec["rna"], "adt": spec["adt"]}
    mdata = _to_mudata(
        rna,
        adt,
        lineages[cell_type],
        design.index.to_numpy()[cell_type],
        np.sort(lin_names),
        design.index.to_numpy(),
    )
    for key, name in LATENT_KEYS.items():
        mdata.obsm[name] = latent[key].astype(np.float32)
    mdata.uns[TRUTH_KEY] = truth
    mdata.uns["synthetic_params"] = {
        "family": "bonemarrow",
        "n_cells": n_cells,
        "seed": seed,
        "specific_strength": float(specific_strength),
        **donors.params(),
    }
    donors.record(mdata)
    return mdata
