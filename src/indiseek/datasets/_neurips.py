"""NeurIPS 2021 bone-marrow CITE-seq (GEO GSE194122), from a pinned, checksummed download."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from ._bmcite import default_cache_dir, retrieve

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

#: GEO's download URL of the processed CITE-seq file, as pinned by scvi-tools' scvi-hub-models,
#: and the file's SHA-256.
NEURIPS2021_CITE_URL = (
    "https://www.ncbi.nlm.nih.gov/geo/download/?acc=GSE194122&format=file&file="
    "GSE194122%5Fopenproblems%5Fneurips2021%5Fcite%5FBMMC%5Fprocessed%2Eh5ad%2Egz"
)
NEURIPS2021_CITE_SHA256 = "b9b50fade9349719cba23c97c6515d3501a32ee3735fe95fe51221d2e8a5f361"
NEURIPS2021_CITE_FILE = "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad.gz"
ATTRIBUTION = (
    "Luecken et al. (2021), A sandbox for prediction and integration of DNA, RNA, and proteins "
    "in single cells, NeurIPS Datasets and Benchmarks; GEO GSE194122 (CC BY 4.0)."
)


def neurips2021_bmmc_cite(
    path: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progressbar: bool = True,
) -> MuData:
    """Bone-marrow CITE-seq of the NeurIPS 2021 challenge: ~90,000 cells, RNA + 134 proteins.

    Bone-marrow mononuclear cells from 9 donors at 4 sites (Luecken et al. 2021, GEO
    GSE194122, CC BY 4.0), with expert cell-type labels. The processed file (~1.5 GB
    compressed) is downloaded once from GEO with :mod:`pooch`, checked against its SHA-256 and
    cached; later calls read the cache.

    Parameters
    ----------
    path
        A local copy of ``GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad.gz`` (or
        of the decompressed ``.h5ad``); nothing is downloaded then.
    cache_dir
        Where the download is kept (default ``$INDISEEK_DATA_DIR`` or the user cache).
    progressbar
        Show download progress.

    Returns
    -------
    MuData with modalities ``rna`` (features with ``feature_types == "GEX"``) and ``adt``
    (``"ADT"``), raw counts from the file's ``layers["counts"]`` in each ``.X``, and the
    file's ``obs``: labels in ``obs["cell_type"]``, donor–site batches in ``obs["batch"]``.
    Ready for :func:`indiseek.pp.prepare`.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.neurips2021_bmmc_cite()  # downloads ~1.5 GB once  # doctest: +SKIP
    """
    if path is None:
        path = _download(
            Path(cache_dir) if cache_dir is not None else default_cache_dir(), progressbar
        )
    return read_neurips2021_cite(path)


def _download(cache: Path, progressbar: bool) -> Path:
    hint = (
        f"Download {NEURIPS2021_CITE_FILE} from {NEURIPS2021_CITE_URL} elsewhere and pass it: "
        "isk.datasets.neurips2021_bmmc_cite(path=...)."
    )
    return retrieve(
        NEURIPS2021_CITE_URL,
        NEURIPS2021_CITE_SHA256,
        NEURIPS2021_CITE_FILE,
        cache,
        progressbar,
        "the NeurIPS 2021 CITE-seq data from GEO",
        hint,
    )


def read_neurips2021_cite(path: str | os.PathLike) -> MuData:
    """Read the NeurIPS 2021 CITE-seq ``.h5ad`` (or ``.h5ad.gz``) into an RNA + ADT MuData.

    The combined matrix is split by ``var["feature_types"]`` (``"GEX"`` → ``rna``, ``"ADT"``
    → ``adt``) and raw counts are taken from ``layers["counts"]``; a gzipped file is
    decompressed once beside itself.

    Parameters
    ----------
    path
        The processed file of GEO GSE194122, or a file in the same layout.

    Returns
    -------
    See :func:`neurips2021_bmmc_cite`.
    """
    import anndata as ad
    import mudata as md

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such file: {path}")
    if path.suffix == ".gz":
        path = _gunzip(path)
    adata = ad.read_h5ad(path)
    mods = {}
    for name, kind in (("rna", "GEX"), ("adt", "ADT")):
        mods[name] = _modality(adata, kind, path)
    with md.set_options(pull_on_update=False):
        mdata = md.MuData(mods)
    for col in adata.obs.columns:
        mdata.obs[col] = adata.obs[col].to_numpy()
    mdata.uns["dataset"] = {"name": "neurips2021_bmmc_cite", "attribution": ATTRIBUTION}
    return mdata


def _modality(adata: AnnData, kind: str, path: Path) -> AnnData:
    import anndata as ad

    if "feature_types" not in adata.var:
        raise ValueError(
            f"{path.name} has no var['feature_types'] column; expected GEX/ADT features in the "
            "layout of GEO GSE194122."
        )
    if "counts" not in adata.layers:
        raise ValueError(f"{path.name} has no layers['counts'] with the raw counts.")
    keep = (adata.var["feature_types"].astype(str) == kind).to_numpy()
    if not keep.any():
        found = sorted(adata.var["feature_types"].astype(str).unique())
        raise ValueError(f"{path.name} has no {kind} features (feature_types: {found}).")
    counts = adata.layers["counts"][:, keep]
    return ad.AnnData(X=counts, obs=adata.obs[[]].copy(), var=adata.var.loc[keep].copy())


def _gunzip(path: Path) -> Path:
    out = path.with_suffix("")  # .h5ad.gz → .h5ad
    if not out.exists() or out.stat().st_mtime < path.stat().st_mtime:
        tmp = out.with_suffix(out.suffix + ".part")
        with gzip.open(path, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 24)
        tmp.replace(out)
    return out
