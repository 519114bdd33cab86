"""θ vs ground truth on a bone-marrow-scale simulation (30k cells, 27 types, 5 lineages).

Trains IndiSeek and its baselines with default settings on a 15k/15k split and compares the
per-type mean θ ranks with the simulator's truth, next to θ from per-modality PCA and from the
true latent factors.

Usage::

    python benchmarks/bm_scale_theta.py --n-cells 30000 --seeds 0,1,2 \\
        --programmes per_type --min-shared 0 --objectives indiseek,infodisen --members 3
"""

import argparse
import json
import time

import numpy as np
from _simulation import add_simulation_args, simulate, theta_rho

import indiseek as isk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_simulation_args(ap)
    ap.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    ap.add_argument("--objectives", default="indiseek,factorized_cl,infodisen,indiseek0,clip")
    ap.add_argument("--lam", type=float, default=10.0)
    ap.add_argument(
        "--members", type=int, default=3, help="n_members of every model (1: single runs)"
    )
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    t0 = time.perf_counter()
    mdata, test, lab, truth = simulate(args)
    out = {"args": vars(args), "prepare_s": round(time.perf_counter() - t0, 1)}
    for name, (a, b) in {
        "true_latents": (mdata.obsm["latent_rna_specific"], mdata.obsm["latent_adt_specific"]),
        "pca": (mdata.mod["rna"].obsm["X_indiseek_pca"], mdata.mod["adt"].obsm["X_indiseek_adt"]),
    }.items():
        out[name] = theta_rho(a[test], b[test], lab, truth)
        print(name, round(out[name], 3), flush=True)
    isk.IndiSeek.setup_mudata(mdata)
    df = isk.tl.compare_methods(
        mdata,
        objectives=args.objectives.split(","),
        lams=[args.lam],
        seeds=seeds,
        reference=truth,
        progress_bar=False,
        model_kwargs={"n_members": args.members},
    )
    print(df.round(3).to_string(), flush=True)
    summary = df.groupby("objective")["spearman"].agg(["mean", "std", "min", "max"])
    print(summary.round(3).to_string(), flush=True)
    out["methods"] = df.to_dict(orient="records")
    out["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
