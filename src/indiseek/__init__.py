"""IndiSeek: shared and modality-specific representations of paired multi-omics data.

Namespaces follow scanpy: :mod:`indiseek.pp` (preprocessing), :mod:`indiseek.tl` (tools),
:mod:`indiseek.pl` (plots), :mod:`indiseek.datasets` and :mod:`indiseek.sim` (the paper's
simulations). The model lives in :class:`indiseek.IndiSeek`; :func:`indiseek.fit_specific`
is the arrays-in, arrays-out entry point.

Heavy dependencies (torch, scanpy, muon) are imported on first use so that
``import indiseek`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.4.0.dev0"

_SUBMODULES = {"pp", "tl", "pl", "datasets", "sim", "nn"}
_ATTRS = {
    "IndiSeek": ("indiseek.model._indiseek", "IndiSeek"),
    "fit_specific": ("indiseek.model._arrays", "fit_specific"),
    "SpecificFit": ("indiseek.model._arrays", "SpecificFit"),
}

__all__ = ["IndiSeek", "SpecificFit", "datasets", "fit_specific", "pl", "pp", "sim", "tl"]

if TYPE_CHECKING:  # pragma: no cover
    from . import datasets, pl, pp, sim, tl
    from .model._arrays import SpecificFit, fit_specific
    from .model._indiseek import IndiSeek


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        mod = importlib.import_module(f"indiseek.{name}")
        globals()[name] = mod
        return mod
    if name in _ATTRS:
        module, attr = _ATTRS[name]
        obj = getattr(importlib.import_module(module), attr)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'indiseek' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | set(_ATTRS))
