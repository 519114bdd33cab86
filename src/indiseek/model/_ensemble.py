"""The ensemble: member seeds, one job per member, and running the jobs.

Members are independent models. On a CUDA GPU they train at once as one batched model
(:mod:`indiseek.nn._batched`: stacked weights, one ``vmap``-ed step for all members), which
runs them in parallel there. On a CPU (where batching measured only ~1.2x faster than one
after another), and for settings the batched path does not cover (batch-standardised Z,
InfoNCE critics, the per-epoch q schedule, a reused step 1), each member trains as a model
of its own; on a CPU several at once, in joblib's ``loky`` worker processes with one thread
each: loky needs no ``if __name__ == "__main__":`` guard in a user's script, and a
member's result does not depend on where it was trained (its seed, initialisation and batch
order travel in the job).
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..nn import (
    IndiSeekModule,
    MemberJob,
    MemberResult,
    Objective,
    can_batch,
    default_epochs,
    to_tensor,
    train_member,
    train_members_batched,
    why_not_batched,
)
from ..nn._train_utils import check_int
from ._arrays import split_validation

logger = logging.getLogger(__name__)

#: Below this many updates per member, starting workers costs more than it saves.
MIN_PARALLEL_UPDATES = 1000


def member_seed(seed: int, member: int) -> int:
    """Seed of ensemble member ``member``: ``seed`` itself for the first, then derived ones."""
    if member == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), member]).generate_state(1)[0] % (2**31))


def build_members(
    params: dict, n_features: dict[str, int], objective: Objective, seed: int
) -> torch.nn.ModuleList:
    """``n_members`` freshly initialised members, member ``j`` drawn from ``member_seed(seed, j)``."""
    members = []
    for j in range(int(params["n_members"])):
        # seeded initialisation without touching the caller's torch RNGs (CPU or CUDA)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(member_seed(seed, j))
            members.append(
                IndiSeekModule(
                    n_features,
                    params["n_shared"],
                    params["n_specific"],
                    params["n_hidden"],
                    params["n_layers"],
                    temperature=params["temperature"],
                    learn_temperature=params["learn_temperature"],
                    specific=objective.has_specific,
                    critics=objective.uses_critics,
                    normalize_z=params["normalize_z"],
                    n_covariates=int(params.get("n_covariates", 0)),
                )
            )
    return torch.nn.ModuleList(members)


def available_cores() -> int:
    """CPU cores this process may use (respects affinity masks, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


#: Above this many bytes of training inputs in all workers together, no worker beyond one per
#: core is started (each worker holds its own copy of the inputs).
MAX_EXTRA_WORKER_BYTES = 2**30


def n_workers(
    n_jobs: int | None,
    device: torch.device,
    n_members: int,
    updates: int,
    input_bytes: int | None = None,
    threads: int | None = 1,
) -> int:
    """Worker processes for members trained one by one: parallel on CPUs only.

    One worker per core, or one per member when the cores do not divide the members (at
    most twice as many members as cores), ``threads`` (per worker) is 1 and ``input_bytes``
    (the training inputs one worker holds; ``None``: unknown) times the members is at most
    1 GiB: 3 members on 2 cores then share the cores (about 1.5 members' time) instead of the
    third waiting for a free core (2 members' time). Measured: 105 s against 125 s for the
    default 3 members on 30,000 cells, 2 cores.
    """
    if device.type != "cpu" or n_members == 1:
        return 1
    if n_jobs == -1:  # scikit-learn's and scanpy's "all cores"
        return max(1, min(n_members, available_cores()))
    if n_jobs is not None:
        return min(int(n_jobs), n_members)
    if updates < MIN_PARALLEL_UPDATES:
        return 1
    cores = available_cores()
    small = input_bytes is not None and n_members * input_bytes <= MAX_EXTRA_WORKER_BYTES
    uneven = 2 <= cores < n_members <= 2 * cores and n_members % cores
    if uneven and small and threads == 1:
        return n_members
    return max(1, min(n_members, cores))


def use_batched(batch_members, device: torch.device | None = None, jobs=()) -> bool:
    """Whether to train the members as one batched model (``train(batch_members=...)``);
    without a device, only checks the setting."""
    if batch_members is not None and not isinstance(batch_members, bool | np.bool_):
        raise ValueError(f"batch_members must be True, False or None, got {batch_members!r}.")
    if device is None:
        return False
    if batch_members is None:
        return device.type == "cuda" and can_batch(jobs)
    if not batch_members:
        return False
    reason = why_not_batched(jobs)
    if reason:
        logger.warning("batch_members=True: training members one by one instead (%s)", reason)
    return not reason


def member_time(results: Sequence[MemberResult], key: str, batched: bool) -> float:
    """Seconds spent on a step, summed over members (a batched run's time counted once)."""
    times = [getattr(r, key) for r in results]
    return times[0] if batched else sum(times)


# training settings recorded as asked for (with "batched" and "device", cuda_graphs says
# whether graphs were meant to run; a capture that failed fell back with a warning)
RECORDED = (
    "batch_size",
    "lr",
    "seed",
    "q_schedule",
    "q_steps",
    "q_epochs",
    "early_stopping",
    "cuda_graphs",
)


def train_record(cfg, jobs, results, history: pd.DataFrame, batched: bool) -> dict:
    """``train_params``' entries that come from the settings, the jobs and the histories."""
    n_members = len(jobs)
    steps = history["step"]
    return {
        **{k: v for k, v in dataclasses.asdict(cfg).items() if k in RECORDED},
        "max_epochs": jobs[0].epochs,
        "clip_epochs": jobs[0].clip_epochs,
        "epochs_run_clip": int((steps == "clip").sum()) // n_members,
        "epochs_run_specific": int((steps == "specific").sum()) // n_members,
        "n_train": len(jobs[0].train_idx),
        "n_validation": len(jobs[0].val_idx),
        "time_clip_s": round(member_time(results, "time_clip_s", batched), 3),
        "time_specific_s": round(member_time(results, "time_specific_s", batched), 3),
    }


def run_members(
    jobs: Sequence[MemberJob], workers: int, progress_bar: bool, batched: bool = False
) -> list[MemberResult]:
    """Train every member, all at once (``batched``) or ``workers`` at a time; results in order."""
    from tqdm.auto import tqdm

    if batched:
        logger.info("training %d members as one batched model", len(jobs))
        return train_members_batched(jobs)

    if workers > 1:  # one bar over members instead of interleaved per-epoch bars
        jobs = [
            dataclasses.replace(j, cfg=dataclasses.replace(j.cfg, progress_bar=False)) for j in jobs
        ]
    bar = tqdm(
        total=len(jobs),
        desc=f"ensemble ({workers} worker{'s' if workers > 1 else ''})",
        unit="member",
        disable=not progress_bar or workers == 1 or len(jobs) == 1,
    )
    if workers > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=workers, backend="loky", return_as="generator")(
            delayed(train_member)(job) for job in jobs
        )
    else:
        results = (train_member(job) for job in jobs)
    out = []
    with bar:
        for j, res in enumerate(results):
            logger.info("member %d of %d trained", j + 1, len(jobs))
            bar.update()
            out.append(res)
    return out


def collect_history(results: Sequence[MemberResult]) -> pd.DataFrame:
    """Every member's step-1 and step-2 histories in one table (columns ``step``, ``member``)."""
    parts = []
    for j, res in enumerate(results):
        for step, hist in (("clip", res.clip_history), ("specific", res.specific_history)):
            if len(hist):
                parts.append(hist.assign(step=step, member=j)[["step", "member", *hist.columns]])
    return pd.concat(parts, ignore_index=True)


def crossfit_folds(n_cells: int, n_folds: int, seed: int, groups=None) -> np.ndarray:
    """The fold (0 … ``n_folds`` − 1) of each of ``n_cells`` cells: a seeded permutation dealt
    round-robin, within each group (e.g. batch) when ``groups`` are given, so folds are as
    equal in size (and batch make-up) as the cells allow."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 20_211]))
    groups = np.zeros(n_cells, dtype=np.int64) if groups is None else np.asarray(groups)
    folds = np.empty(n_cells, dtype=np.int64)
    dealt = 0
    for g in np.unique(groups):
        perm = rng.permutation(np.flatnonzero(groups == g))
        # continue the deal where the previous group stopped: fold sizes differ by at most 1
        folds[perm] = (dealt + np.arange(len(perm))) % n_folds
        dealt += len(perm)
    return folds


def check_cross_fit(cross_fit, clip_from, n_members: int) -> None:
    """``train(cross_fit=...)`` can be honoured with these settings."""
    if not isinstance(cross_fit, bool | np.bool_):
        raise ValueError(f"cross_fit must be True or False, got {cross_fit!r}.")
    if cross_fit and clip_from is not None:
        raise ValueError(
            "cross_fit=True cannot reuse clip_from's step 1: its CLIP encoders trained on "
            "every fold, so no member would be blind to its own fold."
        )
    if cross_fit and n_members < 2:
        raise ValueError(
            "cross_fit=True needs n_members >= 2 (member j leaves out fold j); build the "
            "model with isk.IndiSeek(mdata, n_members=3)."
        )


def crossfit_cells(
    cross_fit, clip_from, train: np.ndarray, n_members: int, seed: int, batches
) -> tuple[np.ndarray | None, list[np.ndarray] | None]:
    """For ``train(cross_fit=True)``: each cell's fold (−1 outside the training cells
    ``train``) and each member's training cells (every fold but its own), folds dealt evenly
    within ``batches``; ``(None, None)`` without cross-fitting."""
    check_cross_fit(cross_fit, clip_from, n_members)
    if not cross_fit:
        return None, None
    cells = np.flatnonzero(train)
    groups = None if batches is None else batches[cells]
    local = crossfit_folds(len(cells), n_members, seed, groups)
    folds = np.full(len(train), -1, dtype=np.int64)
    folds[cells] = local
    return folds, [cells[local != j] for j in range(n_members)]


def make_jobs(
    model,
    x,
    cells,
    cfg,
    validation_size,
    clip_epochs,
    clip_from,
    member_cells=None,
    covariates=None,
) -> list[MemberJob]:
    """One job per member of ``model``: its seed, validation split, data and (reused) step 1.

    ``member_cells``: each member's own training cells (cross-fitting); else all train on
    ``cells``. The scale of the reconstruction term, E‖X‖², comes from the first member's
    training cells and is shared by all members (``jobs[0].x_sq``).
    """
    jobs = []
    x_sq: dict[str, float] = {}
    cov = model._covariates_of(None)
    covariates = None if cov is None else to_tensor(cov, next(iter(x.values())).device)
    for j, member in enumerate(model.module):
        # member 0 is the single model trained with ``seed``
        seed_j = member_seed(cfg.seed, j)
        own = cells if member_cells is None else member_cells[j]
        tr_local, va_local = split_validation(len(own), validation_size, seed_j)
        tr, va = own[tr_local], own[va_local]
        if j == 0:
            idx = torch.as_tensor(tr, device=next(iter(x.values())).device)
            x_sq.update({m: float((v[idx] ** 2).sum(1).mean()) for m, v in x.items()})
        epochs = int(cfg.max_epochs or default_epochs(len(tr), cfg.batch_size))
        reuse = clip_from is not None
        jobs.append(
            MemberJob(
                module=member,
                x=x,
                train_idx=tr,
                val_idx=va,
                cfg=dataclasses.replace(cfg, seed=seed_j),
                epochs=epochs,
                clip_epochs=int(clip_epochs or epochs),
                objective=model.objective.name,
                lam=model.params["lam"],
                club_weight=model.params["club_weight"],
                x_sq=x_sq,
                clip_state=clip_from.module[j].clip.state_dict() if reuse else None,
                clip_history=clip_from._clip_history(j) if reuse else pd.DataFrame(),
                covariates=covariates,
            )
        )
    return jobs


def check_clip_source(model, other) -> None:
    """``other`` can lend ``model`` its trained step 1 (same inputs, sizes and members)."""
    if not getattr(other, "is_trained", False) or not hasattr(other, "module"):
        raise ValueError(f"clip_from must be a trained IndiSeek model, got {type(other).__name__}.")
    keys = ("n_shared", "n_hidden", "n_layers", "n_members")
    mine = [model.params[k] for k in keys]
    theirs = [other.params[k] for k in keys]
    if other.n_features != model.n_features or mine != theirs:
        raise ValueError(
            "clip_from was built with other inputs or sizes: features "
            f"{other.n_features} vs {model.n_features}, {list(keys)} {theirs} vs {mine}."
        )


def check_train_args(
    model, clip_epochs, n_jobs, validation_size, early_stopping, clip_from=None, restart=True
) -> None:
    """The settings of ``IndiSeek.train`` that :class:`TrainConfig` does not hold, and the
    model's training inputs."""
    if clip_from is not None:
        check_clip_source(model, clip_from)
    if clip_epochs is not None:
        check_int("clip_epochs", clip_epochs, 1, "or None")
    if n_jobs is not None and not (
        isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool) and n_jobs == -1
    ):
        check_int("n_jobs", n_jobs, 1, "or -1 (one per core) or None")
    if not (isinstance(validation_size, numbers.Real) and 0 <= validation_size < 1):
        raise ValueError(f"validation_size must be in [0, 1), got {validation_size!r}.")
    if early_stopping and validation_size == 0:
        raise ValueError("early_stopping=True needs validation cells; set validation_size > 0.")
    if not isinstance(restart, bool | np.bool_):
        raise ValueError(f"restart_collapsed must be True or False, got {restart!r}.")
    for role, x in model._train_inputs.items():
        if not np.all(np.isfinite(x[model._train_cells])):
            raise ValueError(
                f"The {role} inputs of training cells hold NaN or inf (changed after "
                "setup_mudata?); prepare the data again."
            )
