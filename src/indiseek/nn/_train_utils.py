"""Training utilities: settings, batching, optimisers, loss accumulation, early stopping.

Data live on the training device for the whole run; a batch is an index slice of a
permutation. Losses are accumulated as tensors and read back once per epoch, so the step
loop has no host↔device synchronisation.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

#: Updates per training step (CLIP, then step 2) by default. 4,000 (indiseek 0.1) left Z
#: unfinished on bone-marrow-like data: θ-suite row "short" in benchmarks/README.md.
TARGET_UPDATES = 12000
MIN_EPOCHS, MAX_EPOCHS = 20, 500


def default_epochs(n_train: int, batch_size: int, target: int = TARGET_UPDATES) -> int:
    """Epochs giving about ``target`` updates (default 12,000), within [20, 500].

    On atlases the floor of 20 epochs gives way to about twice ``target`` updates (e.g. 7
    epochs of 500,000 training cells): training time stops growing with the number of cells. Below ~77,000 training cells (batch 128) the floor never binds this way.
    """
    steps = max(n_train // batch_size, 1)
    floor = min(MIN_EPOCHS, max(math.ceil(2 * target / steps), 1))
    return int(min(max(math.ceil(target / steps), floor), MAX_EPOCHS))


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
    cuda_graphs
        On a CUDA GPU, replay each batched training step from a captured CUDA graph (the
        small networks are launch-bound there).
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
    cuda_graphs: bool = True

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def pick(cls, values: Mapping[str, object], **overrides: object) -> TrainConfig:
        """A config from the entries of ``values`` named like its fields (e.g. a function's
        ``locals()``), with ``overrides`` on top; validated."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in {**values, **overrides}.items() if k in names})

    def validate(self) -> None:
        if self.max_epochs is not None:
            check_int("max_epochs", self.max_epochs, 1, "or None")
        check_int("batch_size", self.batch_size, 2)
        if not (_is_number(self.lr) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}.")
        if not (_is_number(self.weight_decay) and 0 <= self.weight_decay < math.inf):
            raise ValueError(f"weight_decay must be a number >= 0, got {self.weight_decay!r}.")
        if self.q_schedule not in ("interleaved", "epoch"):
            raise ValueError(
                f"q_schedule must be 'interleaved' or 'epoch', got {self.q_schedule!r}."
            )
        for name in ("q_steps", "q_epochs", "patience", "clip_patience"):
            check_int(name, getattr(self, name), 1)
        check_int("seed", self.seed, 0)
        for name in ("early_stopping", "clip_early_stopping", "cuda_graphs"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if self.cpu_threads is not None:
            check_int("n_threads", self.cpu_threads, 1, "or None")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(name: str, value: object, minimum: int, extra: str = "") -> None:
    """``value`` must be a whole number >= ``minimum`` (an error names ``name`` otherwise)."""
    ok = _is_number(value) and math.isfinite(value) and int(value) == value and value >= minimum
    if not ok:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}{' ' + extra if extra else ''}, got {value!r}.")


def adam(
    params: list[torch.nn.Parameter], cfg: TrainConfig, capturable: bool = False
) -> torch.optim.Adam:
    # The fused kernel saves a third of a step's time on these small networks; a CUDA graph
    # needs the step count kept on the device (capturable).
    device = params[0].device
    fused = device.type in ("cpu", "cuda")
    extra = {"capturable": True} if capturable and device.type == "cuda" else {}
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused, **extra)


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


def batches(
    n: int, batch_size: int, gen: torch.Generator, device: torch.device
) -> Iterator[torch.Tensor]:
    perm = torch.randperm(n, generator=gen, device="cpu").to(device)
    # Drop the ragged last batch: a handful of cells gives a poor InfoNCE/CLUB estimate.
    n_batches = max(n // batch_size, 1)
    size = batch_size if n >= batch_size else n
    for b in range(n_batches):
        yield perm[b * size : (b + 1) * size]


def progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, unit="epoch", leave=True)


class Accumulator:
    """Sums tensors over batches without synchronising; read once per epoch.

    The terms of one call are stacked and summed as one vector (in float32, as before): one
    addition per call instead of one per term, which matters at a few milliseconds per step.
    """

    def __init__(self) -> None:
        self.sums: dict[tuple[str, ...], torch.Tensor] = {}
        self.counts: dict[tuple[str, ...], int] = {}

    def add(self, terms: Mapping[str, torch.Tensor]) -> None:
        # q steps and main steps report different terms at different rates: count per key set.
        keys = tuple(terms)
        if not keys:
            return
        v = torch.stack([t.detach().reshape(()) for t in terms.values()]).float()
        self.sums[keys] = self.sums[keys] + v if keys in self.sums else v
        self.counts[keys] = self.counts.get(keys, 0) + 1

    def means(self, prefix: str) -> dict[str, float]:
        if not self.sums:
            return {}
        groups = list(self.sums)
        values = torch.cat([self.sums[g] for g in groups]).cpu().numpy()
        # a key reported in several key sets (none today) sums its float32 partial sums in
        # float64 here; within one key set the running float32 sums are the old per-key ones
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for key, v in zip([k for g in groups for k in g], values, strict=True):
            sums[key] = sums.get(key, 0.0) + float(v)
        for g in groups:
            for key in g:
                counts[key] = counts.get(key, 0) + self.counts[g]
        return {f"{prefix}{k}": sums[k] / counts[k] for k in sums}


class EarlyStopper:
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


def to_tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 tensor on ``device``."""
    return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)
