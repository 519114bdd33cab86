"""Results that do not depend on the call: batch-independent coordinates, no hidden writes,
no global RNG changes, a loaded model that reads out like the trained one, two models side by
side in one object."""

import numpy as np
import pytest
import torch

import indiseek as isk

from ._snapshot import snapshot

SMALL = dict(n_shared=8, n_specific=6, n_hidden=16, n_layers=2, n_members=2)


@pytest.fixture(scope="module")
def fitted(small_mdata_factory):
    mdata = small_mdata_factory(n_cells=400, seed=3)
    model = isk.IndiSeek(mdata, **SMALL)
    model.train(max_epochs=2, progress_bar=False, seed=0, n_jobs=1)
    return model, mdata


def _raw_cells(mdata, idx):
    """New cells: the same counts as ``idx``, without anything prepare wrote."""
    sub = mdata[idx].copy()
    for mod in sub.mod.values():
        for key in list(mod.obsm):
            del mod.obsm[key]
    sub.uns.pop("indiseek", None)
    return sub


def test_a_cell_has_the_same_coordinates_in_any_batch(fitted):
    model, mdata = fitted
    whole = model.get_latent_representation(mdata)
    model.write_obsm(mdata)
    np.testing.assert_array_equal(mdata.obsm["X_indiseek"], whole)
    for idx in (np.array([5]), np.arange(5, 45), np.arange(0, 400, 7)):
        alone = model.get_latent_representation(_raw_cells(mdata, idx))
        np.testing.assert_array_equal(alone, whole[idx])  # bit for bit
    # the block scales are the training cells' and are kept with the model
    assert len(model.block_scale) == 4 * model.n_members


def test_new_cells_are_left_byte_identical(fitted):
    model, mdata = fitted
    new = _raw_cells(mdata, np.arange(30))
    before = snapshot(new)
    model.get_representations(new)
    model.get_latent_representation(new, "Z_adt")
    model.reconstruction_error(new)
    isk.tl.disentanglement(new, model, cells="all")
    assert snapshot(new) == before


def test_no_global_rng_change(small_mdata_factory):
    mdata = small_mdata_factory(n_cells=200, seed=4)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    model = isk.IndiSeek(mdata, **SMALL)
    model.train(max_epochs=1, progress_bar=False, seed=9, n_jobs=1)
    x = np.random.default_rng(0).normal(size=(200, 5)).astype(np.float32)
    isk.fit_specific(x, x[:, :2], n_specific=2, n_hidden=8, n_layers=2, max_epochs=1, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_loaded_model_reads_out_with_and_without_mdata(fitted, tmp_path):
    model, mdata = fitted
    model.save(tmp_path / "m")
    expected = model.get_representations()
    bare = isk.IndiSeek.load(tmp_path / "m")  # no MuData: the saved cells are used
    for key, value in bare.get_representations().items():
        np.testing.assert_array_equal(value, expected[key])
    np.testing.assert_array_equal(
        bare.get_latent_representation(), model.get_latent_representation()
    )
    assert bare.reconstruction_error() == pytest.approx(model.reconstruction_error())
    np.testing.assert_array_equal(bare.training_cells, model.training_cells)
    assert str(bare.device) == str(model.device)  # accelerator="auto", as train() has it

    # with a MuData that has lost its split column, the training cells are still known by name
    other = mdata.copy()
    del other.obs["indiseek_split"]
    attached = isk.IndiSeek.load(tmp_path / "m", other)
    np.testing.assert_array_equal(attached.training_cells, model.training_cells)
    dis = isk.tl.disentanglement(other, attached)
    n_test = int((mdata.obs["indiseek_split"] == "test").sum())
    assert (dis["n_cells"] == n_test).all()
    pd_expected = isk.tl.disentanglement(mdata, model)
    np.testing.assert_allclose(
        dis["r2_Z_to_C_other"].astype(float), pd_expected["r2_Z_to_C_other"].astype(float)
    )

    # saved without inputs: read-outs need the MuData, and say so
    model.save(tmp_path / "lean", save_inputs=False)
    lean = isk.IndiSeek.load(tmp_path / "lean")
    with pytest.raises(ValueError, match="pass mdata"):
        lean.get_representations()
    np.testing.assert_array_equal(
        lean.get_latent_representation(mdata), model.get_latent_representation(mdata)
    )
    with pytest.raises(RuntimeError, match="loaded"):
        lean.train()


def test_two_models_in_one_object(fitted):
    model, mdata = fitted
    other = isk.IndiSeek(mdata, **{**SMALL, "n_members": 1, "n_specific": 4})
    other.train(max_epochs=1, progress_bar=False, seed=1, n_jobs=1)
    model.write_obsm(mdata)
    other.write_obsm(mdata, key_added="X_lam")
    assert mdata.obsm["X_indiseek_Z_rna"].shape[1] == 2 * 6
    assert mdata.obsm["X_lam_Z_rna"].shape[1] == 4
    assert mdata.uns["indiseek"]["embeddings"]["X_lam"]["n_members"] == 1
    isk.tl.theta_score(mdata, "celltype.l2")
    isk.tl.theta_score(
        mdata, "celltype.l2", rna_key="X_lam_Z_rna", adt_key="X_lam_Z_adt", key_added="theta_lam"
    )
    assert mdata.uns["indiseek"]["theta"]["members"] == 2
    assert mdata.uns["indiseek"]["theta_lam"]["members"] == 1
    assert mdata.obsm["indiseek_theta_members"].shape[1] == 2
    assert not np.allclose(mdata.obs["indiseek_theta"].dropna(), mdata.obs["theta_lam"].dropna())
    # the held-out cells are scored by default, as cluster_metrics and compare_methods do
    test = (mdata.obs["indiseek_split"] == "test").to_numpy()
    assert mdata.obs["indiseek_theta"][test].notna().all()
    assert mdata.obs["indiseek_theta"][~test].isna().all()
    cm = isk.tl.cluster_metrics(mdata, "celltype.l2", obsm_keys=["X_indiseek", "X_lam"])
    assert (cm["n_cells"] == test.sum()).all()


def test_preprocessing_fit_survives_save_and_load(small_mdata_factory, tmp_path):
    """Counts in a named layer: new cells are prepared from that layer after load too."""
    from scipy import sparse

    mdata = isk.datasets.synthetic_citeseq(
        n_cells=300, n_genes=200, n_proteins=12, n_types=8, n_lineages=4, seed=5
    )
    rna = mdata.mod["rna"]
    rna.layers["raw"] = rna.X.copy()
    x = rna.X.toarray() if sparse.issparse(rna.X) else np.asarray(rna.X)
    rna.X = np.log1p(x / x.sum(1, keepdims=True) * 1e4)  # normalised values in .X
    isk.pp.prepare(mdata, rna_layer="raw", n_pcs=10, train_size=0.8)
    isk.IndiSeek.setup_mudata(mdata)
    model = isk.IndiSeek(mdata, **{**SMALL, "n_members": 1})
    model.train(max_epochs=1, progress_bar=False, n_jobs=1)
    model.save(tmp_path / "m")
    loaded = isk.IndiSeek.load(tmp_path / "m")
    assert loaded.prepare_state["params"]["rna_layer"] == "raw"
    new = _raw_cells(mdata, np.arange(20))
    np.testing.assert_array_equal(
        loaded.get_latent_representation(new), model.get_latent_representation(new)
    )
