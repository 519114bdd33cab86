"""Combining embeddings: blocks scaled so that none dominates Euclidean distances."""

from __future__ import annotations

import numpy as np


def concatenate_blocks(blocks: list[np.ndarray]) -> np.ndarray:
    """Concatenate embeddings after scaling each to unit total variance."""
    scaled = []
    for b in blocks:
        total = float(np.var(b, axis=0).sum())
        scaled.append(b / np.sqrt(total) if total > 0 else b)
    return np.concatenate(scaled, axis=1).astype(np.float32)
