"""Training loops for step 1 (CLIP) and step 2 (modality-specific branches).

Data live on the training device for the whole run; a batch is an index slice of a
permutation. Losses are accumulated as tensors and read back once per epoch, so the step
loop has no host↔device synchronisation.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ._losses import gaussian_loglik, info_nce
from ._modules import ClipModule, SpecificBranch
from ._objectives import Objective, branch_terms

#: Step-2 updates per modality after which the θ read-out was seen to settle (DESIGN.md §1).
TARGET_UPDATES = 4000
MIN_EPOCHS, MAX_EPOCHS = 20, 500


def resolve_device(accelerator: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → cuda, then mps, then cpu; also ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``."""
    if isinstance(accelerator, torch.device):
        return accelerator
    acc = str(accelerator).lower()
    if acc == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if acc == "gpu":
        acc = "cuda"
    try:
        device = torch.device(acc)
    except RuntimeError as err:
        raise ValueError(
            f"Unknown accelerator {accelerator!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"accelerator={accelerator!r} but torch sees no CUDA device.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"accelerator={accelerator!r} but only {torch.cuda.device_count()} CUDA device(s) exist."
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"accelerator={accelerator!r} but MPS is not available.")
    return device


def default_epochs(n_train: int, batch_size: int) -> int:
    """Epochs giving about :data:`TARGET_UPDATES` updates, within [20, 500]."""
    steps = max(n_train // batch_size, 1)
    return int(min(max(math.ceil(TARGET_UPDATES / steps), MIN_EPOCHS), MAX_EPOCHS))


@dataclass
class TrainConfig:
    """Settings shared by both training steps.

    Attributes
    ----------
    max_epochs
        Epochs per step (``None``: :func:`default_epochs`).
    batch_size
        Cells per batch.
    lr
        Adam learning rate (encoders, decoders, critics and q alike).
    weight_decay
        Adam weight decay.
    q_schedule
        ``"interleaved"``: ``q_steps`` maximum-likelihood steps for q before each main step
        (stable; default). ``"epoch"``: q refitted for ``q_epochs`` full passes before each
        epoch of main steps with q frozen (the paper's schedule).
    q_steps, q_epochs
        See ``q_schedule``.
    early_stopping
        Stop when the validation loss has not improved for ``patience`` epochs and restore the
        best weights (needs validation cells).
    patience
        See ``early_stopping``.
    progress_bar
        Show a tqdm progress bar over epochs.
    seed
        Seed for initialisation and batch order.
    clip_early_stopping, clip_patience
        Early stopping for step 1 on the validation InfoNCE (default on: CLIP encoders memorise
        small training sets, and the validation loss then rises while the training loss falls).
    cpu_threads
        torch CPU threads while training on the CPU (``None``: leave torch's setting). One
        is fastest for the paper's small networks; raise it for wide ones.
    """

    max_epochs: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    q_schedule: Literal["interleaved", "epoch"] = "interleaved"
    q_steps: int = 1
    q_epochs: int = 5
    early_stopping: bool = False
    patience: int = 20
    progress_bar: bool = True
    seed: int = 0
    cpu_threads: int | None = 1
    clip_early_stopping: bool = True
    clip_patience: int = 10

    def validate(self) -> None:
        if self.max_epochs is not None and (
            int(self.max_epochs) != self.max_epochs or self.max_epochs < 1
        ):
            raise ValueError(
                f"max_epochs must be a positive integer or None, got {self.max_epochs!r}."
            )
        if int(self.batch_size) != self.batch_size or self.batch_size < 2:
            raise ValueError(f"batch_size must be an integer >= 2, got {self.batch_size!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if self.q_schedule not in ("interleaved", "epoch"):
            raise ValueError(
                f"q_schedule must be 'interleaved' or 'epoch', got {self.q_schedule!r}."
            )
        if self.q_steps < 1 or self.q_epochs < 1:
            raise ValueError("q_steps and q_epochs must be >= 1.")


def _adam(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Adam:
    # The fused kernel saves a third of a step's time on these small networks.
    device = params[0].device
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


@contextlib.contextmanager
def cpu_threads(device: torch.device, n_threads: int | None):
    """Temporarily set torch's CPU thread count (restored afterwards).

    Batches of 128 through layers of width 50–100 are too small to split across cores: on
    2 cores one thread trains about 1.8x faster than two (measured on the paper's networks).
    """
    if device.type != "cpu" or n_threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(int(n_threads), 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batches(
    n: int, batch_size: int, gen: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=gen, device="cpu").to(device)
    # Drop the ragged last batch: a handful of cells gives a poor InfoNCE/CLUB estimate.
    n_batches = max(n // batch_size, 1)
    size = batch_size if n >= batch_size else n
    for b in range(n_batches):
        yield perm[b * size : (b + 1) * size]


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="epoch", leave=True)


class _Accumulator:
    """Sums tensors over batches without synchronising; read once per epoch."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, terms: Mapping[str, torch.Tensor]) -> None:
        # q steps and main steps report different terms at different rates: count per key.
        for k, v in terms.items():
            v = v.detach().float().reshape(())
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self, prefix: str) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = torch.stack([self.sums[k] for k in keys]).cpu().numpy()
        return {
            f"{prefix}{k}": float(v) / self.counts[k] for k, v in zip(keys, values, strict=True)
        }


class _EarlyStopper:
    def __init__(self, enabled: bool, patience: int) -> None:
        self.enabled, self.patience = enabled, patience
        self.best = math.inf
        self.best_state: dict | None = None
        self.best_epoch = -1
        self.bad = 0

    def step(self, value: float, module: torch.nn.Module, epoch: int) -> bool:
        if not self.enabled:
            return False
        if not math.isfinite(self.best) or value < self.best - 1e-4 * abs(self.best):
            self.best, self.best_epoch, self.bad = value, epoch, 0
            self.best_state = copy.deepcopy(module.state_dict())
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        if self.enabled and self.best_state is not None:
            module.load_state_dict(self.best_state)


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
    device = x1.device
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = _adam(list(clip.parameters()), cfg)
    stopper = _EarlyStopper(
        cfg.clip_early_stopping and val_idx is not None and len(val_idx) > 1, cfg.clip_patience
    )
    rows = []
    n = len(train_idx)
    with _progress(epochs, "step 1 (CLIP)", cfg.progress_bar) as bar:
        for epoch in range(epochs):
            clip.train()
            acc = _Accumulator()
            for b in _batches(n, cfg.batch_size, gen, device):
                idx = train_idx[b]
                c1, c2 = clip(x1[idx], x2[idx])
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
            rows.append(row)
            bar.set_postfix(infonce=f"{row['train_infonce']:.3f}")
            bar.update()
            if stopper.step(row.get("val_infonce", math.inf), clip, epoch):
                break
    stopper.restore(clip)
    clip.eval()
    return pd.DataFrame(rows)


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


def _terms_on(
    branch: SpecificBranch,
    d: BranchData,
    idx: torch.Tensor,
    objective: Objective,
    lam: float,
    club_weight: float,
    z: torch.Tensor,
    q_out: tuple[torch.Tensor, torch.Tensor] | None,
) -> dict[str, torch.Tensor]:
    """:func:`branch_terms` on the cells ``idx`` of one branch's data."""
    return branch_terms(
        branch,
        objective,
        d.x[idx],
        d.c_own[idx],
        d.c_club[idx],
        lam,
        d.x_sq,
        club_weight=club_weight,
        z=z,
        q_out=q_out,
    )


def _q_step(branches, data, idx, opt_q, z_cache=None):
    """One maximum-likelihood step of every branch's q on detached z.

    Returns the log-likelihoods and q's outputs from before the step (detached): the main step
    reuses them instead of running q again, i.e. it sees q one update stale.
    """
    terms = {}
    outputs = {}
    loss = 0.0
    for name, br in branches.items():
        d = data[name]
        if z_cache is not None:
            z = z_cache[name].detach()
        else:
            with torch.no_grad():
                z = br.encoder(d.x[idx])
        mu, logvar = br.q(d.c_club[idx])
        ll = gaussian_loglik(z, mu, logvar).mean()
        terms[f"{name}_q_loglik"] = ll
        outputs[name] = (mu.detach(), logvar.detach())
        loss = loss - ll
    opt_q.zero_grad(set_to_none=True)
    loss.backward()
    opt_q.step()
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
    trains each exactly as if alone, at half the Python overhead.
    """
    device = next(iter(data.values())).x.device
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    modules = torch.nn.ModuleDict(dict(branches))
    main_params = [p for br in branches.values() for p in br.main_parameters()]
    q_params = [p for br in branches.values() for p in br.q.parameters()]
    opt = _adam(main_params, cfg)
    opt_q = _adam(q_params, cfg)
    has_val = val_idx is not None and len(val_idx) > 1
    stopper = _EarlyStopper(cfg.early_stopping and has_val, cfg.patience)
    n = len(train_idx)
    rows = []
    with _progress(epochs, f"step 2 ({objective.name})", cfg.progress_bar) as bar:
        for epoch in range(epochs):
            modules.train()
            acc = _Accumulator()
            if cfg.q_schedule == "epoch":
                for _ in range(cfg.q_epochs):
                    for b in _batches(n, cfg.batch_size, gen, device):
                        acc.add(_q_step(branches, data, train_idx[b], opt_q)[0])
            for b in _batches(n, cfg.batch_size, gen, device):
                idx = train_idx[b]
                z_cache = {name: br.encoder(data[name].x[idx]) for name, br in branches.items()}
                q_out = None
                if cfg.q_schedule == "interleaved":
                    for _ in range(cfg.q_steps):
                        q_terms, q_out = _q_step(branches, data, idx, opt_q, z_cache)
                        acc.add(q_terms)
                total = 0.0
                batch_terms = {}
                for name, br in branches.items():
                    t = _terms_on(
                        br,
                        data[name],
                        idx,
                        objective,
                        lam,
                        club_weight,
                        z_cache[name],
                        None if q_out is None else q_out[name],
                    )
                    total = total + t["loss"]
                    batch_terms.update({f"{name}_{k}": v for k, v in t.items()})
                opt.zero_grad(set_to_none=True)
                total.backward()
                opt.step()
                batch_terms["loss"] = total
                acc.add(batch_terms)
            row = {"epoch": epoch, **acc.means("train_")}
            if has_val:
                row.update(
                    evaluate_branches(branches, data, objective, lam, val_idx, club_weight, "val_")
                )
            rows.append(row)
            bar.set_postfix(loss=f"{row['train_loss']:.3f}")
            bar.update()
            if stopper.step(row.get("val_loss", math.inf), modules, epoch):
                break
    stopper.restore(modules)
    modules.eval()
    return pd.DataFrame(rows)


@torch.no_grad()
def evaluate_branches(
    branches: Mapping[str, SpecificBranch],
    data: Mapping[str, BranchData],
    objective: Objective,
    lam: float,
    idx: torch.Tensor,
    club_weight: float = 1.0,
    prefix: str = "",
) -> dict[str, float]:
    """Loss terms on a set of cells in one pass (CLUB over all pairs of the set)."""
    out: dict[str, torch.Tensor] = {}
    total = 0.0
    for name, br in branches.items():
        br.eval()
        d = data[name]
        z = br.encoder(d.x[idx])
        mu, logvar = br.q(d.c_club[idx])
        t = _terms_on(br, d, idx, objective, lam, club_weight, z, (mu, logvar))
        t["q_loglik"] = gaussian_loglik(z, mu, logvar).mean()
        total = total + t["loss"]
        out.update({f"{name}_{k}": v for k, v in t.items()})
    out["loss"] = total
    keys = list(out)
    values = torch.stack([out[k].float().reshape(()) for k in keys]).cpu().numpy()
    return {f"{prefix}{k}": float(v) for k, v in zip(keys, values, strict=True)}


def to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 tensor on ``device``."""
    return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
