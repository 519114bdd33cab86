"""Preprocessing: leakage-free RNA and ADT inputs for IndiSeek."""

from ._isotypes import ISOTYPE_PATTERN, isotype_mask
from ._prepare import prepare
from ._split import split_by_group, split_cells

__all__ = ["ISOTYPE_PATTERN", "isotype_mask", "prepare", "split_by_group", "split_cells"]
