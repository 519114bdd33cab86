"""Training time on an accelerator: members batched vs one after another, default and paper settings.

For 30,000 simulated cells (15,000 training cells, 200 RNA PCs, 25 proteins) on ``--device``:

- the default ``train()`` (3 members, ~12,000 updates per step) batched with CUDA graphs
  (the default on a GPU), one member after another, and batched without graphs: wall time,
  and the largest difference between the representations;
- the paper's full configuration (``max_epochs=2000, lr=1e-4``, both steps, CLIP early stopping
  off; with indiseek's interleaved q schedule, as ``q_schedule="epoch"`` cannot be batched):
  ``--paper-epochs`` epochs are timed and the time of 2,000 projected from them (the per-epoch
  cost is constant; the projection also scales the fixed start-up cost, so it errs high),
  batched with and without CUDA graphs.

One JSON line per measurement. Run on a GPU when one is available; on a CPU it also runs
(slowly) and shows what the batched path does there.

Usage: ``python benchmarks/gpu_train.py --device cuda [--paper-epochs 20] [--n-cells 30000]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

import indiseek as isk


def _sync(device: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.synchronize()


def _train(mdata, device: str, batched: bool, **kw) -> tuple[float, dict, dict]:
    model = isk.IndiSeek(mdata)
    _sync(device)
    t = time.perf_counter()
    model.train(accelerator=device, progress_bar=False, batch_members=batched, **kw)
    _sync(device)
    wall = time.perf_counter() - t
    return wall, model.train_params, model.get_representations()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--n-cells", type=int, default=30000)
    p.add_argument("--paper-epochs", type=int, default=20)
    p.add_argument("--skip-default", action="store_true")
    args = p.parse_args()
    mdata = isk.datasets.synthetic_citeseq(n_cells=args.n_cells, n_types=27, seed=0)
    isk.pp.prepare(mdata, train_size=0.5, seed=0, n_pcs=200)
    isk.IndiSeek.setup_mudata(mdata)
    base = {"n_cells": args.n_cells, "device": args.device}
    if torch.cuda.is_available():
        base["gpu"] = torch.cuda.get_device_name()
    # (run, members batched, CUDA graphs); the slow eager ones last, cut first by a time box
    runs = [("default", True, True), ("paper", True, True), ("default", False, False)]
    runs += [("paper", True, False), ("default", True, False)]
    if args.skip_default:
        runs = [r for r in runs if r[0] != "default"]
    reps = {}
    for run, batched, graphs in runs:
        kw = {"cuda_graphs": graphs}
        if run == "paper":
            kw.update(max_epochs=args.paper_epochs, lr=1e-4, clip_early_stopping=False)
        wall, params, rep = _train(mdata, args.device, batched, **kw)
        row = {**base, "run": run, "batched": params["batched"], "cuda_graphs": graphs}
        row["wall_s"] = round(wall, 1)
        row["epochs"] = [params["epochs_run_clip"], params["epochs_run_specific"]]
        if run == "paper":
            row["projected_2000_epochs_s"] = round(wall * 2000 / args.paper_epochs, 0)
        else:
            reps[(batched, graphs)] = rep
        print(json.dumps(row), flush=True)
        if run == "default" and len(reps) > 1:
            ref = reps[(True, True)]
            diff = max(float(np.abs(rep[k] - ref[k]).max()) for k in ref)
            row = {**base, "run": "default", "vs": [batched, graphs], "max_abs_difference": diff}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
