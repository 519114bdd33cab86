"""The step-2 objectives: IndiSeek and the baselines it is compared with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ._losses import club_bound, info_nce, orthogonality
from ._modules import SpecificBranch


@dataclass(frozen=True)
class Objective:
    """How step 2 trains Z for one modality.

    Attributes
    ----------
    name
        Objective name.
    independence
        ``"club_cross"``: CLUB(Z_i; C_other) (IndiSeek); ``"club_own"``: CLUB(Z_i; C_i);
        ``"orthogonal"``: InfoDisen's orthogonality of Z_i and C_i; ``None``: no step 2.
    complement
        ``"reconstruction"``: λ/(2 E‖X‖²)·E‖g(Z, C) − X‖²; ``"infonce_zc"``: λ/2·InfoNCE between
        (Z_i, C_i) and X_i (FactorizedCL); ``"infonce_cz"``: λ/2·InfoNCE between
        (C_other, Z_i) and X_i (InfoDisen).
    """

    name: str
    independence: Literal["club_cross", "club_own", "orthogonal"] | None
    complement: Literal["reconstruction", "infonce_zc", "infonce_cz"] | None

    @property
    def has_specific(self) -> bool:
        return self.independence is not None

    @property
    def uses_critics(self) -> bool:
        return self.complement in ("infonce_zc", "infonce_cz")

    @property
    def club_on_cross(self) -> bool:
        """Whether the CLUB critic conditions on the other modality's C (also as a probe)."""
        return self.independence != "club_own"


OBJECTIVES: dict[str, Objective] = {
    "indiseek": Objective("indiseek", "club_cross", "reconstruction"),
    "indiseek0": Objective("indiseek0", "club_own", "reconstruction"),
    "factorized_cl": Objective("factorized_cl", "club_own", "infonce_zc"),
    "infodisen": Objective("infodisen", "orthogonal", "infonce_cz"),
    "clip": Objective("clip", None, None),
}


def get_objective(name: str | Objective) -> Objective:
    """Look up an objective by name (``indiseek``, ``indiseek0``, ``factorized_cl``, ``infodisen``, ``clip``)."""
    if isinstance(name, Objective):
        return name
    if name not in OBJECTIVES:
        raise ValueError(f"Unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}.")
    return OBJECTIVES[name]


def branch_terms(
    branch: SpecificBranch,
    objective: Objective,
    x: torch.Tensor,
    c_own: torch.Tensor,
    c_club: torch.Tensor,
    lam: float,
    x_sq: float,
    club_weight: float = 1.0,
    z: torch.Tensor | None = None,
    temperature: float = 0.1,
    q_out: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Loss terms of one branch on one batch; ``"loss"`` is what the main optimiser minimises.

    ``c_club`` is the C that the CLUB critic conditions on (the other modality's for
    IndiSeek and as a probe for InfoDisen, the modality's own for IndiSeek0/FactorizedCL). The
    critic q is read without gradient: its parameters are fitted by maximum likelihood in
    their own step, and the encoder only needs d CLUB / d z.
    """
    if z is None:
        z = branch.encoder(x)
    if q_out is None:
        with torch.no_grad():
            mu, logvar = branch.q(c_club)
    else:
        mu, logvar = q_out
    club = club_bound(z, mu, logvar)
    rec_input = torch.cat([z, c_own], dim=1)
    if objective.complement == "reconstruction":
        x_hat = branch.decoder(rec_input)
    else:  # probe decoder: reports completeness without shaping Z
        x_hat = branch.decoder(rec_input.detach())
    sq_err = ((x_hat - x) ** 2).sum(dim=1).mean()
    rel_err = sq_err / x_sq
    terms: dict[str, torch.Tensor] = {"club": club, "rel_rec_error": rel_err}

    if objective.independence in ("club_cross", "club_own"):
        independence = club_weight * club
    else:
        independence = orthogonality(z, c_own)
        terms["orthogonality"] = independence
    if objective.complement == "reconstruction":
        complement = lam / 2.0 * rel_err
        loss = independence + complement
    else:
        pair = (z, c_own) if objective.complement == "infonce_zc" else (c_club, z)
        nce = info_nce(branch.critic_zc(torch.cat(pair, dim=1)), branch.critic_x(x), temperature)
        terms["infonce"] = nce
        complement = lam / 2.0 * nce
        loss = independence + complement + rel_err  # + probe decoder's own loss
    terms["independence"] = independence
    terms["complement"] = complement
    terms["loss"] = loss
    return terms
