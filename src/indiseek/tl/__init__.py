"""Tools: θ-scores, WNN weights, rank comparison, clustering metrics, method comparison."""

from ._compare import compare_methods
from ._disentangle import disentanglement
from ._export import export_embeddings
from ._groups import label_predictability, theta_by_group
from ._leakage import predictability
from ._metrics import cluster_metrics
from ._ranks import rank_comparison, rank_table
from ._theta import label_purity, theta_arrays, theta_members, theta_score
from ._wnn import wnn_weights

__all__ = [
    "cluster_metrics",
    "compare_methods",
    "disentanglement",
    "export_embeddings",
    "label_predictability",
    "label_purity",
    "predictability",
    "rank_comparison",
    "rank_table",
    "theta_arrays",
    "theta_by_group",
    "theta_members",
    "theta_score",
    "wnn_weights",
]
