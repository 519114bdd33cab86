"""Preprocessing: leakage-free RNA and ADT inputs for IndiSeek."""

from ._prepare import prepare
from ._split import split_cells

__all__ = ["prepare", "split_cells"]
