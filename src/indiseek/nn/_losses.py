"""Loss terms: symmetric InfoNCE, the CLUB mutual-information upper bound, orthogonality."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_LOG_2PI = math.log(2 * math.pi)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE on cosine similarities (CLIP's loss).

    Row ``i`` of ``a`` and row ``i`` of ``b`` are the positive pair; every other row of the
    batch is a negative. Returns the mean of the two cross-entropies (a→b and b→a).
    For perfectly aligned, well separated pairs it tends to 0; for independent pairs it is
    about ``log(batch size)``.
    """
    a = F.normalize(a, dim=1)
    b = F.normalize(b, dim=1)
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def gaussian_loglik(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample log density of ``z`` under ``N(mu, diag(exp(logvar)))``."""
    return -0.5 * (((z - mu) ** 2) / logvar.exp() + logvar + _LOG_2PI).sum(dim=1)


def club_bound(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """CLUB estimate with all pairs of the batch, in O(B·d).

    ``mean_i log q(z_i|c_i) − mean_{i,j} log q(z_j|c_i)`` with ``q = N(mu(c), exp(logvar(c)))``.
    Per dimension ``mean_j (z_j − mu_i)² = Var(z) + (mean(z) − mu_i)²`` (population variance),
    so no B×B×d tensor is needed; the log-variance terms cancel between the two means.
    """
    inv_var = torch.exp(-logvar)
    positive = ((z - mu) ** 2 * inv_var).sum(dim=1)
    z_mean = z.mean(dim=0, keepdim=True)
    z_var = z.var(dim=0, unbiased=False, keepdim=True)
    negative = ((z_var + (z_mean - mu) ** 2) * inv_var).sum(dim=1)
    return 0.5 * (negative - positive).mean()


def club_sampled(
    z: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """CLUB estimate with one shuffled negative per sample (the sampled variant of CLUB)."""
    perm = torch.randperm(z.shape[0], device=z.device, generator=generator)
    inv_var = torch.exp(-logvar)
    positive = ((z - mu) ** 2 * inv_var).sum(dim=1)
    negative = ((z[perm] - mu) ** 2 * inv_var).sum(dim=1)
    return 0.5 * (negative - positive).mean()


def orthogonality(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """InfoDisen's orthogonality penalty ``‖normalize(Z)ᵀ normalize(C)‖_F`` over the batch."""
    return torch.linalg.matrix_norm(F.normalize(z, dim=1).T @ F.normalize(c, dim=1))
