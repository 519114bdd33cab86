"""Every tutorial notebook runs end to end (small settings) and the docs build without warnings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def _env(name: str) -> dict:
    env = {"INDISEEK_TUTORIAL_FAST": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    if name == "citeseq_in_practice":
        data = DATA / "pbmc_wnn_paired800.h5mu"
        if not data.exists():
            pytest.skip("shared PBMC data not available")
        env.update(
            {
                "INDISEEK_TUTORIAL_DATA": str(data),
                "INDISEEK_TUTORIAL_LABEL": "celltype",
                "INDISEEK_TUTORIAL_SEURAT": str(DATA / "seurat_wnn" / "pbmc_wnn_paired800.csv"),
            }
        )
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for key, value in _env(path.stem).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    images = sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if "image/png" in out.get("data", {})
    )
    assert images >= 1, f"{path.name} showed no figure"


def test_notebooks_are_committed_without_outputs():
    import nbformat

    assert len(NOTEBOOKS) == 4
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
