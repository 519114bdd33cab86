"""Embeddings as plain files, with an R snippet that reads them into Seurat."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import get_obsm

if TYPE_CHECKING:
    from mudata import MuData

R_SNIPPET = """# Read IndiSeek embeddings into a Seurat object of the same cells (one DimReduc each).
# obj: your Seurat object, e.g. obj <- readRDS("cells.rds")
library(Seurat)
for (f in list.files("{dir}", pattern = "[.]csv$", full.names = TRUE)) {{
  m <- as.matrix(read.csv(f, row.names = 1, check.names = FALSE))
  key <- sub("[.]csv$", "", basename(f))
  obj[[key]] <- CreateDimReducObject(embeddings = m[colnames(obj), ], key = paste0(key, "_"), assay = DefaultAssay(obj))
}}
"""


def _file_key(obsm_key: str) -> str:
    """A Seurat-safe reduction name: letters and digits only (``X_indiseek_Z_rna`` → ``indiseekZrna``)."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", obsm_key.removeprefix("X_")) if p]
    name = "".join(parts) or "emb"
    return name if name[0].isalpha() else f"e{name}"


def export_embeddings(
    mdata: MuData,
    directory: str | os.PathLike,
    keys: Sequence[str] | None = None,
) -> list[Path]:
    """Write embeddings as CSV files (cells × dimensions) and an R snippet for Seurat.

    One file per embedding, named by a letters-and-digits version of its key
    (``X_indiseek_Z_rna`` → ``indiseekZrna.csv``), with cell names in the first column and
    columns ``<name>_1``, ``<name>_2``, … — the form Seurat's ``CreateDimReducObject`` expects.
    ``load_in_seurat.R`` beside them adds every file to a Seurat object ``obj`` of the same
    cells as a dimensional reduction (``obj[["indiseekZrna"]]``).

    Parameters
    ----------
    mdata
        MuData with embeddings (:meth:`IndiSeek.write_obsm`); not modified.
    directory
        Folder to write to (created if needed; files of the same names are replaced).
    keys
        ``.obsm`` keys (or ``"<modality>:<key>"``) to write; default: the IndiSeek keys present.

    Returns
    -------
    Paths of the files written (CSVs, then the R snippet).

    Examples
    --------
    >>> isk.tl.export_embeddings(mdata, "indiseek_embeddings")  # doctest: +SKIP
    """
    if keys is None:
        keys = [k for k in [*K.OBSM.values(), K.OBSM_ALL] if k in mdata.obsm]
        if not keys:
            raise KeyError(
                "No IndiSeek embeddings in mdata.obsm; run model.write_obsm(mdata) or pass keys."
            )
    keys = [keys] if isinstance(keys, str) else list(keys)
    names = [_file_key(k) for k in keys]
    if len(set(names)) != len(names):
        raise ValueError(f"Keys {keys} give clashing file names {names}; export them separately.")
    arrays = {name: np.asarray(get_obsm(mdata, key)) for key, name in zip(keys, names, strict=True)}
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, x in arrays.items():
        columns = [f"{name}_{i + 1}" for i in range(x.shape[1])]
        frame = pd.DataFrame(x, index=pd.Index(mdata.obs_names, name="cell"), columns=columns)
        frame.to_csv(out / f"{name}.csv")
        written.append(out / f"{name}.csv")
    snippet = out / "load_in_seurat.R"
    snippet.write_text(R_SNIPPET.format(dir=out.as_posix()))
    written.append(snippet)
    return written
