"""The θ suite's runs spread over worker processes, for a machine with many cores (or a GPU).

Each job is one (dataset, cells, data seed, configuration, training seed) of
``bm_theta_suite.py``; jobs start in the order given (most important first) and none starts
after ``--deadline-s`` seconds, so a time-boxed run returns whole rows. Rows are appended to
``--out`` as each job ends, in ``bm_theta_suite.py``'s format (``--report`` reads them).

Usage::

    python benchmarks/suite_parallel.py --workers 14 --deadline-s 400 --out rows.jsonl \\
        --jobs bonemarrow:30000:0:default:0 bonemarrow:30000:0:c8:0 ...
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor, as_completed


def run_job(spec: str, out: str, members: int, deadline: float) -> str:
    import numpy as np

    np.seterr(all="ignore")
    if time.time() > deadline:
        return f"skipped {spec}"
    from _suite_data import REAL, load, prepare
    from bm_theta_suite import CONFIGS, run_one

    name, n_cells, data_seed, config, seed = spec.split(":")
    raw, ref, label_key = load(name, int(n_cells), int(data_seed))
    mdata = prepare(raw, name, **CONFIGS[config][0])
    row = {"dataset": name, "n_cells": mdata.n_obs, "data_seed": int(data_seed)}
    row.update(config=config, seed=int(seed))
    row.update(run_one(mdata, ref, label_key, config, int(seed), members, 1))
    if name in REAL:
        row["data_seed"] = 0
    with open(out, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    return json.dumps(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", nargs="+", required=True, help="dataset:cells:data_seed:config:seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--deadline-s", type=float, default=1e9)
    ap.add_argument("--out", default="suite.jsonl")
    args = ap.parse_args()
    deadline = time.time() + args.deadline_s
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        futures = [pool.submit(run_job, j, args.out, args.members, deadline) for j in args.jobs]
        for fut in as_completed(futures):
            try:
                print(fut.result(), flush=True)
            except Exception as err:  # one failed job must not lose the others' rows
                print(f"failed: {err!r}", flush=True)


if __name__ == "__main__":
    main()
