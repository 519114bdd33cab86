"""Example datasets: a simulator with ground truth and the paper's bone-marrow CITE-seq."""

from ._bmcite import bmcite
from ._bonemarrow import synthetic_bonemarrow
from ._synthetic import synthetic_citeseq

__all__ = ["bmcite", "synthetic_bonemarrow", "synthetic_citeseq"]
