"""θ benchmark suite: six simulator families × data seeds, plus the real data in shared/data.

For every dataset and configuration: Spearman ρ of per-type mean θ against the reference
(the simulator's truth, or Seurat's mean WNN RNA weight per type on real data), for the
ensemble θ (``tl.theta_score``) and for each member alone (the first member is what the
contract keys ``X_indiseek_Z_*`` hold), θ from per-modality PCA and from the true latents, and
ARI/NMI of k-means on ``X_indiseek`` (test cells). Results go to a JSON-lines file; ``--report``
turns one into the tables of benchmarks/README.md.

Usage::

    python benchmarks/bm_theta_suite.py --quick --out suite.jsonl   # < 30 min on 2 cores
    python benchmarks/bm_theta_suite.py --out suite.jsonl           # 10k and 30k cells, 2+2 seeds
    python benchmarks/bm_theta_suite.py --report suite.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _suite_data import FAMILIES, REAL, load, test_mask

import indiseek as isk

# name → (model keyword arguments, train keyword arguments)
READOUTS = True
CONFIGS: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "v0.1": ({"normalize_z": True}, {}),
    "raw": ({"normalize_z": False}, {}),
}


def rho(z_rna, z_adt, labels, ref, members=1) -> float:
    theta = isk.tl.theta_arrays(z_rna, z_adt, labels, members=members)[0]
    return float(isk.tl.rank_table(labels, theta, reference=ref).attrs["spearman"])


def baselines(mdata, labels, ref, test) -> dict[str, float]:
    out = {
        "pca": rho(
            mdata.mod["rna"].obsm["X_indiseek_pca"][test],
            mdata.mod["adt"].obsm["X_indiseek_adt"][test],
            labels,
            ref,
        )
    }
    if "latent_rna_specific" in mdata.obsm:
        out["true_latents"] = rho(
            mdata.obsm["latent_rna_specific"][test],
            mdata.obsm["latent_adt_specific"][test],
            labels,
            ref,
        )
    return out


def run_one(mdata, labels, ref, label_key, test, config, seed, members) -> dict:
    model_kw, train_kw = CONFIGS[config]
    isk.IndiSeek.setup_mudata(mdata)
    model = isk.IndiSeek(mdata, n_members=members, **model_kw)
    t0 = time.perf_counter()
    model.train(seed=seed, progress_bar=False, **train_kw)
    train_s = time.perf_counter() - t0
    model.write_obsm(mdata)
    isk.tl.theta_score(mdata, label_key=label_key, subset="test")
    table = isk.tl.rank_comparison(mdata, groupby=label_key, weight_key=None, reference=ref)
    z = {m: mdata.obsm[f"X_indiseek_Z_{m}_members"] if members > 1 else mdata.obsm[f"X_indiseek_Z_{m}"] for m in ("rna", "adt")}
    per_member = [
        rho(zr[test], za[test], labels, ref)
        for zr, za in zip(np.split(z["rna"], members, 1), np.split(z["adt"], members, 1), strict=True)
    ]
    first = rho(mdata.obsm["X_indiseek_Z_rna"][test], mdata.obsm["X_indiseek_Z_adt"][test], labels, ref)
    extra = {}
    if READOUTS:
        from _readouts import readouts

        for name, z_ro in readouts(model, mdata).items():
            rs = [rho(a[test], b[test], labels, ref) for a, b in zip(z_ro["rna"], z_ro["adt"], strict=True)]
            ens = rho(np.concatenate(z_ro["rna"], 1)[test], np.concatenate(z_ro["adt"], 1)[test], labels, ref, members)
            extra[f"ro_{name}"] = ens
            extra[f"ro_{name}_members"] = rs
    cm = isk.tl.cluster_metrics(mdata, label_key=label_key, obsm_keys=["X_indiseek"], subset="test")
    return {
        "rho_ensemble": float(table.attrs["spearman"]),
        "rho_obsm_z": first,
        "rho_members": per_member,
        "ari": float(cm["ARI"].iloc[0]),
        "nmi": float(cm["NMI"].iloc[0]),
        "train_s": round(train_s, 1),
        **extra,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k cells, one data seed, one training seed")
    ap.add_argument("--datasets", default=",".join([*FAMILIES, *REAL]))
    ap.add_argument("--configs", default="default")
    ap.add_argument("--n-cells", default="10000,30000")
    ap.add_argument("--data-seeds", default="0,1")
    ap.add_argument("--seeds", default="0,1", help="training seeds")
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--out", default="suite.jsonl")
    ap.add_argument("--report", help="summarise a results file instead of running")
    args = ap.parse_args()
    if args.report:
        report(args.report)
        return
    if args.quick:
        args.n_cells, args.data_seeds, args.seeds = "10000", "0", "0"
    for name in args.datasets.split(","):
        sizes = [0] if name in REAL else [int(n) for n in args.n_cells.split(",")]
        for n_cells in sizes:
            for ds in [int(s) for s in args.data_seeds.split(",")]:
                mdata, ref, label_key = load(name, n_cells, ds)
                test = test_mask(mdata)
                labels = mdata.obs[label_key].astype(str).to_numpy()[test]
                base = baselines(mdata, labels, ref, test)
                for config in args.configs.split(","):
                    for seed in [int(s) for s in args.seeds.split(",")]:
                        row = {"dataset": name, "n_cells": mdata.n_obs, "data_seed": ds,
                               "config": config, "seed": seed, **base}
                        row.update(run_one(mdata, labels, ref, label_key, test, config, seed, args.members))
                        print(json.dumps(row), flush=True)
                        with open(args.out, "a") as fh:
                            fh.write(json.dumps(row) + "\n")


def report(path: str) -> None:
    import pandas as pd

    df = pd.read_json(path, lines=True)
    df["family"] = df["dataset"] + np.where(df["dataset"].isin(list(REAL)), "", " " + (df["n_cells"] // 1000).astype(str) + "k")
    agg = df.groupby(["config", "family"]).agg(
        ensemble=("rho_ensemble", "mean"), obsm_z=("rho_obsm_z", "mean"),
        member_min=("rho_members", lambda s: min(min(v) for v in s)),
        member_max=("rho_members", lambda s: max(max(v) for v in s)),
        pca=("pca", "mean"), truth=("true_latents", "mean"), ari=("ari", "mean"), n=("seed", "size"),
    )
    print(agg.round(3).to_markdown())
    overall = agg.groupby("config").agg(mean=("ensemble", "mean"), worst=("ensemble", "min"), obsm_mean=("obsm_z", "mean"), obsm_worst=("obsm_z", "min"))
    print(overall.round(3).to_markdown())


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
