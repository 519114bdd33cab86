"""The torch layer: networks, losses and training loops. No AnnData in here.

Everything takes and returns tensors (or numpy arrays in the training entry points), so it can
be read and tested apart from the MuData wrapper in :mod:`indiseek.model`.
"""

from ._losses import (
    club_bound,
    club_sampled,
    gaussian_loglik,
    info_nce,
    orthogonality,
)
from ._modules import ClipModule, GaussianCLUB, SpecificBranch, mlp
from ._objectives import OBJECTIVES, Objective, get_objective
from ._training import TrainConfig, fit_clip, fit_specific_branches, resolve_device

__all__ = [
    "OBJECTIVES",
    "ClipModule",
    "GaussianCLUB",
    "Objective",
    "SpecificBranch",
    "TrainConfig",
    "club_bound",
    "club_sampled",
    "fit_clip",
    "fit_specific_branches",
    "gaussian_loglik",
    "get_objective",
    "info_nce",
    "mlp",
    "orthogonality",
    "resolve_device",
]
