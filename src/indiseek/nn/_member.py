"""Training one model of an ensemble (step 1, then step 2) from a self-contained job.

A :class:`MemberJob` holds everything one member needs (its initialised module, data and
settings) and pickles, so whoever runs members (in this process or in workers) hands jobs to
:func:`train_member` and collects :class:`MemberResult`.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ._loops import BranchData, fit_clip, fit_specific_branches
from ._modules import IndiSeekModule
from ._objectives import get_objective
from ._train_utils import TrainConfig, cpu_threads


@dataclass
class MemberJob:
    """One member's initialised module, data (by modality name) and settings."""

    module: IndiSeekModule
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
    #: per-cell covariates (one-hot batches) appended to C in step 2; ``None``: none
    covariates: torch.Tensor | None = None


@dataclass
class MemberResult:
    """What training a member returns: its weights, per-epoch histories and timings."""

    state: dict[str, torch.Tensor]
    clip_history: pd.DataFrame
    specific_history: pd.DataFrame
    time_clip_s: float
    time_specific_s: float


def _branch_data(job: MemberJob, c: dict[str, torch.Tensor]) -> dict[str, BranchData]:
    module, objective = job.module, get_objective(job.objective)
    if job.covariates is not None:
        c = {m: torch.cat([v, job.covariates], dim=1) for m, v in c.items()}
    return {
        m: BranchData(
            x=job.x[m],
            c_own=c[m],
            c_club=c[module.other(m)] if objective.club_on_cross else c[m],
            x_sq=job.x_sq[m],
        )
        for m in module.names
    }


def train_member(job: MemberJob) -> MemberResult:
    """Train step 1 (unless ``job.clip_state`` is given) and step 2 of one member, in place."""
    module = job.module
    a, b = module.names
    device = job.x[a].device
    tr = torch.as_tensor(job.train_idx, device=device)
    va = torch.as_tensor(job.val_idx, device=device) if len(job.val_idx) > 1 else None
    t0 = time.perf_counter()
    with cpu_threads(device, job.cfg.cpu_threads):
        if job.clip_state is None:
            hist1 = fit_clip(module.clip, job.x[a], job.x[b], tr, va, job.cfg, job.clip_epochs)
        else:
            module.clip.load_state_dict(job.clip_state)
            module.clip.eval()
            hist1 = job.clip_history.copy()
        t1 = time.perf_counter()
        hist2 = pd.DataFrame()
        if len(module.branches):
            with torch.no_grad():
                c = module.shared(job.x)
            hist2 = fit_specific_branches(
                module.branches,
                _branch_data(job, c),
                get_objective(job.objective),
                job.lam,
                tr,
                va,
                job.cfg,
                job.epochs,
                club_weight=job.club_weight,
            )
    return MemberResult(
        state=module.state_dict(),
        clip_history=hist1,
        specific_history=hist2,
        time_clip_s=t1 - t0,
        time_specific_s=time.perf_counter() - t1,
    )


#: Z is collapsed when its part of the decoder's first-layer input varies over the training
#: cells by less than this share of what C's part varies (the decoder absorbs Z's scale, so
#: the comparison is scale-free): the decoder then cannot tell cells apart by Z.
#: A collapsed member of the θ suite read 0 and 1.5e-8, the healthy branches seen 0.005–2.
DEAD_Z_RATIO = 1e-5
#: At most this many training cells (evenly spaced) are read by the checks after training.
CHECK_CELLS = 20_000


def _check_rows(idx: np.ndarray, x: dict[str, torch.Tensor]) -> torch.Tensor:
    """At most :data:`CHECK_CELLS` of the cells ``idx``, evenly spaced, on ``x``'s device."""
    idx = np.asarray(idx)
    idx = idx[:: max(1, -(-len(idx) // CHECK_CELLS))]
    return torch.as_tensor(idx, device=next(iter(x.values())).device)


@contextlib.contextmanager
def _eval_mode(module: torch.nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@torch.no_grad()
def collapsed_branches(
    module: IndiSeekModule, x: dict[str, torch.Tensor], idx: np.ndarray
) -> list[str]:
    """Modalities whose Z carries nothing the decoder can use on the cells ``idx``.

    A large CLUB gradient can switch off every unit of a Z encoder for all cells (ReLUs that
    never fire again): Z is then the last layer's bias, the CLUB estimate exactly 0 and the
    decoder reconstructs from C alone — a point of the objective that training does not
    leave. Measured (below :data:`DEAD_Z_RATIO`) as the spread of ``W_z z`` against that of
    ``W_c c`` in the decoder's first layer (a collapsed member of the θ suite: 0 and 1.5e-8;
    healthy ones 1–2, and 0.005 for a Z shrunk to a spread of 0.008 that the decoder still
    reads).
    """
    rows = _check_rows(idx, x)
    if len(rows) < 2:
        return []
    out = []
    with _eval_mode(module):
        cells = {name: v[rows] for name, v in x.items()}
        c = module.shared(cells)
        for name, branch in module.branches.items():
            z = branch.encoder(cells[name]).cpu().double()  # on the CPU: MPS has no float64
            first = next(m for m in branch.decoder.modules() if isinstance(m, torch.nn.Linear))
            w = first.weight.detach().cpu().double()
            n_z, n_c = z.shape[1], c[name].shape[1]
            from_z = (z @ w[:, :n_z].T).std(dim=0).norm()
            from_c = (c[name].cpu().double() @ w[:, n_z : n_z + n_c].T).std(dim=0)
            if bool(from_z <= DEAD_Z_RATIO * from_c.norm()):
                out.append(name)
    return out


#: q's log-variance within this share of its bound counts as sitting on the bound.
AT_BOUND_TOL = 0.01


@torch.no_grad()
def critic_at_bound(job: MemberJob) -> dict[str, float]:
    """Per modality, the share of (cell, dimension) pairs of the training cells (at most
    ``CHECK_CELLS``, evenly spaced) where the CLUB critic's log-variance sits on its tanh bound,
    i.e. ``|logvar| >= 0.99 * bound``.

    There the tanh is nearly flat and passes almost no gradient, so the critic stays put, and
    at the upper bound the CLUB term barely constrains Z: a share near 1 says that member's Z
    was shaped mostly by reconstruction for the rest of training. Empty without step-2
    branches.
    """
    module, objective = job.module, get_objective(job.objective)
    rows = _check_rows(job.train_idx, job.x)
    if not len(module.branches) or len(rows) == 0:
        return {}
    out = {}
    with _eval_mode(module):
        c = module.shared({m: v[rows] for m, v in job.x.items()})
        if job.covariates is not None:
            c = {m: torch.cat([v, job.covariates[rows]], dim=1) for m, v in c.items()}
        for name, branch in module.branches.items():
            c_club = c[module.other(name)] if objective.club_on_cross else c[name]
            _, logvar = branch.q(c_club)
            edge = (1 - AT_BOUND_TOL) * branch.q.logvar_bound
            out[name] = round(float((logvar.abs() >= edge).float().mean()), 4)
    return out


def reinitialise_branches(module: IndiSeekModule, seed: int) -> None:
    """Fresh step-2 weights for ``module`` (its step 1 is kept), drawn on the CPU from ``seed``
    without touching the caller's random state."""
    layers = [m for m in module.branches.modules() if hasattr(m, "reset_parameters")]
    covered = {id(p) for m in layers for p in m.parameters(recurse=False)}
    missed = [n for n, p in module.branches.named_parameters() if id(p) not in covered]
    if missed:  # a parameter outside a resettable layer would keep its trained value
        raise RuntimeError(f"Cannot re-initialise step-2 parameters {missed}.")
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        for layer in layers:
            fresh = copy.deepcopy(layer).cpu()
            fresh.reset_parameters()
            layer.load_state_dict(fresh.state_dict())
