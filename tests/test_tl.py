import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss

import indiseek as isk

from .conftest import shared_file


def _mdata_with(z_rna, z_adt, labels):
    import anndata as ad

    n = len(labels)
    names = [f"c{i}" for i in range(n)]
    m = md.MuData(
        {
            "rna": ad.AnnData(np.ones((n, 2), np.float32), obs=pd.DataFrame(index=names)),
            "adt": ad.AnnData(np.ones((n, 2), np.float32), obs=pd.DataFrame(index=names)),
        }
    )
    m.obs["label"] = labels
    m.obsm["X_indiseek_Z_rna"] = np.asarray(z_rna, np.float32)
    m.obsm["X_indiseek_Z_adt"] = np.asarray(z_adt, np.float32)
    return m


def test_theta_direction(rng):
    labels = np.repeat(["a", "b"], 50)
    sep = np.where(labels == "a", 0.0, 10.0)[:, None] + rng.normal(size=(100, 2))
    noise = rng.normal(size=(100, 2))
    m = _mdata_with(sep, noise, labels)
    isk.tl.theta_score(m, label_key="label", k=10)
    assert m.obs["indiseek_theta"].mean() > 0.3
    assert m.obs["indiseek_beta_rna"].min() >= 0.9
    m2 = _mdata_with(noise, sep, labels)
    isk.tl.theta_score(m2, label_key="label", k=10)
    assert m2.obs["indiseek_theta"].mean() < -0.3


def test_theta_beta_zero_single_cell_type_and_nan_labels(rng):
    labels = np.array(["a"] * 30 + ["b"] * 30 + ["solo"] + [None] * 5, dtype=object)
    z = rng.normal(size=(66, 3))
    m = _mdata_with(z, z[:, ::-1], labels)
    isk.tl.theta_score(m, label_key="label", k=5)
    theta = m.obs["indiseek_theta"].to_numpy()
    assert np.isnan(theta[-5:]).all()  # unlabelled: not scored
    assert np.isfinite(theta[:-5]).all()  # β = 0 never gives inf/NaN
    assert theta[60] == 0.0  # a single-cell type has β = 0 in both spaces
    assert m.obs["indiseek_beta_rna"].iloc[60] == 0.0
    assert m.uns["indiseek"]["theta"]["pseudocount"] == pytest.approx(0.1)


def test_theta_k_too_large_and_missing_obsm(rng):
    m = _mdata_with(rng.normal(size=(6, 2)), rng.normal(size=(6, 2)), list("aabbcc"))
    with pytest.warns(UserWarning, match="k=10"):
        isk.tl.theta_score(m, label_key="label", k=10)
    assert m.uns["indiseek"]["theta"]["k"] == 5
    del m.obsm["X_indiseek_Z_adt"]
    with pytest.raises(KeyError, match="X_indiseek_Z_adt"):
        isk.tl.theta_score(m, label_key="label")
    with pytest.raises(KeyError, match="no_such_label"):
        isk.tl.theta_score(m, label_key="no_such_label", adt_key="X_indiseek_Z_rna")


def test_theta_subset_and_labels_from_modality(trained):
    _model, mdata = trained
    mdata.mod["rna"].obs["ct"] = mdata.obs["celltype.l2"].to_numpy()
    isk.tl.theta_score(mdata, label_key="rna:ct", subset="test")
    test = (mdata.obs["indiseek_split"] == "test").to_numpy()
    assert np.isfinite(mdata.obs["indiseek_theta"][test]).all()
    assert mdata.obs["indiseek_theta"][~test].isna().all()
    exact = mdata.obs["indiseek_theta"].copy()
    isk.tl.theta_score(mdata, label_key="celltype.l2", subset="test", method="approx")
    agree = np.isclose(exact[test], mdata.obs["indiseek_theta"][test]).mean()
    assert agree > 0.9


def test_rank_comparison_exclusion_and_reference(trained):
    _model, mdata = trained
    isk.tl.theta_score(mdata, label_key="celltype.l2", subset=None)
    truth = mdata.uns["synthetic_truth"]["rna_importance"]
    table = isk.tl.rank_comparison(
        mdata, groupby="celltype.l2", reference=truth, parent_key="celltype.l1", min_cells=40
    )
    small = table.index[table["n_cells"] < 40]
    assert set(table.attrs["excluded"]) == set(small)
    assert table.loc[small, "theta_rank"].isna().all()
    inc = table[table["included"]]
    rho = ss.spearmanr(inc["mean_theta"], inc["reference"]).statistic
    assert table.attrs["spearman"] == pytest.approx(rho)
    assert 0 <= table.attrs["pvalue"] <= 1
    assert "parent" in table
    with pytest.raises(KeyError, match="indiseek_nothing"):
        isk.tl.rank_comparison(mdata, "celltype.l2", theta_key="indiseek_nothing")


def test_rank_comparison_weights_column(trained):
    _model, mdata = trained
    isk.tl.theta_score(mdata, label_key="celltype.l2")
    mdata.obs["w"] = mdata.obs["indiseek_theta"] * 2 + 1  # a monotone weight: ρ = 1
    table = isk.tl.rank_comparison(mdata, "celltype.l2", weight_key="w", min_cells=1)
    assert table.attrs["spearman"] == pytest.approx(1.0)


def test_cluster_metrics(rng):
    labels = np.repeat(["a", "b", "c"], 40)
    centers = {"a": 0, "b": 10, "c": 20}
    good = np.array([centers[v] for v in labels])[:, None] + rng.normal(size=(120, 2))
    m = _mdata_with(good, rng.normal(size=(120, 2)), labels)
    df = isk.tl.cluster_metrics(
        m, label_key="label", obsm_keys=["X_indiseek_Z_rna", "X_indiseek_Z_adt"]
    )
    assert list(df.columns) == ["embedding", "label_key", "n_clusters", "n_cells", "ARI", "NMI"]
    assert df.loc[0, "ARI"] > 0.95 and df.loc[1, "ARI"] < 0.2
    assert df.loc[0, "n_clusters"] == 3


def test_wnn_weights_from_csv(trained, tmp_path):
    _model, mdata = trained
    w = pd.DataFrame({"RNA.weight": np.linspace(0, 1, mdata.n_obs)}, index=mdata.obs_names)
    w.to_csv(tmp_path / "w.csv")
    isk.tl.wnn_weights(mdata, weights=tmp_path / "w.csv")
    np.testing.assert_allclose(mdata.obs["rna:mod_weight"], w["RNA.weight"])
    np.testing.assert_allclose(mdata.obs["adt:mod_weight"], 1 - w["RNA.weight"])
    with pytest.raises(ValueError, match="lack 1"):
        isk.tl.wnn_weights(mdata, weights=w["RNA.weight"].iloc[1:])
    with pytest.raises(KeyError, match=r"ADT\.weights"):
        isk.tl.wnn_weights(mdata, weights=tmp_path / "w.csv", column="ADT.weights")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pbmc_wnn_paired800", "inhouse_cite1372"])
def test_wnn_agrees_with_seurat(name):
    """Per-type mean RNA weights from muon's WNN rank like Seurat's (types with ≥ 10 cells)."""
    mdata = md.read_h5mu(shared_file(f"{name}.h5mu"))
    seurat = pd.read_csv(shared_file(f"seurat_wnn/{name}.csv"), index_col=0)["RNA.weight"]
    isk.tl.wnn_weights(mdata, n_pcs_adt=18 if name.startswith("pbmc") else 9)
    df = pd.DataFrame(
        {
            "ours": mdata.obs["rna:mod_weight"],
            "seurat": seurat.reindex(mdata.obs_names),
            "type": mdata.obs["celltype"],
        }
    )
    g = df.groupby("type", observed=True)
    means = g.mean()[g.size() >= 10]
    rho = ss.spearmanr(means["ours"], means["seurat"]).statistic
    print(name, rho)
    assert rho >= 0.8


def test_compare_methods(small_mdata):
    truth = small_mdata.uns["synthetic_truth"]["rna_importance"]
    df = isk.tl.compare_methods(
        small_mdata,
        label_key="celltype.l2",
        objectives=["indiseek", "infodisen", "clip"],
        lams=[1.0, 10.0],
        seeds=[0, 1],
        reference=truth,
        min_cells=5,
        progress_bar=False,
        model_kwargs=dict(n_shared=8, n_specific=6, n_hidden=16, n_layers=2),
        train_kwargs=dict(max_epochs=2),
    )
    assert len(df) == 2 * (2 + 2 + 1)
    assert {"spearman", "ARI_all", "NMI_Z_rna", "train_time_s"} <= set(df.columns)
    assert df["clip_reused"].sum() == len(df) - 2
    assert df.loc[df["objective"] == "clip", "lam"].isna().all()
    assert "X_indiseek_Z_rna" not in small_mdata.obsm


def test_predictability(rng):
    x = rng.normal(size=(400, 3))
    assert isk.tl.predictability(x, x[:, :2]) > 0.8
    assert isk.tl.predictability(x, rng.normal(size=(400, 2))) < 0.1


def test_second_theta_keeps_the_models(trained):
    """θ from the prepared PCs under another key leaves the model's θ, β and members alone."""
    _, mdata = trained
    isk.tl.theta_score(mdata, label_key="celltype.l2", subset="test")
    kept = mdata.obs[["indiseek_theta", "indiseek_beta_rna"]].copy()
    members = mdata.obsm["indiseek_theta_members"].copy()
    isk.tl.theta_score(
        mdata,
        label_key="celltype.l2",
        subset="test",
        rna_key="rna:X_indiseek_pca",
        adt_key="adt:X_indiseek_adt",
        key_added="theta_pca",
    )
    assert {"theta_pca", "theta_pca_beta_rna", "theta_pca_beta_adt"} <= set(mdata.obs)
    assert mdata.obsm["theta_pca_members"].shape == (mdata.n_obs, 1)
    pd.testing.assert_frame_equal(mdata.obs[["indiseek_theta", "indiseek_beta_rna"]], kept)
    np.testing.assert_array_equal(mdata.obsm["indiseek_theta_members"], members)
    with pytest.raises(KeyError, match="rna:nope"):
        isk.tl.theta_score(mdata, "celltype.l2", rna_key="rna:nope", adt_key="adt:X_indiseek_adt")


def test_theta_combine_mean_averages_members(trained):
    """combine="mean" is the members' θ averaged; the default searches the whole ensemble."""
    _, mdata = trained
    isk.tl.theta_score(mdata, label_key="celltype.l2", subset="test", combine="mean")
    members = mdata.obsm["indiseek_theta_members"]
    test = (mdata.obs["indiseek_split"] == "test").to_numpy()
    np.testing.assert_allclose(
        mdata.obs["indiseek_theta"].to_numpy()[test], members[test].mean(axis=1)
    )
    assert mdata.uns["indiseek"]["theta"]["combine"] == "mean"
    with pytest.raises(ValueError, match="combine"):
        isk.tl.theta_score(mdata, "celltype.l2", combine="median")


def test_theta_by_group_and_label_predictability():
    import anndata as ad

    rng = np.random.default_rng(0)
    n = 600
    types = np.repeat(list("abcdef"), n // 6)
    donor = np.tile(["d0", "d1", "d2"], n // 3)
    theta = pd.Series(types).map(dict(zip("abcdef", range(6), strict=True))).to_numpy() * 0.5
    theta = theta + rng.normal(0, 0.1, n)
    theta[(donor == "d2") & (types == "a")] = np.nan  # unscored cells are left out
    z = rng.normal(size=(n, 4))
    c = np.c_[z[:, :2], (donor == "d1") * 5.0]  # C knows the donor, Z does not
    mdata = md.MuData({"rna": ad.AnnData(np.zeros((n, 3))), "adt": ad.AnnData(np.zeros((n, 3)))})
    mdata.obs["celltype"] = types
    mdata.obs["donor"] = donor
    mdata.obs["indiseek_theta"] = theta
    mdata.obsm["X_z"] = z
    mdata.obsm["X_c"] = c
    table = isk.tl.theta_by_group(mdata, "celltype", "donor")
    assert list(table.columns) == ["d0", "d1", "d2"] and np.isnan(table.loc["a", "d2"])
    assert table.attrs["min_agreement"] > 0.99
    shuffled = mdata.copy()
    shuffled.obs["indiseek_theta"] = rng.permutation(theta)
    assert isk.tl.theta_by_group(shuffled, "celltype", "donor").attrs["min_agreement"] < 0.9
    acc = isk.tl.label_predictability(mdata, "donor", ["X_z", "X_c"])
    assert acc["balanced_chance"].iloc[0] == pytest.approx(1 / 3)
    assert acc.loc["X_z", "above_chance"] < 0.1 and acc.loc["X_c", "above_chance"] > 0.2
    with pytest.raises(ValueError, match="theta_score"):
        isk.tl.theta_by_group(mdata, "celltype", "donor", theta_key="nope")
    mdata.obs["tiny"] = ["x"] * (n - 2) + ["y"] * 2
    with pytest.raises(ValueError, match="n_splits"):
        isk.tl.label_predictability(mdata, "tiny", "X_z")
