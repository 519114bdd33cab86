"""Execute the tutorials and store their outputs, so the docs site shows every figure and table.

Usage (from the repository root; a few minutes per notebook on a laptop CPU)::

    python tutorials/execute.py            # every notebook except those marked not to run
    python tutorials/execute.py quickstart # one notebook

Each executed notebook gets ``metadata["indiseek"]["source_sha1"]``: a digest of its code
cells. The test suite checks that it matches the code, so stored outputs cannot silently fall
behind an edited notebook. Notebooks with ``metadata["indiseek"]["execute"] = False`` (the
bone-marrow one downloads ~1.5 GB) are left as they are.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def source_digest(nb) -> str:
    """Digest of a notebook's code cells (what its outputs were made from)."""
    code = "\n\x00\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return hashlib.sha1(code.encode()).hexdigest()


def should_execute(nb) -> bool:
    return bool(nb.metadata.get("indiseek", {}).get("execute", True))


def execute(path: Path, timeout: int = 3600) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    for cell in nb.cells:  # progress bars and warnings are noise on a web page
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"]
    nb.metadata.setdefault("indiseek", {})["source_sha1"] = source_digest(nb)
    nbformat.write(nb, path)
    return time.perf_counter() - t0


def main(names: list[str]) -> None:
    import nbformat

    paths = [HERE / f"{n}.ipynb" for n in names] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        if not should_execute(nbformat.read(path, as_version=4)):
            print(f"skip {path.name} (marked not to execute)")
            continue
        print(f"{path.name}: {execute(path):.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
