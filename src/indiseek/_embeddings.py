"""Combining embeddings: blocks scaled so that none dominates Euclidean distances."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def block_scales(blocks: Sequence[np.ndarray]) -> list[float]:
    """Per block, the factor that gives it unit total variance on these cells."""
    out = []
    for b in blocks:
        total = float(np.var(b, axis=0).sum())
        out.append(1 / np.sqrt(total) if total > 0 else 1.0)
    return out


def concatenate_blocks(
    blocks: Sequence[np.ndarray], scales: Sequence[float] | None = None
) -> np.ndarray:
    """Concatenate embeddings, each multiplied by its scale.

    ``scales`` default to :func:`block_scales` of the blocks themselves; pass scales measured
    once (e.g. on training cells) so that a cell's coordinates do not depend on which other
    cells are embedded with it.
    """
    scales = block_scales(blocks) if scales is None else scales
    if len(scales) != len(blocks):
        raise ValueError(f"{len(blocks)} blocks but {len(scales)} scales.")
    return np.concatenate(
        [b * np.float32(s) for b, s in zip(blocks, scales, strict=True)], axis=1
    ).astype(np.float32)
