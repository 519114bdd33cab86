"""Real CITE-seq shipped with the package: 800 paired PBMCs with Seurat's WNN weights."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mudata import MuData

ATTRIBUTION = (
    "800 paired cells of the PBMC CITE-seq data of Hao et al. (2021), Integrated analysis of "
    "multimodal single-cell data, Cell 184:3573-3587, as subset and shipped in the scmidas 0.3.0 "
    "package (MIT licence). WNN weights: Seurat 4.3.0 FindMultiModalNeighbors on these cells."
)


def pbmc_cite800() -> MuData:
    """800 paired PBMCs (Hao et al. 2021): RNA and 224 surface proteins, offline.

    A real CITE-seq example that needs no download: raw UMI counts of 500 variable genes
    (``rna``) and 224 antibody-derived tags (``adt``), eight level-1 cell types in
    ``obs["celltype"]`` (CD4 T 238, Mono 232, CD8 T 115, NK 86, B 62, other T 46, DC 15,
    other 6) and two batches in ``obs["batch"]``. Seurat 4.3.0's per-cell WNN weights on the
    same cells — the paper's reference for θ — are in ``obs["seurat_rna_weight"]`` and
    ``obs["seurat_adt_weight"]`` (RNA PCs 1:30; ADT CLR across proteins of each cell, PCs 1:18).

    Source: the subset shipped in the scmidas 0.3.0 package (MIT licence) of the data of
    Hao et al., *Integrated analysis of multimodal single-cell data*, Cell 184, 3573–3587
    (2021); the attribution is kept in ``uns["dataset"]``.

    Returns
    -------
    A new MuData (the shipped file is not modified).

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.pbmc_cite800()
    >>> mdata.shape, sorted(mdata.mod)
    ((800, 724), ['adt', 'rna'])
    """
    import mudata as md
    import pandas as pd

    here = files("indiseek.datasets") / "data"
    with md.set_options(pull_on_update=False):
        mdata = md.read_h5mu(str(here / "pbmc_cite800.h5mu"))
    weights = pd.read_csv(str(here / "pbmc_cite800_seurat_wnn.csv"), index_col=0)
    weights = weights.reindex(mdata.obs_names)
    mdata.obs["seurat_rna_weight"] = weights["RNA.weight"].to_numpy()
    mdata.obs["seurat_adt_weight"] = weights["ADT.weight"].to_numpy()
    mdata.uns["dataset"] = {"name": "pbmc_cite800", "attribution": ATTRIBUTION}
    return mdata
