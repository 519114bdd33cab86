"""Batches (donors) through preprocessing and the model, donor splits and cross-fitted θ."""

import warnings

import numpy as np
import pandas as pd
import pytest

import indiseek as isk
from indiseek.model._ensemble import crossfit_folds


def _donor_data(n_cells=900, seed=0):
    return isk.datasets.synthetic_bonemarrow(
        n_cells=n_cells, seed=seed, n_donors=3, donor_shared=0.5, donor_rna=1.0, donor_adt=0.5
    )


def _batch_means(x, donors, cells):
    return np.stack([x[cells & (donors == d)].mean(axis=0) for d in np.unique(donors)])


@pytest.fixture(scope="module")
def prepared():
    mdata = _donor_data()
    isk.pp.prepare(mdata, train_size=0.5, seed=0, batch_key="donor", n_pcs=20)
    return mdata


def _knn_accuracy(x, y):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return cross_val_score(KNeighborsClassifier(15), x, y, cv=3).mean()


def test_prepare_removes_donor_effects_and_keeps_types(prepared):
    plain = _donor_data()
    isk.pp.prepare(plain, train_size=0.5, seed=0, n_pcs=20)
    donors = prepared.obs["donor"].astype(str).to_numpy()
    types = prepared.obs["celltype.l2"].astype(str).to_numpy()
    for mod, key in (("rna", "X_indiseek_pca"), ("adt", "X_indiseek_adt")):
        before, after = plain.mod[mod].obsm[key], prepared.mod[mod].obsm[key]
        assert _knn_accuracy(after, donors) < _knn_accuracy(before, donors) - 0.15, mod
        assert _knn_accuracy(after, types) > _knn_accuracy(before, types) - 0.03, mod
    state = prepared.uns["indiseek"]["prepare"]
    assert state["rna"]["mean"].shape == (3, 2000)
    assert state["adt"]["mean"].shape == (3, 25)
    assert list(state["rna"]["batches"]) == ["donor0", "donor1", "donor2"]
    assert state["params"]["batch_key"] == "donor"
    assert len(state["local"]["codes"]) == state["params"]["n_train"]


def test_batch_means_are_learned_per_batch_and_unseen_batches_use_their_own():
    from indiseek.pp._batches import Batches
    from indiseek.pp._transforms import apply_adt, fit_adt

    rng = np.random.default_rng(0)
    codes = np.repeat([0, 1, 2], 50)
    clr = rng.normal(size=(150, 4)).astype(np.float32) + np.array([0.0, 2.0, -3.0])[codes, None]
    train = np.arange(150) < 100  # batch 2 has no training cells
    batches = Batches("b", np.array(["a", "b", "c"]), codes)
    state = fit_adt(clr, train, None, 0, "adt", batches)
    assert state["mean"].shape == (2, 4)
    out = apply_adt(clr, state, batches)
    for b in range(3):
        cells = (codes == b) & (train if b < 2 else True)
        np.testing.assert_allclose(out[cells].mean(axis=0), 0, atol=1e-5)


def test_without_batch_key_batches_stay_in_the_inputs():
    mdata = _donor_data()
    isk.pp.prepare(mdata, train_size=0.5, seed=0, n_pcs=20)
    donors = mdata.obs["donor"].astype(str).to_numpy()
    train = (mdata.obs["indiseek_split"] == "train").to_numpy()
    spread = np.abs(_batch_means(mdata.mod["adt"].obsm["X_indiseek_adt"], donors, train)).max()
    assert spread > 0.05  # the donors' ADT shifts are there to be removed
    assert mdata.uns["indiseek"]["prepare"]["params"]["batch_key"] == ""
    assert np.ndim(mdata.uns["indiseek"]["prepare"]["rna"]["mean"]) == 1


def test_split_is_drawn_within_each_batch(prepared):
    counts = prepared.obs.groupby(["donor", "indiseek_split"], observed=True).size().unstack()
    sizes = prepared.obs["donor"].value_counts()
    for donor, row in counts.iterrows():
        assert row["train"] == round(0.5 * sizes[donor])


def test_reference_applies_each_batch_its_own_means(prepared):
    new = _donor_data()[:200].copy()
    isk.pp.prepare(new, reference=prepared)
    np.testing.assert_array_equal(
        new.mod["rna"].obsm["X_indiseek_pca"], prepared.mod["rna"].obsm["X_indiseek_pca"][:200]
    )
    np.testing.assert_array_equal(
        new.mod["adt"].obsm["X_indiseek_adt"], prepared.mod["adt"].obsm["X_indiseek_adt"][:200]
    )
    other = _donor_data()[:200].copy()
    other.obs["donor"] = "donor9"
    with pytest.warns(UserWarning, match="donor9"):
        isk.pp.prepare(other, reference=prepared)
    assert np.isfinite(other.mod["adt"].obsm["X_indiseek_adt"]).all()
    del other.obs["donor"]
    with pytest.raises(KeyError, match="donor"):
        isk.pp.prepare(other, reference=prepared)


def test_held_out_donor_split():
    mdata = _donor_data()
    isk.pp.split_by_group(mdata, "donor", test=["donor2"])
    assert set(mdata.obs.loc[mdata.obs["donor"] == "donor2", "indiseek_split"]) == {"test"}
    with pytest.warns(UserWarning, match="donor2"):
        isk.pp.prepare(mdata, batch_key="donor", split_key="indiseek_split", n_pcs=20)
    state = mdata.uns["indiseek"]["prepare"]
    assert state["params"]["split_key"] == "indiseek_split"
    assert state["params"]["n_train"] == int((mdata.obs["donor"] != "donor2").sum())
    assert len(state["local"]["codes"]) == state["params"]["n_train"]
    isk.IndiSeek.setup_mudata(mdata)
    assert mdata.uns["indiseek"]["setup"]["split_key"] == "indiseek_split"
    assert mdata.uns["indiseek"]["setup"]["batch_key"] == "donor"
    with pytest.raises(ValueError, match="donor7"):
        isk.pp.split_by_group(mdata, "donor", test=["donor7"])
    with pytest.raises(ValueError, match="Every cell"):
        isk.pp.split_by_group(mdata, "donor", test=["donor0", "donor1", "donor2"])


def test_bad_batch_input():
    mdata = _donor_data(300)
    with pytest.raises(KeyError, match="batch_key='lane'"):
        isk.pp.prepare(mdata, batch_key="lane")
    mdata.obs["lane"] = pd.Series(["a"] * 299 + [None], index=mdata.obs_names, dtype=object)
    with pytest.raises(ValueError, match="no batch for 1 of 300"):
        isk.pp.prepare(mdata, batch_key="lane")
    mdata.obs["lane"] = ["a"] * 298 + ["b"] * 2
    mdata.obs["split"] = ["train"] * 299 + ["test"]
    with pytest.raises(ValueError, match=r"\['b'\].*single training cell"):
        isk.pp.prepare(mdata, batch_key="lane", split_key="split")
    with pytest.raises(ValueError, match="either train_size"):
        isk.pp.prepare(mdata, train_size=0.5, split_key="split")
    mdata.obs["split"] = ["train"] * 298 + ["val"] * 2
    with pytest.raises(ValueError, match="'val'"):
        isk.pp.prepare(mdata, split_key="split")
    isk.pp.prepare(mdata, n_pcs=10)
    with pytest.raises(ValueError, match=r"pp\.prepare was run with batch_key=None"):
        isk.IndiSeek.setup_mudata(mdata, batch_key="lane")


def test_model_takes_batches_as_covariate_and_round_trips(prepared, tmp_path):
    mdata = prepared.copy()
    isk.IndiSeek.setup_mudata(mdata)
    model = isk.IndiSeek(mdata, n_members=2)
    assert model.params["n_covariates"] == 3
    br = model.module[0].branches["rna"]
    assert br.decoder[0].in_features == 10 + 50 + 3
    assert br.q.mu[0].in_features == 50 + 3
    assert isk.IndiSeek(mdata, batch_covariate=False).params["n_covariates"] == 0
    model.train(max_epochs=2, progress_bar=False)
    err = model.reconstruction_error()
    model.save(tmp_path / "m")
    loaded = isk.IndiSeek.load(tmp_path / "m")
    assert loaded.reconstruction_error() == err
    assert list(loaded.batch_names) == ["donor0", "donor1", "donor2"]
    assert isk.IndiSeek.load(tmp_path / "m", mdata).reconstruction_error(mdata) == err


def test_crossfit_folds_are_balanced_within_groups():
    groups = np.repeat([0, 1, 2], [10, 7, 5])
    folds = crossfit_folds(22, 3, seed=0, groups=groups)
    assert np.bincount(folds).max() - np.bincount(folds).min() <= 1
    for g in range(3):
        per = np.bincount(folds[groups == g], minlength=3)
        assert per.max() - per.min() <= 1
    np.testing.assert_array_equal(folds, crossfit_folds(22, 3, seed=0, groups=groups))


def test_cross_fitted_theta_scores_every_cell_with_the_member_that_did_not_see_it(tmp_path):
    mdata = _donor_data(600)
    isk.pp.prepare(mdata, batch_key="donor", n_pcs=20)
    isk.IndiSeek.setup_mudata(mdata)
    with pytest.raises(ValueError, match="n_members >= 2"):
        isk.IndiSeek(mdata, n_members=1).train(max_epochs=1, cross_fit=True, progress_bar=False)
    model = isk.IndiSeek(mdata)
    model.train(max_epochs=2, cross_fit=True, progress_bar=False)
    assert model.train_params["cross_fit"]
    assert sorted(np.bincount(model.folds)) == [200, 200, 200]
    model.write_obsm(mdata)
    assert set(mdata.obs["indiseek_fold"]) == {"fold0", "fold1", "fold2"}
    isk.tl.theta_score(mdata, "celltype.l2")
    theta = mdata.obs["indiseek_theta"].to_numpy()
    assert np.isfinite(theta).all()
    assert mdata.uns["indiseek"]["theta"]["cross_fit"]
    per_member = mdata.obsm["indiseek_theta_members"]
    assert (np.isfinite(per_member).sum(axis=1) == 1).all()
    # fold 1 is scored by member 1 alone (neighbours among every cell in member 1's Z)
    fold = model.folds == 1
    z = model.get_representations()
    expected = isk.tl.theta_arrays(
        np.split(z["Z_rna"], 3, axis=1)[1],
        np.split(z["Z_adt"], 3, axis=1)[1],
        mdata.obs["celltype.l2"].to_numpy(),
    )[0][fold]
    np.testing.assert_allclose(theta[fold], expected)
    np.testing.assert_allclose(per_member[fold, 1], expected)
    model.save(tmp_path / "cf")
    np.testing.assert_array_equal(isk.IndiSeek.load(tmp_path / "cf").folds, model.folds)
    other = mdata.copy()
    isk.tl.theta_score(other, "celltype.l2", cross_fit=False)
    assert not other.uns["indiseek"]["theta"]["cross_fit"]
    del other.obs["indiseek_fold"]
    with pytest.raises(ValueError, match="cross_fit=True"):
        isk.tl.theta_score(other, "celltype.l2", cross_fit=True)


def test_same_seed_same_representations_with_batches(prepared):
    mdata = prepared.copy()
    isk.IndiSeek.setup_mudata(mdata)
    reps = []
    for _ in range(2):
        model = isk.IndiSeek(mdata, n_members=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.train(max_epochs=2, progress_bar=False)
        reps.append(model.get_representations()["Z_rna"])
    np.testing.assert_array_equal(reps[0], reps[1])


def test_prepare_warns_before_dropping_a_split_it_did_not_draw():
    mdata = _donor_data(300)
    isk.pp.split_by_group(mdata, "donor", test=["donor2"])
    with pytest.warns(UserWarning, match="removed mdata.obs"):
        isk.pp.prepare(mdata, n_pcs=10)
    assert "indiseek_split" not in mdata.obs


def test_split_key_is_carried_to_setup_and_theta():
    mdata = _donor_data(600)
    isk.pp.split_by_group(mdata, "donor", test=["donor2"], key_added="by_donor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        isk.pp.prepare(mdata, batch_key="donor", split_key="by_donor", n_pcs=10)
    with pytest.raises(ValueError, match="pass split_key='by_donor'"):
        isk.IndiSeek.setup_mudata(mdata, split_key="indiseek_split")
    isk.IndiSeek.setup_mudata(mdata)
    model = isk.IndiSeek(mdata, n_members=2)
    # the held-out donor has no covariate column of its own
    assert model.params["n_covariates"] == 2
    assert list(model.batch_names) == ["donor0", "donor1"]
    model.train(max_epochs=1, progress_bar=False)
    model.write_obsm(mdata)
    isk.tl.theta_score(mdata, "celltype.l2")  # subset="auto": the held-out donor
    scored = mdata.obs["indiseek_theta"].notna()
    assert set(mdata.obs.loc[scored, "donor"]) == {"donor2"}


def test_a_handful_of_cells_from_a_new_batch_keeps_its_biology(prepared):
    few = _donor_data()[:3].copy()
    few.obs["donor"] = "donor_new"
    with pytest.warns(UserWarning, match="fewer than 20 cells"):
        isk.pp.prepare(few, reference=prepared)
    adt = few.mod["adt"].obsm["X_indiseek_adt"]
    state = prepared.uns["indiseek"]["prepare"]["adt"]
    clr = few.mod["adt"].layers["indiseek_clr"]
    np.testing.assert_allclose(adt, clr - state["mean"].mean(axis=0), atol=1e-5)


def test_grouped_split_never_leaves_a_group_one_training_cell():
    groups = np.array([0, 0, 1, 1, 1, 1, 2])
    train = isk.pp.split_cells(7, 0.5, seed=0, groups=groups)
    per_group = np.bincount(groups[train], minlength=3)
    assert per_group[0] == 2 and per_group[1] == 2 and per_group[2] == 0


def test_cross_fit_refusals_and_recorded_k(tmp_path):
    mdata = _donor_data(90)
    isk.pp.prepare(mdata, batch_key="donor", n_pcs=10)
    isk.IndiSeek.setup_mudata(mdata)
    model = isk.IndiSeek(mdata)
    model.train(max_epochs=1, cross_fit=True, progress_bar=False)
    with pytest.raises(ValueError, match="clip_from"):
        isk.IndiSeek(mdata).train(max_epochs=1, cross_fit=True, clip_from=model)
    model.write_obsm(mdata)
    with pytest.raises(ValueError, match="cross-fitted ensemble of 3 members"):
        isk.tl.theta_score(mdata, "celltype.l2", members=1)
    with pytest.warns(UserWarning, match="90 scored cells searched; using k=89"):
        isk.tl.theta_score(mdata, "celltype.l2", k=100)
    assert mdata.uns["indiseek"]["theta"]["k"] == 89
    assert mdata.uns["indiseek"]["theta"]["pseudocount"] == 1 / 178
    # saved without inputs, loaded without data, saved again: the folds stay
    model.save(tmp_path / "a", save_inputs=False)
    isk.IndiSeek.load(tmp_path / "a").save(tmp_path / "b")
    np.testing.assert_array_equal(isk.IndiSeek.load(tmp_path / "b").folds, model.folds)
