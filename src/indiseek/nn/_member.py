"""Training one model of an ensemble (step 1, then step 2) from a self-contained job.

A :class:`MemberJob` holds everything one member needs (its initialised module, data and
settings) and pickles, so whoever runs members (in this process or in workers) hands jobs to
:func:`train_member` and collects :class:`MemberResult`.
"""

from __future__ import annotations

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


#: A dimension of Z is dead when its spread over the training cells is below this share of its
#: size (``|mean| + sd``): the encoder units feeding it no longer respond to X.
DEAD_Z_RATIO = 1e-3
#: At most this many training cells (evenly spaced) are encoded to check Z for collapse.
COLLAPSE_CHECK_CELLS = 20_000


@torch.no_grad()
def collapsed_branches(
    module: IndiSeekModule, x: dict[str, torch.Tensor], idx: np.ndarray
) -> list[str]:
    """Modalities whose Z is constant over the cells ``idx`` (every dimension dead).

    A large CLUB gradient can push every unit of a Z encoder below zero for all cells
    (ReLUs that never fire again): Z is then the last layer's bias, the CLUB estimate is
    exactly 0 and the decoder reconstructs from C alone — a stable point of the objective
    that training does not leave, and a Z that carries nothing for θ.
    """
    idx = np.asarray(idx)
    idx = idx[:: max(1, len(idx) // COLLAPSE_CHECK_CELLS)]
    if len(idx) < 2:
        return []
    was_training = module.training
    module.eval()
    out = []
    for name, branch in module.branches.items():
        rows = torch.as_tensor(idx, device=x[name].device)
        z = branch.encoder(x[name][rows]).double()
        sd = z.std(dim=0, unbiased=False)
        if bool((sd <= DEAD_Z_RATIO * (z.mean(dim=0).abs() + sd)).all()):
            out.append(name)
    module.train(was_training)
    return out


def reinitialise_branches(module: IndiSeekModule, seed: int) -> None:
    """Fresh step-2 weights for ``module`` (its step 1 is kept), drawn on the CPU from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in module.branches.modules():
            if hasattr(layer, "reset_parameters"):
                fresh = copy.deepcopy(layer).cpu()
                fresh.reset_parameters()
                layer.load_state_dict(fresh.state_dict())
