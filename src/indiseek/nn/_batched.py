"""Every member of an ensemble trained at once, as one batched model (``torch.func``).

The members' weights are stacked along a leading member axis and one ``vmap``-ed step
updates all of them: the same per-member maths as :func:`~indiseek.nn.train_member` (own
initialisation, batch order, validation cells, early stopping, Adam state), in one stream of
larger kernels instead of one stream per member. Adam is elementwise, so one optimiser over
stacked weights is each member's own optimiser. Results agree with the sequential path up to
float summation order.

Each epoch the stacked weights are copied into the members' own modules, so validation,
early stopping and the returned weights reuse the sequential code unchanged.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence

import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ._graphs import GraphedStep
from ._loops import BranchData, _clip_validation, _finish, evaluate_branches
from ._losses import gaussian_loglik, info_nce
from ._member import MemberJob, MemberResult, _branch_data
from ._objectives import Objective, branch_terms, get_objective
from ._train_utils import EarlyStopper, adam, cpu_threads, progress


def can_batch(jobs: Sequence[MemberJob]) -> bool:
    """Whether these jobs can train as one batched model (else: one after another).

    Needs members that differ only in weights, seed and cells (same data, objective, λ, CLUB
    weight, epochs and settings; as many full training batches per epoch, and all or none with
    validation cells — cross-fit folds may differ by a few cells), the default
    step-2 schedule (one interleaved q step), no batch-standardised Z (BatchNorm's running
    statistics do not vmap), objectives without InfoNCE critics, and no reused step 1.
    """
    return not why_not_batched(jobs)


def why_not_batched(jobs: Sequence[MemberJob]) -> str:
    """The reason :func:`can_batch` says no ('' when it says yes)."""
    if len(jobs) < 2:
        return "a single member"
    first = jobs[0]
    objective = get_objective(first.objective)
    same = ("objective", "lam", "club_weight", "epochs", "clip_epochs", "x_sq")
    bs = first.cfg.batch_size
    for j in jobs[1:]:
        # members may differ by a few cells (cross-fit folds): each epoch's batches must match
        # (checked first: the default number of epochs follows from it)
        if _n_batches(len(j.train_idx), bs) != _n_batches(len(first.train_idx), bs):
            return "members with different numbers of training batches per epoch"
        if (len(j.val_idx) > 1) != (len(first.val_idx) > 1):
            return "members with and without validation cells"
        if j.x is not first.x or any(getattr(j, a) != getattr(first, a) for a in same):
            return "members with different data or settings"
        if dataclasses.replace(j.cfg, seed=first.cfg.seed) != first.cfg:
            return "members with different training settings"
    if any(isinstance(m, nn.BatchNorm1d) for m in first.module.modules()):
        return "normalize_z=True (batch standardisation)"
    if objective.uses_critics:
        return f"objective {objective.name!r} (InfoNCE critics)"
    if first.cfg.q_schedule != "interleaved" or first.cfg.q_steps != 1:
        return "a q schedule other than one interleaved step"
    if any(j.clip_state is not None for j in jobs):
        return "clip_from (a reused step 1)"
    return ""


class _Stacked:
    """The members' parameters of one sub-module, stacked, with a stateless copy to call."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        params, buffers = stack_module_state(list(modules))
        self.params: dict[str, torch.Tensor] = params
        self.buffers: dict[str, torch.Tensor] = buffers
        self.base = copy.deepcopy(modules[0]).to("meta")
        self.modules = list(modules)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy each member's slice of the stacked weights into its own module."""
        for m, module in enumerate(self.modules):
            own = dict(module.named_parameters())
            for name, p in self.params.items():
                own[name].copy_(p[m])


def _perms(gens, ns: Sequence[int], used: int, device) -> torch.Tensor:
    # the permutation each member draws in the sequential path (batches()), cut to the cells
    # its full batches use (the ragged rest is dropped there too)
    draws = zip(gens, ns, strict=True)
    perms = [torch.randperm(n, generator=g, device="cpu")[:used] for g, n in draws]
    return torch.stack(perms).to(device)


def _n_batches(n: int, batch_size: int) -> tuple[int, int]:
    return max(n // batch_size, 1), (batch_size if n >= batch_size else n)


class _MemberLog:
    """Each member's epoch rows and early stopping, and which members still run."""

    def __init__(self, modules: Sequence[nn.Module], enabled: bool, patience: int, val_key: str):
        self.modules, self.val_key = list(modules), val_key
        self.stoppers = [EarlyStopper(enabled, patience) for _ in self.modules]
        self.active = [True] * len(self.modules)
        self.rows: list[list[dict]] = [[] for _ in self.modules]

    def end_epoch(self, epoch: int, train_rows, validate, bar, postfix: dict) -> bool:
        """Record the still-running members' rows; whether any member goes on."""
        for m, module in enumerate(self.modules):
            if not self.active[m]:
                continue
            row = {"epoch": epoch, **train_rows[m], **validate(m, module)}
            self.rows[m].append(row)
            if self.stoppers[m].step(row.get(self.val_key, float("inf")), module, epoch):
                self.active[m] = False
        bar.set_postfix(postfix)
        bar.update()
        return any(self.active)

    def finish(self) -> list:
        """Histories; a member that stopped early gets its best weights back (as one by one)."""
        return [
            _finish(r, st, mod)
            for r, st, mod in zip(self.rows, self.stoppers, self.modules, strict=True)
        ]


class _ClipLoss(nn.Module):
    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, x1, x2):
        c1, c2 = self.clip(x1, x2)
        return info_nce(c1, c2, self.clip.temperature), self.clip.temperature


def fit_clip_batched(jobs: Sequence[MemberJob], names, tr, va, bar_enabled: bool):
    """Step 1 of every member at once; returns the per-member histories.

    ``tr``: each member's training cells as rows, padded to equal length (the padding is never
    drawn); ``va``: each member's validation cells, or None.
    """
    a, b = names
    cfg0 = jobs[0].cfg
    x1, x2 = jobs[0].x[a], jobs[0].x[b]
    device = x1.device
    clips = [j.module.clip for j in jobs]
    wrappers = [_ClipLoss(c) for c in clips]

    def validate(m, clip):
        return _clip_validation(clip, x1, x2, va[m], cfg0.batch_size) if has_val else {}

    st = _Stacked(wrappers)
    opt = adam(list(st.params.values()), cfg0, capturable=cfg0.cuda_graphs)
    gens = [torch.Generator().manual_seed(j.cfg.seed) for j in jobs]
    has_val = va is not None
    log = _MemberLog(clips, cfg0.clip_early_stopping and has_val, cfg0.clip_patience, "val_infonce")

    def loss_one(p, bufs, idx):
        return functional_call(st.base, (p, bufs), (x1[idx], x2[idx]))

    step = vmap(loss_one, in_dims=(0, 0, 0))

    def train_step(idx):
        losses, _ = step(st.params, st.buffers, idx)
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        return losses.detach()

    run = GraphedStep(train_step, device, cfg0.cuda_graphs)
    ns = [len(j.train_idx) for j in jobs]
    nb, size = _n_batches(ns[0], cfg0.batch_size)
    epochs = jobs[0].clip_epochs
    with progress(epochs, f"step 1 (CLIP, {len(jobs)} members batched)", bar_enabled) as bar:
        for epoch in range(epochs):
            perm = _perms(gens, ns, nb * size, device)
            total = torch.zeros(len(jobs), device=device, dtype=x1.dtype)
            for i in range(nb):
                idx = torch.gather(tr, 1, perm[:, i * size : (i + 1) * size])
                total += run(idx)
            means = (total / nb).cpu().tolist()
            st.write_back()

            train_rows = [
                {"train_infonce": v, "temperature": float(c.temperature.detach())}
                for v, c in zip(means, clips, strict=True)
            ]
            postfix = {"infonce": f"{sum(means) / len(means):.3f}"}
            if not log.end_epoch(epoch, train_rows, validate, bar, postfix):
                break
    st.write_back()
    return log.finish()


class _Step2Loss(nn.Module):
    """Both branches' loss terms for one member's batch; q's and the encoders' losses apart."""

    def __init__(self, branches: nn.ModuleDict, objective: Objective, lam, club_weight, x_sq):
        super().__init__()
        self.branches = branches
        self.objective, self.lam, self.club_weight, self.x_sq = objective, lam, club_weight, x_sq

    def forward(self, xs, c_own, c_club):
        main = 0.0
        q_loss = 0.0
        terms = {}
        q_out, zs = {}, {}
        for name, br in self.branches.items():  # q's terms first, as in the sequential path
            zs[name] = br.encoder(xs[name])
            mu, logvar = br.q(c_club[name])
            ll = gaussian_loglik(zs[name].detach(), mu, logvar).mean()
            q_loss = q_loss - ll
            terms[f"{name}_q_loglik"] = ll.detach()
            q_out[name] = (mu.detach(), logvar.detach())
        for name, br in self.branches.items():
            t = branch_terms(
                br,
                self.objective,
                xs[name],
                c_own[name],
                c_club[name],
                self.lam,
                self.x_sq[name],
                club_weight=self.club_weight,
                z=zs[name],
                q_out=q_out[name],
            )
            main = main + t["loss"]
            terms.update({f"{name}_{k}": v.detach() for k, v in t.items()})
        terms["loss"] = main.detach()
        return main, q_loss, terms


def fit_specific_batched(
    jobs: Sequence[MemberJob],
    data: Sequence[dict[str, BranchData]],
    tr,
    va,
    bar_enabled: bool,
):
    """Step 2 of every member at once; returns the per-member histories."""
    job0 = jobs[0]
    cfg0 = job0.cfg
    objective = get_objective(job0.objective)
    names = list(job0.module.branches)
    device = data[0][names[0]].x.device
    x = {m: data[0][m].x for m in names}
    c_own = {m: torch.stack([d[m].c_own for d in data]) for m in names}
    c_club = {m: torch.stack([d[m].c_club for d in data]) for m in names}
    x_sq = {m: data[0][m].x_sq for m in names}
    wrappers = [_Step2Loss(j.module.branches, objective, j.lam, j.club_weight, x_sq) for j in jobs]
    st = _Stacked(wrappers)
    opt = adam(list(st.params.values()), cfg0, capturable=cfg0.cuda_graphs)
    gens = [torch.Generator().manual_seed(j.cfg.seed + 1) for j in jobs]
    has_val = va is not None
    branch_sets = [nn.ModuleDict(dict(j.module.branches)) for j in jobs]
    log = _MemberLog(branch_sets, cfg0.early_stopping and has_val, cfg0.patience, "val_loss")

    def validate(m, modules):
        if not has_val:
            return {}
        lam, cw = jobs[m].lam, jobs[m].club_weight
        return evaluate_branches(modules, data[m], va[m], objective, lam, cw, "val_")

    def loss_one(p, bufs, idx, co, cc):
        xs = {m: x[m][idx] for m in names}
        return functional_call(
            st.base, (p, bufs), (xs, {m: co[m][idx] for m in names}, {m: cc[m][idx] for m in names})
        )

    step = vmap(loss_one, in_dims=(0, 0, 0, 0, 0))
    keys: list[str] = []  # the loss terms' names, in the order of the step's output columns

    def train_step(idx):
        main, q_loss, terms = step(st.params, st.buffers, idx, c_own, c_club)
        opt.zero_grad(set_to_none=True)
        # q's loss reaches only q (z detached), the main loss never reaches q
        (main.sum() + q_loss.sum()).backward()
        opt.step()
        if not keys:
            keys.extend(terms)
        return torch.stack([terms[k] for k in keys], 1)

    run = GraphedStep(train_step, device, cfg0.cuda_graphs)
    ns = [len(j.train_idx) for j in jobs]
    nb, size = _n_batches(ns[0], cfg0.batch_size)
    epochs = job0.epochs
    with progress(
        epochs, f"step 2 ({objective.name}, {len(jobs)} members batched)", bar_enabled
    ) as bar:
        for epoch in range(epochs):
            perm = _perms(gens, ns, nb * size, device)
            total = None
            for i in range(nb):
                idx = torch.gather(tr, 1, perm[:, i * size : (i + 1) * size])
                out = run(idx)
                total = out.clone() if total is None else total + out
            means = (total / nb).cpu().numpy()
            st.write_back()

            train_rows = [
                {f"train_{k}": float(v) for k, v in zip(keys, r, strict=True)} for r in means
            ]
            postfix = {"loss": f"{float(means[:, keys.index('loss')].mean()):.3f}"}
            if not log.end_epoch(epoch, train_rows, validate, bar, postfix):
                break
    st.write_back()
    return log.finish()


def train_members_batched(jobs: Sequence[MemberJob]) -> list[MemberResult]:
    """Train the members of :func:`can_batch` jobs at once, in place; results in member order."""
    reason = why_not_batched(jobs)
    if reason:
        raise ValueError(f"These members cannot train batched: {reason}.")
    job0 = jobs[0]
    names = job0.module.names
    device = job0.x[names[0]].device
    n_max = max(len(j.train_idx) for j in jobs)
    tr = torch.stack(
        [F.pad(torch.as_tensor(j.train_idx), (0, n_max - len(j.train_idx))) for j in jobs]
    ).to(device)
    va = None
    if len(job0.val_idx) > 1:
        va = [torch.as_tensor(j.val_idx).to(device) for j in jobs]
    bar = job0.cfg.progress_bar
    t0 = time.perf_counter()
    with cpu_threads(device, job0.cfg.cpu_threads):
        hist1 = fit_clip_batched(jobs, names, tr, va, bar)
        t1 = time.perf_counter()
        hist2 = [pd.DataFrame() for _ in jobs]
        if len(job0.module.branches):
            data = []
            for j in jobs:
                with torch.no_grad():
                    c = j.module.shared(j.x)
                data.append(_branch_data(j, c))
            hist2 = fit_specific_batched(jobs, data, tr, va, bar)
    t2 = time.perf_counter()
    return [
        MemberResult(
            state=j.module.state_dict(),
            clip_history=hist1[m],
            specific_history=hist2[m],
            time_clip_s=t1 - t0,
            time_specific_s=t2 - t1,
        )
        for m, j in enumerate(jobs)
    ]
