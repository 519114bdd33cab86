"""The bone-marrow-scale simulation both θ benchmarks train on, and θ's agreement with its truth."""

import argparse

import numpy as np
import pandas as pd

import indiseek as isk


def add_simulation_args(ap: argparse.ArgumentParser) -> None:
    """Command-line options of :func:`simulate`."""
    ap.add_argument("--n-cells", type=int, default=30_000)
    ap.add_argument("--data-seed", type=int, default=0)
    ap.add_argument("--programmes", default="recurring", choices=["recurring", "per_type"])
    ap.add_argument("--min-shared", type=float, default=0.0)
    ap.add_argument("--shared-noise", type=float, default=1.0)


def simulate(args: argparse.Namespace):
    """27 types in 5 lineages, prepared on a 50/50 split.

    Returns the MuData, the test-cell mask, the test cells' level-2 labels and the truth.
    """
    mdata = isk.datasets.synthetic_citeseq(
        n_cells=args.n_cells,
        n_types=27,
        n_lineages=5,
        seed=args.data_seed,
        programmes=args.programmes,
        min_shared=args.min_shared,
        shared_noise=args.shared_noise,
    )
    isk.pp.prepare(mdata, train_size=0.5, seed=0)
    test = (mdata.obs["indiseek_split"] == "test").to_numpy()
    labels = mdata.obs["celltype.l2"].astype(object).to_numpy()[test]
    return mdata, test, labels, mdata.uns["synthetic_truth"]["rna_importance"]


def theta_rho(
    z_rna: np.ndarray, z_adt: np.ndarray, labels: np.ndarray, truth: pd.Series, members: int = 1
) -> float:
    """Spearman ρ of per-type mean θ (averaged over ``members`` blocks) against the truth."""
    theta = isk.tl.theta_arrays(z_rna, z_adt, labels, members=members)[0]
    return float(isk.tl.rank_table(labels, theta, reference=truth).attrs["spearman"])
