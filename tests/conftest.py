import os
import warnings
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(
    os.environ.get("INDISEEK_SHARED", Path(__file__).resolve().parents[1].parent / "shared")
)
DATA = SHARED / "data"

warnings.filterwarnings("ignore", category=FutureWarning)


def shared_file(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"shared data file {path} not available")
    return path


@pytest.fixture(scope="session")
def small_mdata_factory():
    import indiseek as isk

    def make(n_cells: int = 600, seed: int = 0, train_size=0.8, **kw):
        mdata = isk.datasets.synthetic_citeseq(
            n_cells=n_cells, n_genes=300, n_proteins=20, n_types=10, seed=seed, **kw
        )
        isk.pp.prepare(mdata, train_size=train_size, seed=seed, n_pcs=30)
        isk.IndiSeek.setup_mudata(mdata)
        return mdata

    return make


@pytest.fixture
def small_mdata(small_mdata_factory):
    return small_mdata_factory()


@pytest.fixture(scope="session")
def trained(small_mdata_factory):
    """A small IndiSeek model trained for a few epochs, with its MuData."""
    import indiseek as isk

    mdata = small_mdata_factory()
    model = isk.IndiSeek(mdata, lam=10.0, n_shared=8, n_specific=6, n_hidden=32, n_layers=3)
    model.train(max_epochs=4, progress_bar=False, seed=0)
    model.write_obsm(mdata)
    return model, mdata


@pytest.fixture
def rng():
    return np.random.default_rng(0)
