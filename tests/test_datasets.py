"""The real data shipped with the package and the pinned bone-marrow loader."""

import gzip
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import indiseek as isk
from indiseek.datasets import _neurips


def test_pbmc_cite800_offline():
    mdata = isk.datasets.pbmc_cite800()
    assert mdata.shape == (800, 724)
    assert mdata.mod["rna"].n_vars == 500 and mdata.mod["adt"].n_vars == 224
    assert mdata.obs["celltype"].nunique() == 8
    x = mdata.mod["adt"].X
    values = x.data if sparse.issparse(x) else np.asarray(x)
    assert np.all(values == np.round(values)) and values.min() >= 0  # raw counts
    w = mdata.obs[["seurat_rna_weight", "seurat_adt_weight"]].to_numpy()
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w.sum(1), 1, atol=1e-5)
    assert "Hao et al." in mdata.uns["dataset"]["attribution"]
    assert "MIT" in mdata.uns["dataset"]["attribution"]
    # every call gives a fresh object
    mdata.obs["x"] = 1
    assert "x" not in isk.datasets.pbmc_cite800().obs


def test_neurips_source_is_pinned():
    assert _neurips.NEURIPS2021_CITE_URL == (
        "https://www.ncbi.nlm.nih.gov/geo/download/?acc=GSE194122&format=file&file="
        "GSE194122%5Fopenproblems%5Fneurips2021%5Fcite%5FBMMC%5Fprocessed%2Eh5ad%2Egz"
    )
    assert _neurips.NEURIPS2021_CITE_SHA256 == (
        "b9b50fade9349719cba23c97c6515d3501a32ee3735fe95fe51221d2e8a5f361"
    )


def _neurips_like(n_cells=60, n_genes=40, n_proteins=8, seed=0) -> ad.AnnData:
    """A small file in the layout of GSE194122's processed CITE-seq h5ad."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.0, size=(n_cells, n_genes + n_proteins)).astype(np.float32)
    var = pd.DataFrame(
        {"feature_types": pd.Categorical(["GEX"] * n_genes + ["ADT"] * n_proteins)},
        index=[f"g{i}" for i in range(n_genes)] + [f"CD{i}" for i in range(n_proteins)],
    )
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["B1 B", "CD14+ Mono", "NK"], n_cells)),
            "batch": pd.Categorical(rng.choice(["s1d1", "s2d4"], n_cells)),
            "GEX_n_counts": counts[:, :n_genes].sum(1),
        },
        index=[f"AAAC-{i}-s1d1" for i in range(n_cells)],
    )
    normalised = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    return ad.AnnData(
        X=sparse.csr_matrix(normalised),
        obs=obs,
        var=var,
        layers={"counts": sparse.csr_matrix(counts)},
    )


@pytest.mark.parametrize("gzipped", [True, False])
def test_neurips_reader_on_a_file_of_the_same_layout(tmp_path, gzipped):
    adata = _neurips_like()
    path = tmp_path / "GSE194122_openproblems_neurips2021_cite_BMMC_processed.h5ad"
    adata.write_h5ad(path)
    if gzipped:
        with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path.unlink()
        path = tmp_path / f"{path.name}.gz"
    mdata = isk.datasets.neurips2021_bmmc_cite(path=path)
    assert sorted(mdata.mod) == ["adt", "rna"]
    assert mdata.mod["rna"].n_vars == 40 and mdata.mod["adt"].n_vars == 8
    np.testing.assert_array_equal(
        mdata.mod["adt"].X.toarray(), adata.layers["counts"][:, 40:].toarray()
    )
    assert list(mdata.obs["cell_type"]) == list(adata.obs["cell_type"])
    assert list(mdata.obs["batch"]) == list(adata.obs["batch"])
    isk.pp.prepare(mdata, n_pcs=5, train_size=0.5)  # ready for the pipeline
    assert mdata.mod["rna"].obsm["X_indiseek_pca"].shape == (60, 5)


def test_neurips_reader_refuses_other_layouts(tmp_path):
    adata = _neurips_like()
    del adata.layers["counts"]
    adata.write_h5ad(tmp_path / "x.h5ad")
    with pytest.raises(ValueError, match="counts"):
        isk.datasets.read_neurips2021_cite(tmp_path / "x.h5ad")
    with pytest.raises(FileNotFoundError, match=r"nothing\.h5ad"):
        isk.datasets.read_neurips2021_cite(tmp_path / "nothing.h5ad")


def test_neurips_download_is_cached_and_checked(tmp_path, monkeypatch):
    """pooch gets the pinned URL, checksum and cache folder (no network here)."""
    import pooch

    seen = {}

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        seen.update(url=url, known_hash=known_hash, fname=fname, path=path)
        target = tmp_path / fname
        _neurips_like().write_h5ad(tmp_path / "plain.h5ad")
        with open(tmp_path / "plain.h5ad", "rb") as src, gzip.open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    mdata = isk.datasets.neurips2021_bmmc_cite(cache_dir=tmp_path / "cache", progressbar=False)
    assert mdata.n_obs == 60
    assert seen["url"] == _neurips.NEURIPS2021_CITE_URL
    assert seen["known_hash"] == f"sha256:{_neurips.NEURIPS2021_CITE_SHA256}"
    assert seen["path"] == tmp_path / "cache"


def test_export_embeddings_for_seurat(tmp_path):
    """CSV files Seurat's CreateDimReducObject reads (names, shapes), and the R snippet."""
    mdata = isk.datasets.pbmc_cite800()
    rng = np.random.default_rng(0)
    mdata.obsm["X_indiseek_Z_rna"] = rng.normal(size=(800, 6)).astype(np.float32)
    mdata.obsm["X_indiseek"] = rng.normal(size=(800, 10)).astype(np.float32)
    files = isk.tl.export_embeddings(mdata, tmp_path / "emb")
    assert [f.name for f in files] == ["indiseekZrna.csv", "indiseek.csv", "load_in_seurat.R"]
    z = pd.read_csv(tmp_path / "emb" / "indiseekZrna.csv", index_col=0)
    assert z.shape == (800, 6)
    assert list(z.columns) == [f"indiseekZrna_{i}" for i in range(1, 7)]
    assert list(z.index) == list(mdata.obs_names)
    np.testing.assert_allclose(z.to_numpy(), mdata.obsm["X_indiseek_Z_rna"], rtol=1e-6)
    r = (tmp_path / "emb" / "load_in_seurat.R").read_text()
    assert "CreateDimReducObject" in r and str((tmp_path / "emb").as_posix()) in r
    assert len([line for line in r.splitlines() if line and not line.startswith("#")]) <= 6
    with pytest.raises(KeyError, match="write_obsm"):
        isk.tl.export_embeddings(isk.datasets.pbmc_cite800(), tmp_path / "none")
