"""Donor effects: θ against the truth, donor leakage into C and Z, and θ's agreement between
donors, with and without ``batch_key``, on the bone-marrow-like simulation.

    python benchmarks/bm_donors.py --n-cells 10000 --data-seed 0 --seed 0 --out results/donors.jsonl

Each run simulates the same data with 3 donors (shared 0.5, RNA 1.0, ADT 0.5 by default) and,
for reference, without donor effects, and writes one JSON row per configuration.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import indiseek as isk
import indiseek.pp._local as local_correction

KEYS = [f"X_indiseek_{k}" for k in ("C_rna", "C_adt", "Z_rna", "Z_adt")]


def simulate(args, donors: bool):
    sizes = dict(n_donors=3, donor_shared=args.shared, donor_rna=args.rna, donor_adt=args.adt)
    return isk.datasets.synthetic_bonemarrow(
        n_cells=args.n_cells, seed=args.data_seed, **(sizes if donors else {})
    )


def rho(mdata) -> float:
    truth = mdata.uns["synthetic_truth"]["rna_importance"]
    scored = mdata.obs["indiseek_theta"].notna().to_numpy()
    labels = mdata.obs["celltype.l2"].astype(str).to_numpy()[scored]
    theta = mdata.obs["indiseek_theta"].to_numpy()[scored]
    return float(isk.tl.rank_table(labels, theta, reference=truth).attrs["spearman"])


#: configuration → (batch means removed in pp.prepare, batch covariate in the model)
CONFIGS = {
    "no_donors": (False, False),
    "no_batch_key": (False, False),
    "centre_only": (True, False),
    "covariate_only": (False, True),
    "batch_key": (True, True),
    "batch_key_crossfit": (True, True),
    "no_donors_crossfit": (False, False),
}


def rho_all_reference(mdata, model) -> float:
    """Cross-fitted θ with each fold's cells scored by their member among *all* cells."""
    labels = mdata.obs["celltype.l2"].astype(str).to_numpy()
    n = model.n_members
    z = {k: np.split(mdata.obsm[f"X_indiseek_Z_{k}"], n, axis=1) for k in ("rna", "adt")}
    theta = np.full(mdata.n_obs, np.nan)
    for j in range(n):
        t = isk.tl.theta_arrays(z["rna"][j], z["adt"][j], labels)[0]
        theta[model.folds == j] = t[model.folds == j]
    truth = mdata.uns["synthetic_truth"]["rna_importance"]
    return float(isk.tl.rank_table(labels, theta, reference=truth).attrs["spearman"])


def run(args, config: str) -> dict:
    t0 = time.perf_counter()
    centre, covariate = CONFIGS[config]
    mdata = simulate(args, donors=not config.startswith("no_donors"))
    crossfit = config.endswith("crossfit")
    batch = {"batch_key": "donor"} if centre else {}
    isk.pp.prepare(mdata, train_size=None if crossfit else 0.5, seed=0, **batch)
    isk.IndiSeek.setup_mudata(mdata)
    if covariate and not centre:  # the model's covariate alone (prepare without batches)
        mdata.uns["indiseek"]["setup"]["batch_key"] = "donor"
    model = isk.IndiSeek(mdata, batch_covariate=covariate)
    model.train(seed=args.seed, progress_bar=False, **({"cross_fit": True} if crossfit else {}))
    model.write_obsm(mdata)
    isk.tl.theta_score(mdata, "celltype.l2")
    row = {
        "config": config,
        "tag": args.tag,
        "n_cells": args.n_cells,
        "data_seed": args.data_seed,
        "seed": args.seed,
        "donor_sizes": [args.shared, args.rna, args.adt],
        "batch_neighbors": local_correction.BATCH_NEIGHBORS,
        "rho": rho(mdata),
        "scored": int(mdata.obs["indiseek_theta"].notna().sum()),
    }
    if crossfit:  # variant: a fold's cells searched among every cell in its member's Z
        row["rho_all_reference"] = rho_all_reference(mdata, model)
    if not config.startswith("no_donors"):
        scored = mdata.obs["indiseek_theta"].notna().to_numpy()
        sub = mdata[scored].copy() if not scored.all() else mdata
        pred = isk.tl.label_predictability(sub, "donor", KEYS)
        row.update({f"donor_acc_{k[11:]}": float(pred.loc[k, "accuracy"]) for k in KEYS})
        row["donor_chance"] = float(pred["chance"].iloc[0])
        agree = isk.tl.theta_by_group(mdata, "celltype.l2", "donor")
        row["min_agreement"] = agree.attrs["min_agreement"]
    row["time_s"] = round(time.perf_counter() - t0, 1)
    return row


def report(path: str, tag: str | None = None) -> str:
    """Mean over (data seed, training seed) runs of each configuration, as a markdown table."""
    import pandas as pd

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    frame = pd.DataFrame(rows)
    if tag is not None:
        frame = frame[frame["tag"] == tag]
    cols = ["rho", *[c for c in frame.columns if c.startswith("donor_acc")], "donor_chance"]
    cols.append("min_agreement")
    table = frame.groupby("config")[cols].mean().round(3)
    table.insert(0, "runs", frame.groupby("config").size())
    return table.to_markdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-cells", type=int, default=10_000)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shared", type=float, default=0.5)
    ap.add_argument("--rna", type=float, default=1.0)
    ap.add_argument("--adt", type=float, default=0.5)
    ap.add_argument("--configs", default="no_donors,no_batch_key,batch_key", help="comma-separated")
    ap.add_argument("--out", default=None)
    ap.add_argument("--report", default=None, help="print the table of a results file and stop")
    ap.add_argument("--tag", default="", help="recorded in every row (e.g. the code version)")
    ap.add_argument(
        "--batch-neighbors", type=int, default=None, help="pp._local.BATCH_NEIGHBORS (default 100)"
    )
    args = ap.parse_args()
    if args.report:
        print(report(args.report, args.tag or None))
        return
    if args.batch_neighbors is not None:
        local_correction.BATCH_NEIGHBORS = args.batch_neighbors
    for config in args.configs.split(","):
        row = run(args, config)
        print(json.dumps(row), flush=True)
        if args.out:
            with Path(args.out).open("a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
