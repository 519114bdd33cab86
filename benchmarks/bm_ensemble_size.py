"""θ vs ground truth as a function of the ensemble size (``n_members``) on a 30k-cell simulation.

Trains one single model (``n_members=1``) per training seed, then reads θ from every subset of
K of them (θ averaged over the subset's members, as ``n_members=K`` does) and reports, per K,
the mean, min and max Spearman ρ of per-type mean θ against the simulator's truth over all
subsets, next to θ from per-modality PCA. The subsets share their members, so the K rows are
not independent; they show how the expected ρ and its spread change with K.

Usage::

    python benchmarks/bm_ensemble_size.py --seeds 0,1,2,3,4 --programmes per_type \\
        --min-shared 0.25 --max-epochs 40
"""

import argparse
import itertools
import json
import time

import numpy as np
from _simulation import add_simulation_args, simulate, theta_rho

import indiseek as isk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_simulation_args(ap)
    ap.add_argument("--seeds", default="0,1,2,3,4", help="training seeds, comma-separated")
    ap.add_argument("--lam", type=float, default=10.0)
    ap.add_argument("--max-epochs", type=int, default=None, help="default: about 4,000 updates")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]

    t0 = time.perf_counter()
    mdata, test, lab, truth = simulate(args)

    def rho(z_rna: np.ndarray, z_adt: np.ndarray, members: int = 1) -> float:
        return theta_rho(z_rna, z_adt, lab, truth, members)

    out = {
        "args": vars(args),
        "pca": rho(
            mdata.mod["rna"].obsm["X_indiseek_pca"][test],
            mdata.mod["adt"].obsm["X_indiseek_adt"][test],
        ),
    }
    print("pca", round(out["pca"], 3), flush=True)
    isk.IndiSeek.setup_mudata(mdata)
    z = {}
    for s in seeds:
        t1 = time.perf_counter()
        model = isk.IndiSeek(mdata, lam=args.lam, n_members=1)
        model.train(seed=s, max_epochs=args.max_epochs, progress_bar=False)
        reps = model.get_representations()
        z[s] = (reps["Z_rna"][test], reps["Z_adt"][test])
        print(f"seed {s}: rho {rho(*z[s]):.3f} ({time.perf_counter() - t1:.0f} s)", flush=True)
    out["by_k"] = {}
    for k in range(1, len(seeds) + 1):
        values = []
        for subset in itertools.combinations(seeds, k):
            z_rna = np.concatenate([z[s][0] for s in subset], axis=1)
            z_adt = np.concatenate([z[s][1] for s in subset], axis=1)
            values.append(rho(z_rna, z_adt, members=k))
        row = {"mean": np.mean(values), "min": np.min(values), "max": np.max(values)}
        out["by_k"][k] = row
        print(f"K={k}: " + ", ".join(f"{n} {v:.3f}" for n, v in row.items()), flush=True)
    out["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
