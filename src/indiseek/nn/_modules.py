"""Networks: MLPs, the CLIP pair of encoders, the Gaussian CLUB critic, a specific branch, a member."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn


def mlp(n_in: int, n_out: int, n_hidden: int = 50, n_layers: int = 5) -> nn.Sequential:
    """ReLU MLP with ``n_layers`` linear layers (``n_layers − 1`` hidden layers of ``n_hidden``)."""
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}.")
    dims = [n_in] + [n_hidden] * (n_layers - 1) + [n_out]
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < n_layers - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ClipModule(nn.Module):
    """Two encoders mapping each modality to a shared space, trained with symmetric InfoNCE.

    The temperature is learnable (initial ``temperature``) unless ``learn_temperature`` is
    False; it is kept in [0.01, 1].
    """

    def __init__(
        self,
        n_in1: int,
        n_in2: int,
        n_shared: int,
        n_hidden: int,
        n_layers: int,
        temperature: float = 0.1,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__()
        self.f1 = mlp(n_in1, n_shared, n_hidden, n_layers)
        self.f2 = mlp(n_in2, n_shared, n_hidden, n_layers)
        log_t = torch.tensor(math.log(temperature), dtype=torch.float32)
        if learn_temperature:
            self.log_temperature = nn.Parameter(log_t)
        else:
            self.register_buffer("log_temperature", log_t)

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.clamp(math.log(0.01), 0.0).exp()

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shared features, L2-normalised (the space in which InfoNCE compares them)."""
        return (
            nn.functional.normalize(self.f1(x1), dim=1),
            nn.functional.normalize(self.f2(x2), dim=1),
        )


class GaussianCLUB(nn.Module):
    """Variational ``q(z | c) = N(mu(c), diag exp(logvar(c)))`` for the CLUB bound.

    The log-variance is bounded smoothly to ``±logvar_bound`` (tanh): unbounded, it runs to
    −∞ on nearly deterministic pairs and the bound turns NaN within a few epochs.
    """

    def __init__(
        self, n_c: int, n_z: int, n_hidden: int, n_layers: int, logvar_bound: float = 6.0
    ) -> None:
        super().__init__()
        self.mu = mlp(n_c, n_z, n_hidden, n_layers)
        self.logvar = mlp(n_c, n_z, n_hidden, n_layers)
        self.logvar_bound = logvar_bound

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.logvar_bound
        return self.mu(c), b * torch.tanh(self.logvar(c) / b)


class SpecificBranch(nn.Module):
    """Everything step 2 trains for one modality.

    - ``encoder`` h: X → Z, a plain MLP as in the paper, or (``normalize_z=True``) ending in a
      non-affine batch standardisation that fixes the scale of Z: with bounded q variances an
      encoder can otherwise lower the CLUB estimate without lowering dependence.
    - ``decoder`` g: (Z, C) → X. For objectives without reconstruction it is a probe trained on
      detached inputs, so reconstruction error is reported for every objective.
    - ``q``: the CLUB critic q(z | c) (a probe for objectives that do not minimise CLUB).
    - ``critic_x``, ``critic_zc``: InfoNCE critics for FactorizedCL and InfoDisen.
    """

    def __init__(
        self,
        n_x: int,
        n_c: int,
        n_c_club: int,
        n_z: int,
        n_hidden: int,
        n_layers: int,
        n_c_critic: int | None = None,
        normalize_z: bool = True,
        logvar_bound: float = 6.0,
        n_covariates: int = 0,
    ) -> None:
        super().__init__()
        #: trailing columns of C that are one-hot batches
        self.n_covariates = int(n_covariates)
        enc = mlp(n_x, n_z, n_hidden, n_layers)
        if normalize_z:
            enc.append(nn.BatchNorm1d(n_z, affine=False))
        self.encoder = enc
        self.decoder = mlp(n_z + n_c, n_x, n_hidden, n_layers)
        self.q = GaussianCLUB(n_c_club, n_z, n_hidden, n_layers, logvar_bound)
        if n_c_critic is not None:
            self.critic_x = mlp(n_x, n_hidden, n_hidden, n_layers)
            self.critic_zc = mlp(n_z + n_c_critic, n_hidden, n_hidden, n_layers)

    def main_parameters(self) -> list[nn.Parameter]:
        """Parameters of the encoder, decoder and critics (everything except q)."""
        return [p for name, p in self.named_parameters() if not name.startswith("q.")]


class IndiSeekModule(nn.Module):
    """One model of an ensemble: CLIP encoders of two modalities and a step-2 branch for each.

    Modalities are named by the keys of ``n_features`` (any two names, in order); the module
    knows nothing else about them.

    Parameters
    ----------
    n_features
        Input width of each of the two modalities, e.g. ``{"rna": 200, "adt": 24}``.
    n_shared, n_specific, n_hidden, n_layers
        Dimensions of C and Z, and the width and depth of every MLP.
    temperature, learn_temperature
        InfoNCE temperature (initial value) and whether it is learnt.
    specific
        Build the step-2 branches (False for CLIP alone).
    critics
        Give each branch the InfoNCE critics of FactorizedCL / InfoDisen.
    normalize_z
        End each Z encoder with a non-affine batch standardisation.
    n_covariates
        Width of per-cell covariates (one-hot batches) appended to C wherever step 2 reads
        it: the decoders g(Z, C, b) do not need the batch in Z, and the CLUB critics
        q(z | C, b) make Z independent of the batch as well as of C.
    """

    def __init__(
        self,
        n_features: Mapping[str, int],
        n_shared: int,
        n_specific: int,
        n_hidden: int,
        n_layers: int,
        *,
        temperature: float = 0.1,
        learn_temperature: bool = True,
        specific: bool = True,
        critics: bool = False,
        normalize_z: bool = True,
        n_covariates: int = 0,
    ) -> None:
        super().__init__()
        if len(n_features) != 2:
            raise ValueError(f"IndiSeekModule needs two modalities, got {list(n_features)}.")
        self.names: tuple[str, str] = tuple(n_features)  # type: ignore[assignment]
        a, b = self.names
        self.clip = ClipModule(
            n_features[a],
            n_features[b],
            n_shared,
            n_hidden,
            n_layers,
            temperature,
            learn_temperature,
        )
        self.branches = nn.ModuleDict()
        if specific:
            for name in self.names:
                n_c = n_shared + n_covariates
                self.branches[name] = SpecificBranch(
                    n_features[name],
                    n_c,
                    n_c,
                    n_specific,
                    n_hidden,
                    n_layers,
                    n_c_critic=n_c if critics else None,
                    normalize_z=normalize_z,
                    n_covariates=n_covariates,
                )

    def other(self, name: str) -> str:
        """The other modality's name."""
        a, b = self.names
        return b if name == a else a

    def shared(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Shared features C of both modalities (L2-normalised), by modality name."""
        a, b = self.names
        return dict(zip(self.names, self.clip(x[a], x[b]), strict=True))
