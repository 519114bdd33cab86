"""Where the model runs: CPU, CUDA or Apple MPS."""

from __future__ import annotations

import torch


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
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"Unsupported accelerator {accelerator!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        )
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
