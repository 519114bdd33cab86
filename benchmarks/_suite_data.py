"""The θ suite's datasets: six simulator families and the real CITE-seq in ``shared/data``.

:func:`load` returns raw counts, the per-type reference that θ's ranks are compared with (the
simulator's truth, or Seurat's mean WNN RNA weight per type on real data) and the label key;
:func:`prepare` prepares a copy with a configuration's preprocessing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

import indiseek as isk

SHARED = Path(os.environ.get("INDISEEK_SHARED", Path(__file__).resolve().parents[2] / "shared"))

# name → keyword arguments of synthetic_citeseq (27 types in 5 lineages), or "bonemarrow"
FAMILIES: dict[str, dict | str] = {
    "bonemarrow": "bonemarrow",
    "recurring": {"programmes": "recurring"},
    "per_type": {"programmes": "per_type"},
    "recurring_min_shared_0.5": {"programmes": "recurring", "min_shared": 0.5},
    "per_type_min_shared_0.25": {"programmes": "per_type", "min_shared": 0.25},
    "recurring_shared_noise_2.5": {"programmes": "recurring", "shared_noise": 2.5},
}
REAL = ("inhouse_cite1372", "pbmc_wnn_paired800")
# loadable by name, not in the suite's default list: screening variants
SCREEN_FAMILIES: dict[str, dict] = {
    # bone-marrow-like, genes and proteins responding twice as strongly to the specific factors
    "bonemarrow_strong": {"bonemarrow": {"specific_strength": 2.0}},
}


def simulated(family: str, n_cells: int, data_seed: int):
    spec = FAMILIES[family] if family in FAMILIES else SCREEN_FAMILIES[family]
    if spec == "bonemarrow" or "bonemarrow" in spec:
        kw = {} if spec == "bonemarrow" else spec["bonemarrow"]
        mdata = isk.datasets.synthetic_bonemarrow(n_cells=n_cells, seed=data_seed, **kw)
    else:
        mdata = isk.datasets.synthetic_citeseq(
            n_cells=n_cells, n_types=27, n_lineages=5, seed=data_seed, **spec
        )
    return mdata, mdata.uns["synthetic_truth"]["rna_importance"], "celltype.l2"


def real(name: str):
    import mudata as md

    mdata = md.read_h5mu(SHARED / "data" / f"{name}.h5mu")
    weights = pd.read_csv(SHARED / "data" / "seurat_wnn" / f"{name}.csv", index_col=0)
    mdata.obs["seurat_rna_weight"] = weights["RNA.weight"].reindex(mdata.obs_names).to_numpy()
    keep = (mdata.obs["celltype"].astype(str) != "unknown").to_numpy()
    mdata = mdata[keep].copy()
    lab = mdata.obs["celltype"].astype(str).to_numpy()
    return mdata, mdata.obs.groupby(lab)["seurat_rna_weight"].mean(), "celltype"


def load(name: str, n_cells: int, data_seed: int):
    """(raw MuData, per-type reference, label key) of a suite dataset."""
    if name in REAL:
        return real(name)
    return simulated(name, n_cells, data_seed)


def prepare(mdata, name: str, **kwargs):
    """A prepared copy: a 50/50 split on simulations; on the small real sets every cell trains
    and is scored (as WNN uses every cell), since a held-out half leaves types too small to rank."""
    mdata = mdata.copy()
    if name in REAL:
        n_max = min(mdata.n_obs, 2000) - 1
        if kwargs.get("n_pcs"):
            kwargs["n_pcs"] = min(kwargs["n_pcs"], n_max)
        isk.pp.prepare(mdata, seed=0, **kwargs)
    else:
        isk.pp.prepare(mdata, train_size=0.5, seed=0, **kwargs)
    return mdata


def scored_cells(mdata) -> np.ndarray:
    """Cells θ is read on: the test half, or every cell without a split."""
    if "indiseek_split" not in mdata.obs:
        return np.ones(mdata.n_obs, dtype=bool)
    return (mdata.obs["indiseek_split"] == "test").to_numpy()
