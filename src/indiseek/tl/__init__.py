"""Tools: θ-scores, WNN weights, rank comparison, clustering metrics, method comparison."""

from ._leakage import predictability

__all__ = ["predictability"]
