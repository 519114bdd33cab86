"""Peak memory of ``pp.prepare`` on a MuData read into memory against one read backed.

Simulates ``n`` cells (``synthetic_citeseq``, 2,000 genes, 25 proteins), writes them to an
``.h5mu`` file, then runs ``mudata.read_h5mu`` + ``pp.prepare(train_size=0.5)`` in a fresh
process for each mode and reports its wall time and peak resident memory, and whether the two
modes wrote the same inputs.

Usage: ``python benchmarks/backed_prepare.py --cells 200000 [--dir /tmp] [--out rows.jsonl]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time, numpy as np, mudata as md, indiseek as isk
t = time.perf_counter()
m = md.read_h5mu(sys.argv[1], backed=sys.argv[2] == "backed")
isk.pp.prepare(m, train_size=0.5, seed=0)
np.save(sys.argv[3], m.mod["rna"].obsm["X_indiseek_pca"][:1000])
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=200_000)
    p.add_argument("--dir", default=None)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import numpy as np

    import indiseek as isk

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "cells.h5mu"
        t = time.perf_counter()
        isk.datasets.synthetic_citeseq(args.cells, n_genes=2000, n_proteins=25, seed=0).write(path)
        row = {"n_cells": args.cells, "simulate_write_s": round(time.perf_counter() - t, 1)}
        for mode in ("memory", "backed"):
            res = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), mode, str(Path(tmp) / f"{mode}.npy")],
                capture_output=True,
                text=True,
                check=True,
            )
            wall, peak = (float(v) for v in res.stdout.split()[-2:])
            row[mode] = {"prepare_s": round(wall, 1), "peak_rss_gb": round(peak, 2)}
        same = np.array_equal(np.load(Path(tmp) / "memory.npy"), np.load(Path(tmp) / "backed.npy"))
        row["same_inputs_first_1000_cells"] = bool(same)
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
