"""θ vs ground truth on a bone-marrow-scale simulation (30k cells, 27 types, 5 lineages).

Trains IndiSeek and its baselines with default settings on a 15k/15k split and compares the
per-type mean θ ranks with the simulator's truth, next to θ from per-modality PCA and from the
true latent factors. Usage: ``python benchmarks/bm_scale_theta.py [n_cells] [seeds]``.
"""

import json
import sys
import time

import numpy as np

import indiseek as isk


def main() -> None:
    n_cells = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    seeds = [int(s) for s in sys.argv[2].split(",")] if len(sys.argv) > 2 else [0]
    t0 = time.perf_counter()
    mdata = isk.datasets.synthetic_citeseq(n_cells=n_cells, n_types=27, n_lineages=5, seed=0)
    truth = mdata.uns["synthetic_truth"]["rna_importance"]
    isk.pp.prepare(mdata, train_size=0.5, seed=0)
    test = (mdata.obs["indiseek_split"] == "test").to_numpy()
    lab = mdata.obs["celltype.l2"].astype(object).to_numpy()[test]
    out = {"n_cells": n_cells, "prepare_s": round(time.perf_counter() - t0, 1)}
    for name, (a, b) in {
        "true_latents": (mdata.obsm["latent_rna_specific"], mdata.obsm["latent_adt_specific"]),
        "pca": (mdata.mod["rna"].obsm["X_indiseek_pca"], mdata.mod["adt"].obsm["X_indiseek_adt"]),
    }.items():
        theta, _, _ = isk.tl.theta_arrays(a[test], b[test], lab)
        out[name] = isk.tl.rank_table(lab, theta, reference=truth).attrs["spearman"]
        print(name, round(out[name], 3), flush=True)
    isk.IndiSeek.setup_mudata(mdata)
    df = isk.tl.compare_methods(
        mdata,
        objectives=["indiseek", "factorized_cl", "infodisen", "indiseek0", "clip"],
        lams=[10.0],
        seeds=seeds,
        reference=truth,
        progress_bar=False,
    )
    print(df.round(3).to_string(), flush=True)
    out["methods"] = df.to_dict(orient="records")
    out["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
