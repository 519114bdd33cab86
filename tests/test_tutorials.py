"""Every tutorial notebook runs end to end (small settings) and the docs build without warnings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))


def _executable(path: Path) -> bool:
    import nbformat

    return bool(nbformat.read(path, as_version=4).metadata.get("indiseek", {}).get("execute", True))


RUNNABLE = [p for p in NOTEBOOKS if _executable(p)]


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNNABLE, ids=[p.stem for p in RUNNABLE])
def test_notebook_runs(path, monkeypatch):
    """Every tutorial runs as shipped (small settings), with no environment setup or shared/."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("INDISEEK_TUTORIAL_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
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
    text = "\n".join(c.source for c in nb.cells)
    assert "INDISEEK_TUTORIAL_DATA" not in text and "shared/" not in text


def test_stored_outputs_are_fresh():
    """The notebooks carry outputs (the docs site shows them) made from their current code."""
    import nbformat

    sys.path.insert(0, str(ROOT / "tutorials"))
    from execute import source_digest

    assert len(NOTEBOOKS) == 6
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        if not _executable(path):
            assert "downloads" in nb.metadata["indiseek"]["why"]
            continue
        stamp = nb.metadata.get("indiseek", {}).get("source_sha1")
        assert stamp == source_digest(nb), (
            f"{path.name}: outputs are stale; run python tutorials/execute.py {path.stem}"
        )
        images = [
            o
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        assert images, f"{path.name} has no stored figure"


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
    for path in RUNNABLE:  # the site shows each tutorial's stored figures and tables
        html = (tmp_path / "notebooks" / f"{path.stem}.html").read_text()
        assert "<img" in html and ".png" in html, f"{path.stem}: no figure on the page"
    html = (tmp_path / "notebooks" / "citeseq_in_practice.html").read_text()
    assert "<table" in html
