import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import indiseek as isk

from .conftest import shared_file


def _sim(n=400, seed=0):
    return isk.datasets.synthetic_citeseq(
        n_cells=n, n_genes=300, n_proteins=15, n_types=10, seed=seed
    )


def test_outputs_and_counts_untouched():
    m = _sim()
    before = {k: m.mod[k].X.copy() for k in ("rna", "adt")}
    isk.pp.prepare(m, train_size=0.75, seed=1)
    for k in ("rna", "adt"):
        assert (m.mod[k].X != before[k]).nnz == 0
    assert m.mod["rna"].obsm["X_indiseek_pca"].shape == (400, 50)
    assert m.mod["adt"].obsm["X_indiseek_adt"].shape == (400, 15)
    assert m.mod["adt"].layers["indiseek_clr"].shape == (400, 15)
    assert (m.obs["indiseek_split"] == "train").sum() == 300
    params = m.uns["indiseek"]["prepare"]["params"]
    assert params["n_train"] == 300 and params["n_pcs"] == 50
    train = (m.obs["indiseek_split"] == "train").to_numpy()
    np.testing.assert_allclose(m.mod["adt"].obsm["X_indiseek_adt"][train].mean(0), 0, atol=1e-4)


def test_split_is_reproducible():
    a, b = _sim(), _sim()
    isk.pp.prepare(a, train_size=100, seed=5)
    isk.pp.prepare(b, train_size=100, seed=5)
    assert a.obs["indiseek_split"].equals(b.obs["indiseek_split"])
    assert (a.obs["indiseek_split"] == "train").sum() == 100


@pytest.mark.parametrize("adt_clr_axis", [0, 1])
def test_no_leakage_from_test_cells(adt_clr_axis):
    """Changing test cells' counts changes neither training inputs nor fitted loadings."""
    a = _sim(seed=2)
    b = _sim(seed=2)
    kw = dict(train_size=0.6, seed=3, adt_clr_axis=adt_clr_axis, adt_n_pcs="auto")
    isk.pp.prepare(a, **kw)
    test = (a.obs["indiseek_split"] == "test").to_numpy()
    rng = np.random.default_rng(0)
    for mod in ("rna", "adt"):
        x = b.mod[mod].X.toarray()
        x[test] = rng.poisson(50.0, size=x[test].shape) + 1
        b.mod[mod].X = sparse.csr_matrix(x)
    isk.pp.prepare(b, **kw)
    assert a.obs["indiseek_split"].equals(b.obs["indiseek_split"])
    train = ~test
    for mod, key in (("rna", "X_indiseek_pca"), ("adt", "X_indiseek_adt")):
        np.testing.assert_allclose(
            a.mod[mod].obsm[key][train], b.mod[mod].obsm[key][train], atol=1e-5
        )
        assert not np.allclose(a.mod[mod].obsm[key][test], b.mod[mod].obsm[key][test])
    sa, sb = a.uns["indiseek"]["prepare"], b.uns["indiseek"]["prepare"]
    np.testing.assert_allclose(sa["rna"]["loadings"], sb["rna"]["loadings"], atol=1e-6)
    np.testing.assert_array_equal(sa["rna"]["genes"], sb["rna"]["genes"])
    np.testing.assert_allclose(sa["adt"]["loadings"], sb["adt"]["loadings"], atol=1e-6)


def test_layers_dense_and_reference():
    m = _sim()
    for mod in ("rna", "adt"):
        m.mod[mod].layers["counts"] = m.mod[mod].X.toarray()
        m.mod[mod].X = np.zeros(m.mod[mod].shape, dtype=np.float32) - 1  # not counts
    isk.pp.prepare(m, rna_layer="counts", adt_layer="counts", train_size=0.5)
    ref = _sim()
    isk.pp.prepare(ref, train_size=0.5)
    np.testing.assert_allclose(
        m.mod["rna"].obsm["X_indiseek_pca"],
        ref.mod["rna"].obsm["X_indiseek_pca"],
        rtol=1e-3,
        atol=1e-3,
    )
    # apply the fitted preprocessing to new cells
    new = _sim(n=120, seed=9)
    isk.pp.prepare(new, reference=ref)
    assert new.mod["rna"].obsm["X_indiseek_pca"].shape == (120, 50)
    assert "indiseek_split" not in new.obs
    np.testing.assert_allclose(
        new.uns["indiseek"]["prepare"]["rna"]["loadings"],
        ref.uns["indiseek"]["prepare"]["rna"]["loadings"],
    )


def test_reference_missing_genes():
    ref = _sim()
    isk.pp.prepare(ref)
    new = _sim(n=50, seed=1)
    new.mod["rna"] = new.mod["rna"][:, 10:].copy()
    new.update()
    with pytest.raises(ValueError, match="'rna' lacks"):
        isk.pp.prepare(new, reference=ref)


def test_real_pbmc800():
    m = md.read_h5mu(shared_file("pbmc_wnn_paired800.h5mu"))
    isk.pp.prepare(m, train_size=0.5, seed=0, adt_n_pcs="auto")
    assert m.mod["rna"].obsm["X_indiseek_pca"].shape == (800, 50)
    assert m.mod["adt"].obsm["X_indiseek_adt"].shape == (800, 223)
    assert np.all(np.isfinite(m.mod["rna"].obsm["X_indiseek_pca"]))


def test_real_inhouse_all_genes_ten_proteins():
    m = md.read_h5mu(shared_file("inhouse_cite1372.h5mu"))
    x_before = m.mod["rna"].X.copy()
    isk.pp.prepare(m, train_size=0.7, seed=0)
    assert m.mod["rna"].var["indiseek_hvg"].sum() == 2000
    assert m.mod["adt"].obsm["X_indiseek_adt"].shape == (1372, 10)
    assert (m.mod["rna"].X != x_before).nnz == 0


# ---------------------------------------------------------------- bad input
def _bad(m, exc, match, **kw):
    with pytest.raises(exc, match=match):
        isk.pp.prepare(m, **kw)


def test_error_missing_modality():
    _bad(_sim(), KeyError, "'protein'", adt="protein")


def test_error_different_cells():
    m = _sim()
    m.mod["adt"] = m.mod["adt"][:350].copy()
    m.update()
    _bad(m, ValueError, "'rna'.*'adt'.*different cells")


def test_error_nan_and_negative():
    m = _sim()
    x = m.mod["adt"].X.toarray()
    x[0, 0] = np.nan
    m.mod["adt"].X = sparse.csr_matrix(x)
    _bad(m, ValueError, "'adt'.*NaN")
    m = _sim()
    x = m.mod["rna"].X.toarray()
    x[3, 3] = -2
    m.mod["rna"].X = x
    _bad(m, ValueError, "'rna'.*negative")


def test_error_inf():
    m = _sim()
    x = m.mod["rna"].X.toarray()
    x[1, 1] = np.inf
    m.mod["rna"].X = x
    _bad(m, ValueError, "'rna'.*infinite")


def test_error_zero_total_cells():
    m = _sim()
    x = m.mod["adt"].X.toarray()
    x[[4, 7]] = 0
    m.mod["adt"].X = sparse.csr_matrix(x)
    _bad(m, ValueError, "'adt'.*2 cells with zero total counts")


def test_error_too_many_pcs():
    _bad(_sim(), ValueError, "n_pcs=500 for modality 'rna'", n_pcs=500, train_size=0.5)
    _bad(_sim(), ValueError, "adt_n_pcs=40 for modality 'adt'", adt_n_pcs=40)


@pytest.mark.parametrize("size", [0, -0.5, 401, 10_000])
def test_error_train_size(size):
    _bad(_sim(), ValueError, "train_size", train_size=size)


def test_error_missing_layer():
    _bad(_sim(), KeyError, "layer 'counts'.*'rna'", rna_layer="counts")


def test_error_not_mudata():
    with pytest.raises(TypeError, match="MuData"):
        isk.pp.prepare(ad.AnnData(np.ones((3, 3))))


def test_bmcite_reads_local_file(tmp_path):
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {"celltype.l1": ["T", "B"] * 10, "celltype.l2": ["CD4", "Naive B"] * 10},
        index=[f"c{i}" for i in range(20)],
    )
    rna = ad.AnnData(sparse.csr_matrix(rng.poisson(2, (20, 30)).astype(np.float32)), obs=obs.copy())
    adt = ad.AnnData(sparse.csr_matrix(rng.poisson(5, (20, 25)).astype(np.float32)), obs=obs.copy())
    md.MuData({"RNA": rna, "ADT": adt}).write(tmp_path / "bm.h5mu")
    m = isk.datasets.bmcite(path=tmp_path / "bm.h5mu")
    assert set(m.mod) == {"rna", "adt"}
    assert m.mod["adt"].n_vars == 25
    assert list(m.obs["celltype.l2"][:2]) == ["CD4", "Naive B"]
    isk.pp.prepare(m)  # the reader's output is usable as is


def test_bmcite_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError):
        isk.datasets.bmcite(path=tmp_path / "missing.h5mu")
    monkeypatch.setattr("indiseek.datasets._bmcite.BMCITE_URL", None)
    with pytest.raises(RuntimeError, match="path="):
        isk.datasets.bmcite(cache_dir=tmp_path)
    m = md.MuData({"rna": ad.AnnData(np.ones((2, 2)))})
    m.write(tmp_path / "one.h5mu")
    with pytest.raises(KeyError, match="'adt'"):
        isk.datasets.bmcite(path=tmp_path / "one.h5mu")


def test_default_pcs_grow_with_training_cells():
    """One RNA PC per 25 training cells, between 50 and 200 (the paper's number)."""
    from indiseek.pp._transforms import default_n_pcs

    assert [default_n_pcs(n) for n in (100, 1250, 3330, 5000, 15000)] == [50, 50, 133, 200, 200]


def test_atlas_path_chunks_and_subsamples(monkeypatch):
    """Chunked application gives the same inputs; above FIT_MAX_CELLS the fit uses chunked
    moments and a seeded subset for the PCA, close to the fit on every training cell."""
    from indiseek.pp import _transforms as T

    mdata = isk.datasets.synthetic_citeseq(n_cells=900, n_genes=300, n_proteins=12, seed=3)
    kw = dict(train_size=0.8, seed=0, n_pcs=10, n_top_genes=150)
    isk.pp.prepare(mdata, **kw)
    full = mdata.mod["rna"].obsm["X_indiseek_pca"].copy()
    state = mdata.uns["indiseek"]["prepare"]["rna"]
    monkeypatch.setattr(T, "CHUNK_CELLS", 64)
    assert len(T.chunks(900)) == 15
    again = mdata.copy()
    isk.pp.prepare(again, **kw)
    np.testing.assert_array_equal(again.mod["rna"].obsm["X_indiseek_pca"], full)
    monkeypatch.setattr(T, "FIT_MAX_CELLS", 500)
    sub = mdata.copy()
    isk.pp.prepare(sub, **kw)
    s2 = sub.uns["indiseek"]["prepare"]["rna"]
    # variable genes from the 500-cell subset: mostly those of all 720 training cells
    assert len(np.intersect1d(s2["genes"], state["genes"])) >= 0.8 * len(s2["genes"])
    # means and scales over every training cell, chunk by chunk: as the one-block fit
    cells = np.flatnonzero(np.arange(900) % 5 != 2)  # not contiguous
    moments = T._chunked_moments(mdata.mod["rna"].X, cells, np.arange(300))
    ref = T.lognormalise(mdata.mod["rna"].X[cells]).toarray()
    np.testing.assert_allclose(moments[0], ref.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(moments[1], ref.std(0, ddof=1), rtol=1e-4, atol=1e-5)
    # the leading components span nearly the same space
    idx = pd.Index(state["genes"]).get_indexer(s2["genes"])
    common = idx >= 0
    a, b = state["loadings"][idx[common], :3], s2["loadings"][common, :3]
    overlap = np.linalg.svd(np.linalg.qr(a)[0].T @ np.linalg.qr(b)[0])[1]
    assert overlap.min() > 0.9, overlap


def _with_isotypes(seed=4):
    mdata = isk.datasets.synthetic_citeseq(n_cells=400, n_genes=200, n_proteins=12, seed=seed)
    adt = mdata.mod["adt"]
    rng = np.random.default_rng(0)
    iso = ad.AnnData(
        sparse.csr_matrix(rng.poisson(3.0, size=(adt.n_obs, 2)).astype(np.float32)),
        obs=adt.obs[[]],
        var=pd.DataFrame(index=["Mouse-IgG1-isotype-Ctrl", "rat_IgG2b"]),
    )
    with_iso = ad.concat([adt, iso], axis=1)
    with_iso.obs = adt.obs
    return md.MuData({"rna": mdata.mod["rna"], "adt": with_iso}), mdata


def test_isotype_controls_are_kept_out_of_the_model():
    from indiseek.pp._isotypes import isotype_mask
    from indiseek.pp._prepare import prepared_inputs

    controls = [
        "Mouse-IgG1κ-isotype-Ctrl",
        "rat_IgG2b",
        "HamsterIgG",
        "Mouse_IgG1_kappa_isotype_Ctrl",
        "IgG1_control_TotalSeqB",
        "ADT_Mouse-IgG1",
        "Armenian-Hamster-IgG",
    ]
    markers = ["CD3", "IgD", "IgM", "IgG Fc", "Mouse-IgD", "anti-mouse IgM", "HTO_1"]
    mask = isotype_mask(pd.Index(controls + markers), "auto", "adt")
    np.testing.assert_array_equal(mask, [True] * len(controls) + [False] * len(markers))
    with_iso, plain = _with_isotypes()
    with pytest.warns(UserWarning, match="rat_IgG2b"):
        isk.pp.prepare(with_iso, train_size=0.5, seed=0, n_pcs=10)
    isk.pp.prepare(plain, train_size=0.5, seed=0, n_pcs=10)
    adt = with_iso.mod["adt"]
    np.testing.assert_array_equal(adt.var["indiseek_isotype"], [False] * 12 + [True] * 2)
    assert adt.obsm["X_indiseek_adt"].shape == (400, 12)
    assert adt.layers["indiseek_clr"].shape == (400, 14)  # kept in the object
    # the isotypes do not enter the CLR denominators either: same inputs as without them
    np.testing.assert_allclose(
        adt.obsm["X_indiseek_adt"], plain.mod["adt"].obsm["X_indiseek_adt"], atol=1e-5
    )
    # new cells through the reference leave out the same proteins
    new = prepared_inputs(with_iso[:20].copy(), with_iso.uns["indiseek"]["prepare"])
    np.testing.assert_allclose(new["adt"], adt.obsm["X_indiseek_adt"][:20], atol=1e-6)
    kept = with_iso.copy()
    isk.pp.prepare(kept, train_size=0.5, seed=0, n_pcs=10, isotype_controls=None)
    assert kept.mod["adt"].obsm["X_indiseek_adt"].shape == (400, 14)
    named = with_iso.copy()
    isk.pp.prepare(named, train_size=0.5, seed=0, n_pcs=10, isotype_controls=["rat_IgG2b"])
    assert named.mod["adt"].var["indiseek_isotype"].sum() == 1
    with pytest.raises(ValueError, match="reference"):
        isk.pp.prepare(named.copy(), reference=with_iso, isotype_controls=None)


@pytest.mark.parametrize(
    ("value", "match"),
    [(["CD999"], "CD999"), ("isotype", "isotype_controls must be"), ("x", "'auto'")],
)
def test_isotype_controls_bad_values(value, match):
    with_iso, _ = _with_isotypes()
    with pytest.raises(ValueError, match=match):
        isk.pp.prepare(with_iso, isotype_controls=value)
    assert "indiseek" not in with_iso.uns


@pytest.mark.parametrize("rna_format", ["csr", "dense"])
def test_backed_mudata_prepares_as_in_memory(tmp_path, rna_format, monkeypatch):
    """A MuData read with backed=True: RNA counts read from disk in chunks, same inputs."""
    import hashlib

    from indiseek import _validate
    from indiseek.pp import _transforms

    # several chunks everywhere, and the fit on a subset of the training cells
    monkeypatch.setattr(_transforms, "CHUNK_CELLS", 90)
    monkeypatch.setattr(_transforms, "FIT_MAX_CELLS", 150)
    m = _sim()
    if rna_format == "dense":
        m.mod["rna"].X = m.mod["rna"].X.toarray()
    m.write(tmp_path / "m.h5mu")
    digest = hashlib.md5((tmp_path / "m.h5mu").read_bytes()).hexdigest()
    backed = md.read_h5mu(tmp_path / "m.h5mu", backed=True)
    assert backed.mod["rna"].isbacked
    isk.pp.prepare(m, train_size=0.5, seed=2)
    isk.pp.prepare(backed, train_size=0.5, seed=2)
    assert _validate.on_disk(backed.mod["rna"].X) and _validate.on_disk(backed.mod["adt"].X)
    for mod, key in (("rna", "X_indiseek_pca"), ("adt", "X_indiseek_adt")):
        np.testing.assert_array_equal(backed.mod[mod].obsm[key], m.mod[mod].obsm[key])
    assert backed.obs["indiseek_split"].equals(m.obs["indiseek_split"])
    if rna_format == "csr":  # and the rest of the pipeline runs on it
        isk.IndiSeek.setup_mudata(backed)
        model = isk.IndiSeek(backed, n_members=1, n_hidden=8, n_layers=2)
        model.train(max_epochs=1, clip_epochs=1, progress_bar=False)
        model.write_obsm(backed)
        assert backed.obsm["X_indiseek"].shape[0] == backed.n_obs
        isk.tl.wnn_weights(backed)  # reads the counts into memory for muon
        assert backed.mod["rna"].isbacked  # the file and the object stay backed
    assert hashlib.md5((tmp_path / "m.h5mu").read_bytes()).hexdigest() == digest


def test_backed_counts_are_checked_in_every_chunk(tmp_path, monkeypatch):
    from indiseek.pp import _transforms

    monkeypatch.setattr(_transforms, "CHUNK_CELLS", 150)
    m = _sim()
    x = m.mod["rna"].X.toarray()
    x[320, :] = 0  # an empty cell in the third chunk
    m.mod["rna"].X = x
    m.write(tmp_path / "m.h5mu")
    backed = md.read_h5mu(tmp_path / "m.h5mu", backed=True)
    with pytest.raises(ValueError, match=r"'rna' \(\.X\) has 1 cells with zero total.*"):
        isk.pp.prepare(backed, train_size=0.5)
    x[320, 3] = -1
    m.mod["rna"].X = x
    m.write(tmp_path / "n.h5mu")
    with pytest.raises(ValueError, match="negative values"):
        isk.pp.prepare(md.read_h5mu(tmp_path / "n.h5mu", backed=True), train_size=0.5)


def test_backed_normalised_or_csc_counts_are_named(tmp_path):
    m = _sim()
    m.mod["rna"].X = sparse.csr_matrix(np.log1p(m.mod["rna"].X.toarray()))
    m.write(tmp_path / "logn.h5mu")
    with pytest.raises(ValueError, match=r"'rna' \(\.X\) holds non-integer values \(e\.g\. \d"):
        isk.pp.prepare(md.read_h5mu(tmp_path / "logn.h5mu", backed=True), train_size=0.5)
    m = _sim()
    m.mod["rna"].X = sparse.csc_matrix(m.mod["rna"].X)
    m.write(tmp_path / "csc.h5mu")
    with pytest.warns(UserWarning, match="backed CSC matrix"):
        isk.pp.prepare(md.read_h5mu(tmp_path / "csc.h5mu", backed=True), train_size=0.5)
