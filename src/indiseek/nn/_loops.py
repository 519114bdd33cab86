"""Training loops for step 1 (CLIP) and step 2 (modality-specific branches)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pandas as pd
import torch

from ._losses import gaussian_loglik, info_nce
from ._modules import ClipModule, SpecificBranch
from ._objectives import Objective, branch_terms
from ._train_utils import (
    Accumulator,
    EarlyStopper,
    TrainConfig,
    adam,
    batches,
    progress,
)


def _epoch_done(rows, row, bar, stopper: EarlyStopper, module, key: str) -> bool:
    """Record an epoch's row, update the progress bar; whether early stopping says stop."""
    rows.append(row)
    bar.set_postfix({key: f"{row[f'train_{key}']:.3f}"})
    bar.update()
    return stopper.step(row.get(f"val_{key}", math.inf), module, row["epoch"])


def _finish(rows: list[dict], stopper: EarlyStopper, module: torch.nn.Module) -> pd.DataFrame:
    """Restore the best weights (with early stopping), switch to eval mode, return the history."""
    stopper.restore(module)
    module.eval()
    return pd.DataFrame(rows)


def fit_clip(
    clip: ClipModule,
    x1: torch.Tensor,
    x2: torch.Tensor,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor | None,
    cfg: TrainConfig,
    epochs: int,
) -> pd.DataFrame:
    """Step 1: train both encoders with symmetric InfoNCE. Returns the per-epoch history."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = adam(list(clip.parameters()), cfg)
    stopper = EarlyStopper(
        cfg.clip_early_stopping and val_idx is not None and len(val_idx) > 1, cfg.clip_patience
    )
    rows = []
    with progress(epochs, "step 1 (CLIP)", cfg.progress_bar) as bar:
        for epoch in range(epochs):
            clip.train()
            acc = Accumulator()
            for b1, b2 in gathered_batches([x1, x2], train_idx, cfg, gen):
                c1, c2 = clip(b1, b2)
                loss = info_nce(c1, c2, clip.temperature)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                acc.add({"infonce": loss})
            row = {
                "epoch": epoch,
                **acc.means("train_"),
                "temperature": float(clip.temperature.detach()),
            }
            if val_idx is not None and len(val_idx) > 1:
                row.update(_clip_validation(clip, x1, x2, val_idx, cfg.batch_size))
            if _epoch_done(rows, row, bar, stopper, clip, "infonce"):
                break
    return _finish(rows, stopper, clip)


@torch.no_grad()
def _clip_validation(clip, x1, x2, val_idx, batch_size) -> dict[str, float]:
    clip.eval()
    vals = []
    for start in range(0, len(val_idx) - 1, batch_size):
        idx = val_idx[start : start + batch_size]
        if len(idx) < 2:
            continue
        c1, c2 = clip(x1[idx], x2[idx])
        vals.append(info_nce(c1, c2, clip.temperature))
    return {"val_infonce": float(torch.stack(vals).mean())}


@dataclass
class BranchData:
    """Tensors one branch trains on: its modality X, its own C and the C its CLUB critic sees."""

    x: torch.Tensor
    c_own: torch.Tensor
    c_club: torch.Tensor
    x_sq: float  # E‖X‖² over training cells: makes the reconstruction term scale-free


def select(data: Mapping[str, BranchData], idx: torch.Tensor) -> dict[str, BranchData]:
    """Every branch's data on the cells ``idx``."""
    return _as_branches(data, gather(_flat(data), idx))


def _flat(data: Mapping[str, BranchData]) -> list[torch.Tensor]:
    """Every branch's X, then every C_own, then every C_club (as :func:`_as_branches` reads)."""
    return [getattr(d, f) for f in ("x", "c_own", "c_club") for d in data.values()]


def _as_branches(
    data: Mapping[str, BranchData], parts: list[torch.Tensor]
) -> dict[str, BranchData]:
    k = len(data)
    return {
        name: BranchData(parts[i], parts[k + i], parts[2 * k + i], d.x_sq)
        for i, (name, d) in enumerate(data.items())
    }


def gather(tensors: list[torch.Tensor], idx: torch.Tensor) -> list[torch.Tensor]:
    """``[t[idx] for t in tensors]``, indexing a tensor that appears twice only once."""
    rows: dict[int, torch.Tensor] = {}
    for t in tensors:
        if id(t) not in rows:
            rows[id(t)] = t[idx]
    return [rows[id(t)] for t in tensors]


def gathered_batches(
    tensors: list[torch.Tensor],
    train_idx: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    chunk_rows: int = 4096,
) -> Iterator[list[torch.Tensor]]:
    """The batches of :func:`batches` (same random draw, same cells), as rows of ``tensors``.

    Rows are gathered for several batches at a time (about ``chunk_rows`` rows: 32 batches of
    128) and each batch is a slice (a view) of them: on a CPU one indexing call costs tens of
    microseconds, a large share of a training step of these small networks.
    """
    cells = torch.cat(list(batches(len(train_idx), cfg.batch_size, gen, train_idx.device)))
    n_batches = max(len(train_idx) // cfg.batch_size, 1)
    size = len(cells) // n_batches
    chunk = max(1, chunk_rows // max(size, 1))
    for first in range(0, n_batches, chunk):
        last = min(first + chunk, n_batches)
        block = gather(tensors, train_idx[cells[first * size : last * size]])
        for b in range(last - first):
            yield [t[b * size : (b + 1) * size] for t in block]


def _branch_batches(data, train_idx, cfg, gen) -> Iterator[dict[str, BranchData]]:
    for parts in gathered_batches(_flat(data), train_idx, cfg, gen):
        yield _as_branches(data, parts)


def _batch_terms(branches, batch, objective, lam, club_weight, z, q_out):
    """Every branch's loss terms on one batch (prefixed by branch name) and their summed loss."""
    total = 0.0
    terms: dict[str, torch.Tensor] = {}
    for name, br in branches.items():
        q = None if q_out is None else q_out[name]
        d = batch[name]
        t = branch_terms(
            br,
            objective,
            d.x,
            d.c_own,
            d.c_club,
            lam,
            d.x_sq,
            club_weight=club_weight,
            z=z[name],
            q_out=q,
        )
        total = total + t["loss"]
        terms.update({f"{name}_{k}": v for k, v in t.items()})
    terms["loss"] = total
    return total, terms


def _q_terms(branches, batch, z_cache=None):
    """Every branch's q log-likelihood of detached z, its loss (to minimise) and q's outputs.

    The outputs are returned detached: the main loss of the same batch reuses them instead of
    running q again, i.e. it sees q as it was before this batch's q update.
    """
    terms = {}
    outputs = {}
    loss = 0.0
    for name, br in branches.items():
        d = batch[name]
        if z_cache is not None:
            z = z_cache[name].detach()
        else:
            with torch.no_grad():
                z = br.encoder(d.x)
        mu, logvar = br.q(d.c_club)
        ll = gaussian_loglik(z, mu, logvar).mean()
        terms[f"{name}_q_loglik"] = ll
        outputs[name] = (mu.detach(), logvar.detach())
        loss = loss - ll
    return loss, terms, outputs


def _q_step(branches, batch, opt, z_cache=None):
    """One maximum-likelihood step of every branch's q alone (the main weights have no
    gradient, so the optimiser leaves them as they are)."""
    loss, terms, outputs = _q_terms(branches, batch, z_cache)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return terms, outputs


def fit_specific_branches(
    branches: Mapping[str, SpecificBranch],
    data: Mapping[str, BranchData],
    objective: Objective,
    lam: float,
    train_idx: torch.Tensor,
    val_idx: torch.Tensor | None,
    cfg: TrainConfig,
    epochs: int,
    club_weight: float = 1.0,
) -> pd.DataFrame:
    """Step 2: train each modality's branch with C fixed. Returns the per-epoch history.

    Branches have disjoint parameters, so summing their losses and taking one optimiser step
    trains each exactly as if alone, at half the Python overhead. For the same reason q's last
    maximum-likelihood step before a main step shares its backward pass and optimiser step:
    q's loss reaches only q (z is detached), the main loss never reaches q (its outputs are
    detached), and Adam's state is per weight.
    """
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    modules = torch.nn.ModuleDict(dict(branches))
    opt = adam(list(modules.parameters()), cfg)
    has_val = val_idx is not None and len(val_idx) > 1
    stopper = EarlyStopper(cfg.early_stopping and has_val, cfg.patience)
    rows = []
    with progress(epochs, f"step 2 ({objective.name})", cfg.progress_bar) as bar:
        for epoch in range(epochs):
            modules.train()
            acc = Accumulator()
            if cfg.q_schedule == "epoch":
                for _ in range(cfg.q_epochs):
                    for batch in _branch_batches(data, train_idx, cfg, gen):
                        acc.add(_q_step(branches, batch, opt)[0])
            for batch in _branch_batches(data, train_idx, cfg, gen):
                z_cache = {name: br.encoder(batch[name].x) for name, br in branches.items()}
                q_out, q_loss = None, 0.0
                if cfg.q_schedule == "interleaved":
                    for _ in range(cfg.q_steps - 1):
                        acc.add(_q_step(branches, batch, opt, z_cache)[0])
                    q_loss, q_terms, q_out = _q_terms(branches, batch, z_cache)
                    acc.add(q_terms)
                total, batch_terms = _batch_terms(
                    branches, batch, objective, lam, club_weight, z_cache, q_out
                )
                opt.zero_grad(set_to_none=True)
                (total + q_loss).backward()
                opt.step()
                acc.add(batch_terms)
            row = {"epoch": epoch, **acc.means("train_")}
            if has_val:
                row.update(
                    evaluate_branches(branches, data, val_idx, objective, lam, club_weight, "val_")
                )
            if _epoch_done(rows, row, bar, stopper, modules, "loss"):
                break
    return _finish(rows, stopper, modules)


@torch.no_grad()
def evaluate_branches(
    branches: Mapping[str, SpecificBranch],
    data: Mapping[str, BranchData],
    idx: torch.Tensor,
    objective: Objective,
    lam: float,
    club_weight: float = 1.0,
    prefix: str = "",
) -> dict[str, float]:
    """Loss terms on a set of cells in one pass (CLUB over all pairs of the set)."""
    for br in branches.values():
        br.eval()
    batch = select(data, idx)
    z = {name: br.encoder(batch[name].x) for name, br in branches.items()}
    q_out = {name: br.q(batch[name].c_club) for name, br in branches.items()}
    _, out = _batch_terms(branches, batch, objective, lam, club_weight, z, q_out)
    for name in branches:
        out[f"{name}_q_loglik"] = gaussian_loglik(z[name], *q_out[name]).mean()
    keys = list(out)
    values = torch.stack([out[k].float().reshape(()) for k in keys]).cpu().numpy()
    return {f"{prefix}{k}": float(v) for k, v in zip(keys, values, strict=True)}
