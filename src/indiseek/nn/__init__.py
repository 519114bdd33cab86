"""The torch layer: networks, losses, objectives and training loops. No AnnData in here.

Everything takes and returns tensors (or numpy arrays in the training entry points), and
modalities are whatever two names the caller gives, so this layer can be read and tested apart
from the MuData wrapper in :mod:`indiseek.model`.
"""

from ._batched import can_batch, train_members_batched, why_not_batched
from ._loops import BranchData, evaluate_branches, fit_clip, fit_specific_branches
from ._losses import (
    club_bound,
    club_sampled,
    gaussian_loglik,
    info_nce,
    orthogonality,
)
from ._member import MemberJob, MemberResult, train_member
from ._modules import ClipModule, GaussianCLUB, IndiSeekModule, SpecificBranch, mlp
from ._objectives import OBJECTIVES, Objective, get_objective
from ._train_utils import TrainConfig, cpu_threads, default_epochs, to_tensor

__all__ = [
    "OBJECTIVES",
    "BranchData",
    "ClipModule",
    "GaussianCLUB",
    "IndiSeekModule",
    "MemberJob",
    "MemberResult",
    "Objective",
    "SpecificBranch",
    "TrainConfig",
    "can_batch",
    "club_bound",
    "club_sampled",
    "cpu_threads",
    "default_epochs",
    "evaluate_branches",
    "fit_clip",
    "fit_specific_branches",
    "gaussian_loglik",
    "get_objective",
    "info_nce",
    "mlp",
    "orthogonality",
    "to_tensor",
    "train_member",
    "train_members_batched",
    "why_not_batched",
]
