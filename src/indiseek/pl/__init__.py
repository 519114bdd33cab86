"""Plots: θ ranking, rank scatter, UMAP panels, method comparison, training curves."""

from ._figures import compare_methods, embeddings, training_curves
from ._ranks import rank_scatter, theta_ranking

__all__ = ["compare_methods", "embeddings", "rank_scatter", "theta_ranking", "training_curves"]
