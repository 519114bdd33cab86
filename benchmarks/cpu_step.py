"""What one step-2 update costs on a CPU core, and how much of it is arithmetic.

At the paper's sizes (200 RNA PCs, 25 proteins, 5-layer width-50 MLPs, batch 128) one update
runs 8 MLPs forward and backward. This prints, on one thread:

- the milliseconds per update of the training loop as shipped (``fit_specific_branches``);
- the same step with its loss compiled by ``torch.compile`` (inductor), and the compile time;
- the matrix products alone (the floor no implementation of the same maths goes below), with
  the GFLOP/s one core reaches on these shapes and on a large product.

Usage: ``python benchmarks/cpu_step.py [--no-compile] [--out results/cpu_step.jsonl]``
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from indiseek.nn._loops import BranchData, _batch_terms, _q_terms, fit_specific_branches, select
from indiseek.nn._modules import IndiSeekModule
from indiseek.nn._objectives import get_objective
from indiseek.nn._train_utils import TrainConfig, adam

N, BATCH = 15_000, 128
SIZES = {"rna": 200, "adt": 25}


def _setup():
    torch.manual_seed(0)
    x = {m: torch.randn(N, d) for m, d in SIZES.items()}
    module = IndiSeekModule(SIZES, 50, 10, 50, 5, normalize_z=False)
    with torch.no_grad():
        c = module.shared(x)
    data = {
        m: BranchData(x[m], c[m], c[module.other(m)], float((x[m] ** 2).sum(1).mean())) for m in x
    }
    return module, data


def loop_ms(epochs: int = 2) -> float:
    """Milliseconds per update of the shipped loop (after a warm-up epoch)."""
    module, data = _setup()
    cfg, obj, tr = TrainConfig(progress_bar=False), get_objective("indiseek"), torch.arange(N)
    fit_specific_branches(module.branches, data, obj, 10.0, tr, None, cfg, 1)
    t = time.perf_counter()
    fit_specific_branches(module.branches, data, obj, 10.0, tr, None, cfg, epochs)
    return (time.perf_counter() - t) / (epochs * (N // BATCH)) * 1e3


def compiled_ms(steps: int = 400) -> tuple[float, float]:
    """(ms per update, compile seconds) with the step's loss compiled by torch.compile."""
    module, data = _setup()
    branches, obj = module.branches, get_objective("indiseek")
    opt = adam(list(branches.parameters()), TrainConfig())

    def loss(idx):
        batch = select(data, idx)
        z = {m: br.encoder(batch[m].x) for m, br in branches.items()}
        q_loss, _, q_out = _q_terms(branches, batch, z)
        return _batch_terms(branches, batch, obj, 10.0, 1.0, z, q_out)[0] + q_loss

    fn = torch.compile(loss, dynamic=False)
    gen = torch.Generator().manual_seed(0)
    idx = [torch.randperm(N, generator=gen)[:BATCH] for _ in range(steps + 3)]

    def step(i):
        value = fn(idx[i])
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()

    t = time.perf_counter()
    for i in range(3):
        step(i)
    t1 = time.perf_counter()
    for i in range(3, steps + 3):
        step(i)
    return (time.perf_counter() - t1) / steps * 1e3, t1 - t


def matmul_floor_ms() -> tuple[float, dict[str, float]]:
    """Time of the update's matrix products alone, and GFLOP/s on its main shapes."""
    shapes = []  # (m, k, n) of every product in one update: forward, weight and input grads
    for d in SIZES.values():
        nets = [(d, 10), (10 + 50, d), (50, 10), (50, 10)]  # encoder, decoder, q mean, q logvar
        for n_in, n_out in nets:
            dims = [n_in, 50, 50, 50, 50, n_out]
            for i in range(5):
                a, b = dims[i], dims[i + 1]
                shapes += [(BATCH, a, b), (b, BATCH, a)]  # forward, weight grad
                if i > 0 or n_in == 60:  # input grads (not into X or the fixed C)
                    shapes.append((BATCH, b, a))
    mats = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]
    for a, b in mats:
        a @ b
    t = time.perf_counter()
    for _ in range(200):
        for a, b in mats:
            a @ b
    floor = (time.perf_counter() - t) / 200 * 1e3
    rates = {}
    for m, k, n in [(BATCH, 200, 50), (BATCH, 50, 50), (1024, 1024, 1024)]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        reps = max(20, int(2e9 / (2 * m * k * n)))
        a @ b
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        rates[f"{m}x{k}x{n}"] = round(2 * m * k * n * reps / (time.perf_counter() - t) / 1e9, 1)
    return floor, rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    row = {"loop_ms_per_update": round(loop_ms(), 3)}
    floor, rates = matmul_floor_ms()
    row.update(matmul_floor_ms=round(floor, 3), gflops=rates)
    if not args.no_compile:
        ms, compile_s = compiled_ms()
        row.update(compiled_ms_per_update=round(ms, 3), compile_s=round(compile_s, 1))
    row["torch"] = torch.__version__
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
