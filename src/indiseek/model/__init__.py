"""Model classes: the MuData-facing :class:`IndiSeek` and the arrays API :func:`fit_specific`."""

from ._arrays import SpecificFit, fit_specific
from ._indiseek import IndiSeek

__all__ = ["IndiSeek", "SpecificFit", "fit_specific"]
