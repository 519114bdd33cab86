"""End to end at atlas sizes: wall time per stage and peak memory, 10⁴ to 10⁶ simulated cells.

For each size, ``synthetic_citeseq(n_cells, n_genes=2000, n_proteins=25, n_types=27)`` and the
default pipeline, each stage timed:

``simulate`` → ``prepare`` (50/50 split) → ``train`` (defaults: 3 members) → ``write_obsm`` →
``theta`` (``tl.theta_score`` on the test cells; approximate neighbours above 50,000 cells) →
``umap`` (umap-learn's UMAP of ``X_indiseek`` on the test cells, as ``isk.pl.embeddings``).

Peak resident memory is read after each stage (this process, and the largest live worker
process: training's loky workers stay alive after it, Linux ``/proc``). With ``--totalvi`` and scvi-tools importable, TOTALVI's default training on the
same counts is timed alongside where it fits in ``--totalvi-max`` cells.

Usage: ``python benchmarks/scale.py --sizes 10000,100000,1000000 [--totalvi] [--out scale.jsonl]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import indiseek as isk


def _workers_peak_kb() -> int:
    """Largest peak RSS (VmHWM) of this process's live children (loky keeps its workers alive
    for a while after training); Linux only, 0 elsewhere."""
    me, peak = str(os.getpid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak


def _peak_gb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "peak_rss_gb": round(own, 2),
        "peak_worker_rss_gb": round(_workers_peak_kb() / 2**20, 2),
    }


def _umap_test_cells(mdata) -> None:
    # umap-learn directly, as isk.pl.embeddings does: scanpy 1.11.5's neighbours failed here on
    # 50,000 cells with scipy 1.17 ('csr_array' object has no attribute 'getnnz')
    import umap

    test = (mdata.obs["indiseek_split"] == "test").to_numpy()
    umap.UMAP(n_neighbors=15, random_state=0).fit_transform(mdata.obsm["X_indiseek"][test])


def _totalvi_s(mdata) -> float | None:
    from train_speed import _totalvi  # the same TOTALVI set-up as the training-speed benchmark

    out = _totalvi(mdata, "cpu")
    return None if out is None else out["default_train_wall_s"]


def run(n_cells: int, totalvi_max: int | None) -> dict:
    row: dict = {"n_cells": n_cells, "stages_s": {}}

    def stage(name, fn):
        t = time.perf_counter()
        out = fn()
        row["stages_s"][name] = round(time.perf_counter() - t, 1)
        row[f"after_{name}"] = _peak_gb()
        print(f"# {n_cells} {name}: {row['stages_s'][name]} s, {row[f'after_{name}']}", flush=True)
        return out

    mdata = stage(
        "simulate",
        lambda: isk.datasets.synthetic_citeseq(
            n_cells=n_cells, n_genes=2000, n_proteins=25, n_types=27, seed=0
        ),
    )
    stage("prepare", lambda: isk.pp.prepare(mdata, train_size=0.5, seed=0))
    isk.IndiSeek.setup_mudata(mdata)
    model = isk.IndiSeek(mdata)
    stage("train", lambda: model.train(progress_bar=False))
    row["train_params"] = {
        k: model.train_params[k] for k in ("n_train", "max_epochs", "n_jobs", "batched")
    }
    stage("write_obsm", lambda: model.write_obsm(mdata))
    stage("theta", lambda: isk.tl.theta_score(mdata, label_key="celltype.l2"))
    stage("umap", lambda: _umap_test_cells(mdata))
    row["end_to_end_s"] = round(sum(row["stages_s"].values()), 1)
    if totalvi_max is not None and n_cells <= totalvi_max:
        row["totalvi_train_s"] = _totalvi_s(mdata)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--totalvi", action="store_true")
    p.add_argument("--totalvi-max", type=int, default=100_000)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    for n in [int(s) for s in args.sizes.split(",")]:
        row = run(n, args.totalvi_max if args.totalvi else None)
        print(json.dumps(row), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
