"""The paper's bone-marrow CITE-seq dataset (Stuart et al. 2019)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mudata import MuData

#: Where the ``.h5mu`` copy of SeuratData's ``bmcite`` is fetched from, and its SHA-256. The
#: project has not yet pinned a public mirror whose checksum it verified, so both are read from
#: ``$INDISEEK_BMCITE_URL`` / ``$INDISEEK_BMCITE_SHA256`` (or passed as arguments).
BMCITE_URL: str | None = os.environ.get("INDISEEK_BMCITE_URL")
BMCITE_SHA256: str | None = os.environ.get("INDISEEK_BMCITE_SHA256")
CONVERSION_HINT = (
    "To make the file yourself in R: SeuratData::InstallData('bmcite'); "
    "bm <- SeuratData::LoadData('bmcite'); MuDataSeurat::WriteH5MU(bm, 'bmcite.h5mu'); "
    "then call isk.datasets.bmcite(path='bmcite.h5mu')."
)
BMCITE_FILENAME = "bmcite.h5mu"
EXPECTED_N_CELLS = 30_672


def default_cache_dir() -> Path:
    """Cache directory for downloaded datasets.

    ``$INDISEEK_DATA_DIR`` when set, else pooch's per-user cache folder for ``indiseek``.
    """
    env = os.environ.get("INDISEEK_DATA_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("indiseek"))


def retrieve(
    url: str,
    known_hash: str | None,
    fname: str,
    cache: Path,
    progressbar: bool,
    what: str,
    hint: str,
) -> Path:
    """Download ``url`` once into ``cache`` with pooch (checksum checked), or say what to do."""
    import pooch

    try:
        return Path(
            pooch.retrieve(
                url=url,
                known_hash=f"sha256:{known_hash}" if known_hash else None,
                fname=fname,
                path=cache,
                progressbar=progressbar,
            )
        )
    except Exception as err:  # network errors come in many types
        raise RuntimeError(f"Could not download {what} from {url} ({err}). {hint}") from err


def read_citeseq(path: str | os.PathLike, rna: str = "rna", adt: str = "adt") -> MuData:
    """Read a CITE-seq ``.h5mu`` file and check it holds RNA and ADT counts of the same cells.

    Modality names are matched case-insensitively (``RNA``/``ADT`` as written by Seurat
    converters are renamed to ``rna``/``adt``). Level-1/level-2 labels stored in a modality's
    ``.obs`` (e.g. ``rna:celltype.l2``) are copied to ``mdata.obs``.

    Parameters
    ----------
    path
        Path to an ``.h5mu`` file.
    rna, adt
        Names the modalities get in the returned object.

    Returns
    -------
    The MuData, modalities named ``rna`` and ``adt``.
    """
    import mudata as md

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No such CITE-seq file: {path}")
    if path.suffix != ".h5mu":
        raise ValueError(
            f"{path.name} is not an .h5mu file; read_citeseq reads MuData files (for a combined "
            "RNA+ADT .h5ad, split it by feature type first, e.g. isk.datasets.read_neurips2021_cite)."
        )
    mdata = md.read_h5mu(path)
    lower = {k.lower(): k for k in mdata.mod}
    mods = {}
    for want in (rna, adt):
        if want in mdata.mod:
            mods[want] = mdata.mod[want]
        elif want.lower() in lower:
            mods[want] = mdata.mod[lower[want.lower()]]
        else:
            raise KeyError(
                f"{path.name}: no modality named {want!r} (found {sorted(mdata.mod)}); "
                "a CITE-seq file needs an RNA and an ADT modality."
            )
    if set(mods) != set(mdata.mod):
        obs = mdata.obs
        mdata = md.MuData(mods)
        for col in obs.columns:
            if ":" not in col:
                mdata.obs[col] = obs.loc[mdata.obs_names, col]
    if not mdata.mod[rna].obs_names.equals(mdata.mod[adt].obs_names):
        missing = mdata.mod[rna].obs_names.symmetric_difference(mdata.mod[adt].obs_names)
        if len(missing):
            raise ValueError(
                f"{path.name}: modalities {rna!r} and {adt!r} cover different cells "
                f"({len(missing)} cells are in only one of them)."
            )
    for label in ("celltype.l1", "celltype.l2", "celltype"):
        if label in mdata.obs:
            continue
        for mod in (rna, adt):
            if label in mdata.mod[mod].obs:
                mdata.obs[label] = mdata.mod[mod].obs.loc[mdata.obs_names, label].to_numpy()
                break
    return mdata


def bmcite(
    path: str | os.PathLike | None = None,
    *,
    url: str | None = None,
    known_hash: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> MuData:
    """Bone-marrow CITE-seq of Stuart et al. (2019): 30,672 cells, RNA + 25 ADTs.

    The dataset the IndiSeek paper analyses, with ``obs["celltype.l1"]`` (5 types) and
    ``obs["celltype.l2"]`` (27 types); raw counts in each modality's ``.X``. It is distributed
    for R (SeuratData's ``bmcite``) and has no pinned Python download: convert it once in R
    (see the error message for the three lines) and pass the file with ``path=``, or give a
    mirror with ``url=`` and ``known_hash=``. For bone marrow without R, use
    :func:`neurips2021_bmmc_cite` (pinned, checksummed download).

    Parameters
    ----------
    path
        A local ``.h5mu`` copy. When given, nothing is downloaded.
    url
        Where to download the ``.h5mu`` from (default :data:`BMCITE_URL`).
    known_hash
        SHA-256 of that file (default :data:`BMCITE_SHA256`); a download that does not match
        is rejected by pooch.
    cache_dir
        Where a download is kept (default :func:`default_cache_dir`: ``$INDISEEK_DATA_DIR`` or
        the user cache). A cached file whose checksum matches is reused.

    Returns
    -------
    MuData with modalities ``rna`` and ``adt``.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.bmcite(path="bmcite.h5mu")  # doctest: +SKIP
    """
    if path is None:
        url = url or BMCITE_URL
        known_hash = known_hash or BMCITE_SHA256
        if not url:
            raise RuntimeError(
                "No download source is configured for the bone-marrow CITE-seq data: pass "
                "url=... and known_hash=... (or set INDISEEK_BMCITE_URL / INDISEEK_BMCITE_SHA256), "
                "or a local file with path=.... " + CONVERSION_HINT
            )
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        hint = (
            "Download it elsewhere and pass the file: isk.datasets.bmcite(path=...). "
            + CONVERSION_HINT
        )
        path = retrieve(
            url, known_hash, BMCITE_FILENAME, cache, True, "the bone-marrow CITE-seq data", hint
        )
    return read_citeseq(path)
