"""Arrays in, arrays out: modality-specific features for any data with given shared features."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..nn import (
    BranchData,
    SpecificBranch,
    TrainConfig,
    cpu_threads,
    default_epochs,
    evaluate_branches,
    fit_specific_branches,
    get_objective,
    to_tensor,
)
from ..nn._train_utils import check_int

_CHUNK = 65536
ARRAYS_UPDATES = 4000


def _as_2d(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples × features), got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or infinite values.")
    return arr


def split_validation(n: int, validation_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation indices; ``validation_size`` is a fraction in [0, 1)."""
    if not 0 <= validation_size < 1:
        raise ValueError(f"validation_size must be in [0, 1), got {validation_size!r}.")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(validation_size * n)
    if n - n_val < 2:
        raise ValueError(f"Only {n - n_val} training samples remain after the validation split.")
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@torch.no_grad()
def encode_chunks(module: torch.nn.Module, x: np.ndarray, device: torch.device) -> np.ndarray:
    """Run ``module`` in eval mode on ``x`` in chunks; numpy out."""
    module.eval()
    outs = [
        module(to_tensor(x[i : i + _CHUNK], device)).cpu().numpy() for i in range(0, len(x), _CHUNK)
    ]
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


class SpecificFit:
    """A trained modality-specific encoder h and decoder g (from :func:`fit_specific`).

    Attributes
    ----------
    history
        Per-epoch training (and validation) losses.
    branch
        The torch module (encoder ``h``, decoder ``g``, CLUB critic ``q``).
    validation
        Loss terms on the held-out samples after training (when ``validation_size > 0``).
    """

    def __init__(
        self,
        branch: SpecificBranch,
        device: torch.device,
        history: pd.DataFrame,
        n_x: int,
        n_c: int,
        settings: dict,
    ) -> None:
        self.branch = branch
        self.device = device
        self.history = history
        self.n_x, self.n_c = n_x, n_c
        self.settings = settings
        self.validation: dict[str, float] = {}

    def _check(self, x, name: str, dim: int) -> np.ndarray:
        arr = _as_2d(x, name)
        if arr.shape[1] != dim:
            raise ValueError(f"{name} has {arr.shape[1]} features; the model was trained on {dim}.")
        return arr

    def transform(self, x) -> np.ndarray:
        """Modality-specific features Z = h(x), numpy (samples × n_specific).

        Parameters
        ----------
        x
            Samples × features, the same features as in training.

        Returns
        -------
        Z as a float32 array.

        Examples
        --------
        >>> z = fit.transform(x_new)  # doctest: +SKIP
        """
        return encode_chunks(self.branch.encoder, self._check(x, "x", self.n_x), self.device)

    def reconstruct(self, x, shared) -> np.ndarray:
        """Decoder output g(h(x), shared): what (Z, C) recover of x.

        Parameters
        ----------
        x
            Samples × features.
        shared
            Their shared features C.

        Returns
        -------
        The reconstruction, same shape as ``x``.

        Examples
        --------
        >>> x_hat = fit.reconstruct(x_new, c_new)  # doctest: +SKIP
        """
        x = self._check(x, "x", self.n_x)
        c = self._check(shared, "shared", self.n_c)
        if len(c) != len(x):
            raise ValueError(f"x has {len(x)} samples but shared has {len(c)}.")
        z = self.transform(x)
        return encode_chunks(self.branch.decoder, np.concatenate([z, c], axis=1), self.device)

    def relative_error(self, x, shared) -> float:
        """Held-out relative reconstruction error ``E‖g(Z, C) − x‖² / E‖x‖²``.

        Parameters
        ----------
        x, shared
            Samples and their shared features.

        Returns
        -------
        The error as a float (0 is perfect).

        Examples
        --------
        >>> fit.relative_error(x_test, c_test)  # doctest: +SKIP
        """
        x = self._check(x, "x", self.n_x)
        x_hat = self.reconstruct(x, shared)
        return float(((x_hat - x) ** 2).sum(1).mean() / (x**2).sum(1).mean())


def fit_specific(
    x,
    shared,
    shared_cross=None,
    lam: float = 1.0,
    n_specific: int = 10,
    n_hidden: int = 100,
    n_layers: int = 5,
    max_epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    *,
    objective: Literal["indiseek", "indiseek0", "factorized_cl", "infodisen"] = "indiseek",
    club_weight: float = 1.0,
    q_schedule: Literal["interleaved", "epoch"] = "interleaved",
    q_steps: int = 1,
    q_epochs: int = 5,
    validation_size: float = 0.1,
    early_stopping: bool = False,
    accelerator: str = "auto",
    progress_bar: bool = True,
    normalize_z: bool = True,
) -> SpecificFit:
    """Learn modality-specific features of ``x`` given its shared features (step 2 of IndiSeek).

    Minimises ``CLUB(Z; shared_cross) + λ / (2 E‖x‖²) · E‖g(Z, shared) − x‖²`` with
    ``Z = h(x)``. Works for any data: the paper's simulations pass oracle shared features.

    Parameters
    ----------
    x
        The modality (samples × features).
    shared
        Its shared features C_i (samples × d_c), given to the decoder.
    shared_cross
        The features Z must be independent of (the other modality's C for IndiSeek's
        cross-modal disentanglement). ``None``: ``shared``.
    lam
        λ: weight of the reconstruction (completeness) term; small λ favours independence.
    n_specific
        Dimension of Z.
    n_hidden, n_layers
        Width and number of linear layers of every MLP.
    max_epochs
        Training epochs (``None``: enough for about 4,000 updates, 20 to 500 epochs).
    batch_size, lr, seed
        Batch size, Adam learning rate, random seed.
    objective
        ``"indiseek"`` (default), ``"indiseek0"`` (CLUB on ``shared``), ``"factorized_cl"`` or
        ``"infodisen"``.
    club_weight
        Weight of the CLUB term (0 switches it off: reconstruction only, an ablation).
    q_schedule, q_steps, q_epochs
        How the CLUB critic q is fitted: ``q_steps`` steps per main step (``"interleaved"``) or
        ``q_epochs`` passes per epoch (``"epoch"``, the paper's schedule).
    validation_size
        Fraction of samples held out for validation losses in ``history``.
    early_stopping
        Stop on the validation loss (patience 20) and keep the best weights.
    accelerator
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    progress_bar
        Show progress.
    normalize_z
        End h with a non-affine batch standardisation (fixes the scale of Z).

    Returns
    -------
    :class:`SpecificFit` with ``transform``, ``reconstruct`` and ``history``.

    Examples
    --------
    >>> import indiseek as isk
    >>> x, c = isk.sim.setting(1, n=2000, seed=0)
    >>> fit = isk.fit_specific(x, c, lam=1.0, max_epochs=2, progress_bar=False)
    >>> fit.transform(x[:5]).shape
    (5, 10)
    """
    x, shared, cross = _checked_inputs(x, shared, shared_cross)
    obj = get_objective(objective)
    if not obj.has_specific:
        raise ValueError("objective='clip' learns no modality-specific features; use IndiSeek.")
    _check_sizes(x, shared, lam, club_weight, n_specific, n_hidden, n_layers)
    cfg = TrainConfig.pick(locals())  # validates every setting
    from ._device import resolve_device

    device = resolve_device(accelerator)
    tr, va = split_validation(len(x), validation_size, seed)
    c_club = cross if obj.club_on_cross else shared
    critic = shared.shape[1] if obj.complement == "infonce_zc" else c_club.shape[1]
    with torch.random.fork_rng(devices=[]):  # the caller's global RNG stays as it was
        torch.default_generator.manual_seed(seed)  # the CPU one only: CUDA's are not forked
        branch = SpecificBranch(
            x.shape[1],
            shared.shape[1],
            c_club.shape[1],
            n_specific,
            n_hidden,
            n_layers,
            n_c_critic=critic if obj.uses_critics else None,
            normalize_z=normalize_z,
        ).to(device)
    data = {
        "x": BranchData(
            x=to_tensor(x, device),
            c_own=to_tensor(shared, device),
            c_club=to_tensor(c_club, device),
            x_sq=float((x[tr] ** 2).sum(1).mean()),
        )
    }
    # the paper-simulation API keeps 0.1's length: its checks (masking shares) were set on it
    epochs = max_epochs or default_epochs(len(tr), batch_size, target=ARRAYS_UPDATES)
    va_t = torch.as_tensor(va, device=device) if len(va) else None
    with cpu_threads(device, cfg.cpu_threads):
        history = fit_specific_branches(
            {"x": branch},
            data,
            obj,
            lam,
            torch.as_tensor(tr, device=device),
            va_t,
            cfg,
            epochs,
            club_weight=club_weight,
        )
    settings = dict(lam=lam, objective=obj.name, n_specific=n_specific, n_hidden=n_hidden)
    settings.update(n_layers=n_layers, epochs=epochs, seed=seed, club_weight=club_weight)
    fit = SpecificFit(branch, device, history, x.shape[1], shared.shape[1], settings)
    if va_t is not None:
        fit.validation = evaluate_branches({"x": branch}, data, va_t, obj, lam, club_weight)
    return fit


def _check_sizes(x, shared, lam, club_weight, n_specific, n_hidden, n_layers) -> None:
    for name, value in (("lam", lam), ("club_weight", club_weight)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
    for name, value in (("n_specific", n_specific), ("n_hidden", n_hidden), ("n_layers", n_layers)):
        check_int(name, value, 1)
    if x.shape[1] < 1 or shared.shape[1] < 1:
        raise ValueError(
            f"x and shared need at least one feature, got {x.shape} and {shared.shape}."
        )


def _checked_inputs(x, shared, shared_cross) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _as_2d(x, "x")
    shared = _as_2d(shared, "shared")
    cross = shared if shared_cross is None else _as_2d(shared_cross, "shared_cross")
    for name, arr in (("shared", shared), ("shared_cross", cross)):
        if len(arr) != len(x):
            raise ValueError(f"x has {len(x)} samples but {name} has {len(arr)}.")
    return x, shared, cross
