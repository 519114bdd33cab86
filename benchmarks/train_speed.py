"""Training speed of IndiSeek at the paper's architecture, and scvi-tools' TOTALVI as a peer.

For each size (default 15,000 and 30,000 simulated cells, all used for training): the time of
one epoch of each step, cells/s, epochs/s, the wall time of a full default ``train()``, and peak
memory. When scvi-tools is importable, TOTALVI's default training runs on the same counts in the
same process and the ratio of wall times is printed.

Usage: ``python benchmarks/train_speed.py [--sizes 15000,30000] [--device auto] [--no-totalvi]
[--totalvi-epochs 10]`` (the last: time 10 TOTALVI epochs and project its default length).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

import indiseek as isk


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _indiseek(mdata, device: str) -> dict:
    isk.IndiSeek.setup_mudata(mdata)
    out = {}
    model = isk.IndiSeek(mdata, lam=10.0)
    t = time.perf_counter()
    model.train(
        max_epochs=1, clip_epochs=1, accelerator=device, progress_bar=False, validation_size=0.0
    )
    one = time.perf_counter() - t
    n = model.train_params["n_train"]
    out["one_epoch_each_step_s"] = round(one, 3)
    out["cells_per_s_one_epoch"] = round(n / one, 1)
    if torch.cuda.is_available() and device != "cpu":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    model.train(accelerator=device, progress_bar=False)
    wall = time.perf_counter() - t
    epochs = model.train_params["epochs_run_clip"] + model.train_params["epochs_run_specific"]
    out.update(
        {
            "default_train_wall_s": round(wall, 2),
            "epochs_step1": model.train_params["epochs_run_clip"],
            "epochs_step2": model.train_params["epochs_run_specific"],
            "epochs_per_s": round(epochs / wall, 2),
            "device": model.train_params["device"],
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        }
    )
    if torch.cuda.is_available() and device != "cpu":
        out["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _totalvi_default_epochs(n_cells: int) -> int:
    try:  # scvi-tools' own rule for its default max_epochs
        from scvi.model._utils import get_max_epochs_heuristic

        return int(get_max_epochs_heuristic(n_cells))
    except ImportError:
        return int(min(round(20000 / n_cells * 400), 400))


def _totalvi(mdata, device: str, epochs: int | None = None) -> dict | None:
    try:
        import scvi
    except ImportError:
        return None
    import anndata as ad

    rna = mdata.mod["rna"]
    adata = ad.AnnData(rna.X.copy(), obs=rna.obs[[]].copy(), var=rna.var[[]].copy())
    adata.obsm["protein"] = mdata.mod["adt"].X.toarray()
    scvi.model.TOTALVI.setup_anndata(adata, protein_expression_obsm_key="protein")
    model = scvi.model.TOTALVI(adata)
    accelerator = "gpu" if device != "cpu" and torch.cuda.is_available() else "cpu"
    t = time.perf_counter()
    model.train(accelerator=accelerator, **({} if epochs is None else {"max_epochs": epochs}))
    wall = time.perf_counter() - t
    ran = int(model.history["elbo_train"].shape[0])
    out = {"train_wall_s": round(wall, 2), "epochs": ran, "peak_rss_mb": round(_peak_rss_mb(), 1)}
    out["scvi_tools"] = scvi.__version__
    default = _totalvi_default_epochs(adata.n_obs)
    # the per-epoch cost is constant; its default early stopping can only make the real run shorter
    out["default_train_wall_s"] = round(wall if epochs is None else wall * default / ran, 2)
    out["default_epochs"] = default
    out["projected"] = epochs is not None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="15000,30000")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-totalvi", action="store_true")
    p.add_argument(
        "--totalvi-epochs", type=int, default=None, help="time this many and project the default"
    )
    args = p.parse_args()
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        mdata = isk.datasets.synthetic_citeseq(
            n_cells=n, n_genes=2000, n_proteins=25, n_types=27, seed=0
        )
        isk.pp.prepare(mdata, n_pcs=200, seed=0)  # the paper's input size
        row = {"n_cells": n, "indiseek": _indiseek(mdata, args.device)}
        if not args.no_totalvi:
            tv = _totalvi(mdata, args.device, args.totalvi_epochs)
            if tv is not None:
                row["totalvi"] = tv
                row["ratio_totalvi_over_indiseek"] = round(
                    tv["default_train_wall_s"] / row["indiseek"]["default_train_wall_s"], 2
                )
        print(json.dumps(row), flush=True)
        results.append(row)


if __name__ == "__main__":
    main()
