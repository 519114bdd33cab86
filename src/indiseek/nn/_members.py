"""Training one ensemble member (step 1 then step 2), in this process or in a worker process.

Members are independent models, so on a CPU with spare cores they train in parallel worker
processes, each on one thread. Everything a member needs travels in a :class:`MemberJob`, which
pickles (modules, tensors, a dataclass), and :func:`train_member` is importable at module level,
as the ``spawn`` start method requires.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ._modules import ClipModule, SpecificBranch
from ._objectives import get_objective
from ._training import BranchData, TrainConfig, cpu_threads, fit_clip, fit_specific_branches

MODALITIES = ("rna", "adt")


@dataclass
class MemberJob:
    """One member's networks (initialised), data and settings."""

    clip: ClipModule
    branches: dict[str, SpecificBranch]  # {"rna": ..., "adt": ...}; empty without step 2
    x: dict[str, torch.Tensor]
    train_idx: np.ndarray
    val_idx: np.ndarray
    cfg: TrainConfig
    epochs: int
    clip_epochs: int
    objective: str
    lam: float
    club_weight: float
    x_sq: dict[str, float]
    clip_state: dict[str, torch.Tensor] | None = None  # reuse a trained step 1
    clip_history: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class MemberResult:
    """What a member's training returns: weights, per-epoch histories and timings."""

    clip_state: dict[str, torch.Tensor]
    branch_states: dict[str, dict[str, torch.Tensor]]
    clip_history: pd.DataFrame
    specific_history: pd.DataFrame
    time_clip_s: float
    time_specific_s: float


def train_member(job: MemberJob) -> MemberResult:
    """Train step 1 (unless ``job.clip_state`` is given) and step 2 of one member, in place."""
    device = job.x["rna"].device
    tr = torch.as_tensor(job.train_idx, device=device)
    va = torch.as_tensor(job.val_idx, device=device) if len(job.val_idx) > 1 else None
    objective = get_objective(job.objective)
    t0 = time.perf_counter()
    with cpu_threads(device, job.cfg.cpu_threads):
        if job.clip_state is None:
            hist1 = fit_clip(job.clip, job.x["rna"], job.x["adt"], tr, va, job.cfg, job.clip_epochs)
        else:
            job.clip.load_state_dict(job.clip_state)
            job.clip.eval()
            hist1 = job.clip_history.copy()
        t1 = time.perf_counter()
        hist2 = pd.DataFrame()
        if job.branches:
            with torch.no_grad():
                c = dict(zip(MODALITIES, job.clip(job.x["rna"], job.x["adt"]), strict=True))
            other = {"rna": "adt", "adt": "rna"}
            data = {
                m: BranchData(
                    x=job.x[m],
                    c_own=c[m],
                    c_club=c[other[m]] if objective.club_on_cross else c[m],
                    x_sq=job.x_sq[m],
                )
                for m in MODALITIES
            }
            hist2 = fit_specific_branches(
                job.branches,
                data,
                objective,
                job.lam,
                tr,
                va,
                job.cfg,
                job.epochs,
                club_weight=job.club_weight,
            )
    t2 = time.perf_counter()
    return MemberResult(
        clip_state=job.clip.state_dict(),
        branch_states={m: b.state_dict() for m, b in job.branches.items()},
        clip_history=hist1,
        specific_history=hist2,
        time_clip_s=t1 - t0,
        time_specific_s=t2 - t1,
    )


def available_cores() -> int:
    """CPU cores this process may use (respects affinity masks, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def spawn_is_safe() -> bool:
    """Whether ``spawn`` workers can start without re-running the user's top-level code.

    They re-import ``__main__`` when it is a file run as a script; an interactive session
    (Jupyter, IPython, ``python -c``) has no file, and ``python -m`` imports by module name.
    """
    main = sys.modules.get("__main__")
    return (
        main is None or not hasattr(main, "__file__") or getattr(main, "__spec__", None) is not None
    )


def run_members(
    jobs: Sequence[MemberJob],
    n_jobs: int,
    on_done: Callable[[int], None] | None = None,
) -> list[MemberResult]:
    """Train every member, ``n_jobs`` at a time in worker processes (1: in this process).

    Results come back in member order. Workers are started with ``spawn`` (safe with torch's
    thread pools, and the only method on macOS and Windows); weights come back as state dicts.
    """
    if n_jobs <= 1 or len(jobs) <= 1:
        results = []
        for j, job in enumerate(jobs):
            results.append(train_member(job))
            if on_done is not None:
                on_done(j)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    results: list[MemberResult | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=ctx) as pool:
        futures = {pool.submit(train_member, job): j for j, job in enumerate(jobs)}
        for fut in as_completed(futures):
            j = futures[fut]
            results[j] = fut.result()
            if on_done is not None:
                on_done(j)
    return [r for r in results if r is not None]
