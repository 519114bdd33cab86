"""Example datasets: simulators with ground truth, real CITE-seq shipped with the package, and
loaders with pinned sources."""

from ._bmcite import bmcite, read_citeseq
from ._bonemarrow import synthetic_bonemarrow
from ._neurips import neurips2021_bmmc_cite, read_neurips2021_cite
from ._pbmc import pbmc_cite800
from ._synthetic import synthetic_citeseq

__all__ = [
    "bmcite",
    "neurips2021_bmmc_cite",
    "pbmc_cite800",
    "read_citeseq",
    "read_neurips2021_cite",
    "synthetic_bonemarrow",
    "synthetic_citeseq",
]
