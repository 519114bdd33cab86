"""The θ suite's datasets: six simulator families and the real CITE-seq in ``shared/data``.

Every entry returns a prepared MuData (50/50 split), the per-type reference the θ ranks are
compared with (the simulator's truth, or Seurat's mean WNN RNA weight) and the label key.
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
REAL = {"inhouse_cite1372": "inhouse_cite1372", "pbmc_wnn_paired800": "pbmc_wnn_paired800"}


def simulated(family: str, n_cells: int, data_seed: int):
    spec = FAMILIES[family]
    if spec == "bonemarrow":
        mdata = isk.datasets.synthetic_bonemarrow(n_cells=n_cells, seed=data_seed)
    else:
        mdata = isk.datasets.synthetic_citeseq(
            n_cells=n_cells, n_types=27, n_lineages=5, seed=data_seed, **spec
        )
    isk.pp.prepare(mdata, train_size=0.5, seed=0)
    return mdata, mdata.uns["synthetic_truth"]["rna_importance"], "celltype.l2"


def real(name: str, split_seed: int = 0):
    import mudata as md

    mdata = md.read_h5mu(SHARED / "data" / f"{name}.h5mu")
    weights = pd.read_csv(SHARED / "data" / "seurat_wnn" / f"{name}.csv", index_col=0)
    mdata.obs["seurat_rna_weight"] = weights["RNA.weight"].reindex(mdata.obs_names).to_numpy()
    labels = mdata.obs["celltype"].astype(str)
    keep = (labels != "unknown").to_numpy()
    mdata = mdata[keep].copy()
    isk.pp.prepare(mdata, train_size=0.5, seed=split_seed)
    lab = mdata.obs["celltype"].astype(str)
    ref = mdata.obs.groupby(lab.to_numpy())["seurat_rna_weight"].mean()
    return mdata, ref, "celltype"


def load(name: str, n_cells: int, data_seed: int):
    if name in REAL:
        return real(REAL[name], data_seed)
    return simulated(name, n_cells, data_seed)


def test_mask(mdata) -> np.ndarray:
    return (mdata.obs["indiseek_split"] == "test").to_numpy()
