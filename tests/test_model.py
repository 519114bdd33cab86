import pickle

import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch

import indiseek as isk

from ._snapshot import snapshot as _snapshot
from .conftest import shared_file

KEYS = [
    "X_indiseek_C_rna",
    "X_indiseek_C_adt",
    "X_indiseek_Z_rna",
    "X_indiseek_Z_adt",
    "X_indiseek",
]
SMALL = dict(n_shared=8, n_specific=6, n_hidden=32, n_layers=3, n_members=1)


@pytest.mark.parametrize(
    "objective", ["indiseek", "indiseek0", "factorized_cl", "infodisen", "clip"]
)
def test_every_objective_writes_obsm(small_mdata, objective):
    model = isk.IndiSeek(small_mdata, objective=objective, lam=1.0, **SMALL)
    model.train(max_epochs=2, progress_bar=False)
    model.write_obsm(small_mdata)
    n = small_mdata.n_obs
    assert small_mdata.obsm["X_indiseek_C_rna"].shape == (n, 8)
    z_dim = 8 if objective == "clip" else 6
    assert small_mdata.obsm["X_indiseek_Z_adt"].shape == (n, z_dim)
    assert small_mdata.obsm["X_indiseek"].shape == (n, 16 + 2 * z_dim)
    for key in KEYS:
        assert np.all(np.isfinite(small_mdata.obsm[key]))
    assert small_mdata.uns["indiseek"]["model"]["objective"] == objective
    assert set(model.history["step"]) == ({"clip"} if objective == "clip" else {"clip", "specific"})


def test_real_data_all_objectives():
    mdata = md.read_h5mu(shared_file("pbmc_wnn_paired800.h5mu"))
    isk.pp.prepare(mdata, train_size=0.7, seed=0)
    isk.IndiSeek.setup_mudata(mdata)
    for objective in ["indiseek", "indiseek0", "factorized_cl", "infodisen", "clip"]:
        model = isk.IndiSeek(mdata, objective=objective, n_hidden=32, n_layers=3)
        model.train(max_epochs=2, progress_bar=False)
        model.write_obsm(mdata)
        p = model.params  # every member's features side by side
        z_dim = p["n_shared"] if objective == "clip" else p["n_specific"]
        k = p["n_members"]
        assert mdata.obsm["X_indiseek"].shape == (800, k * (2 * p["n_shared"] + 2 * z_dim))
        assert mdata.obsm["X_indiseek_Z_rna"].shape == (800, k * z_dim)


def test_same_seed_same_representations(small_mdata):
    reps = []
    for _ in range(2):
        model = isk.IndiSeek(small_mdata, **SMALL)
        model.train(max_epochs=2, progress_bar=False, seed=7)
        reps.append(model.get_representations())
    for key in reps[0]:
        np.testing.assert_array_equal(reps[0][key], reps[1][key])
    other = isk.IndiSeek(small_mdata, **SMALL)
    other.train(max_epochs=2, progress_bar=False, seed=8)
    assert not np.allclose(other.get_representations()["Z_rna"], reps[0]["Z_rna"])


def test_save_load_roundtrip(trained, tmp_path):
    model, mdata = trained
    model.save(tmp_path / "m")
    loaded = isk.IndiSeek.load(tmp_path / "m", mdata)
    a, b = model.get_representations(mdata), loaded.get_representations(mdata)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    import json

    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["versions"]["torch"] == torch.__version__.split("+")[0] or cfg["versions"][
        "torch"
    ].startswith(torch.__version__.split("+")[0])
    assert cfg["params"]["lam"] == 10.0
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_pickle_payload_refused(trained, tmp_path, monkeypatch):
    model, _mdata = trained
    model.save(tmp_path / "m")
    tensors = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    tensors["evil"] = _Payload()
    with open(tmp_path / "m" / "model.pt", "wb") as fh:
        pickle.dump(tensors, fh)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="Refusing to load"):
        isk.IndiSeek.load(tmp_path / "m")
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_new_cells(trained, small_mdata_factory):
    model, mdata = trained
    new = isk.datasets.synthetic_citeseq(
        n_cells=150, n_genes=300, n_proteins=20, n_types=10, seed=11
    )
    before = _snapshot(new)
    reps = model.get_representations(new)  # prepared with the training fit on the fly
    assert reps["Z_rna"].shape == (150, 6 * model.n_members)
    assert _snapshot(new) == before  # nothing written to the user's object
    # identical cells give identical representations whether seen in training or not
    sub = mdata[:40].copy()
    for mod in ("rna", "adt"):
        for key in list(sub.mod[mod].obsm):
            del sub.mod[mod].obsm[key]
    sub.uns.pop("indiseek", None)
    np.testing.assert_allclose(
        model.get_representations(sub)["Z_adt"],
        model.get_representations(mdata)["Z_adt"][:40],
        atol=1e-4,
    )


def test_mismatched_features(trained):
    model, mdata = trained
    bad = mdata.copy()
    bad.mod["adt"].obsm["X_indiseek_adt"] = bad.mod["adt"].obsm["X_indiseek_adt"][:, :5]
    bad.uns["indiseek"].pop("prepare")
    with pytest.raises(ValueError, match=r"'adt'.*5 features.*trained on 20"):
        model.get_representations(bad)
    refit = mdata.copy()
    isk.pp.prepare(refit, n_pcs=30, seed=3, train_size=0.5)
    with pytest.raises(ValueError, match="different preprocessing fit"):
        model.get_representations(refit)


def test_errors(small_mdata_factory):
    mdata = isk.datasets.synthetic_citeseq(
        n_cells=200, n_genes=100, n_proteins=10, n_types=10, seed=0
    )
    with pytest.raises(KeyError, match="X_indiseek_pca"):
        isk.IndiSeek.setup_mudata(mdata)
    with pytest.raises(ValueError, match="setup_mudata"):
        isk.IndiSeek(mdata)
    m = small_mdata_factory(n_cells=200)
    with pytest.raises(ValueError, match="objective"):
        isk.IndiSeek(m, objective="vae")
    model = isk.IndiSeek(m, **SMALL)
    with pytest.raises(RuntimeError, match="not trained"):
        model.get_representations()
    with pytest.raises(ValueError, match="accelerator"):
        model.train(accelerator="tpu", progress_bar=False)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            model.train(accelerator="cuda:1", progress_bar=False)
    with pytest.raises(ValueError, match="max_epochs"):
        model.train(max_epochs=0, progress_bar=False)


def test_clip_reuse_is_exact(small_mdata):
    a = isk.IndiSeek(small_mdata, **SMALL)
    a.train(max_epochs=2, progress_bar=False, seed=3)
    b = isk.IndiSeek(small_mdata, objective="infodisen", **SMALL)
    b.train(max_epochs=2, progress_bar=False, seed=3, clip_from=a)
    c = isk.IndiSeek(small_mdata, objective="infodisen", **SMALL)
    c.train(max_epochs=2, progress_bar=False, seed=3)
    rb, rc = b.get_representations(), c.get_representations()
    np.testing.assert_array_equal(rb["C_rna"], rc["C_rna"])
    np.testing.assert_allclose(rb["Z_rna"], rc["Z_rna"], atol=1e-5)


@pytest.mark.slow
def test_indiseek_removes_cross_modal_information():
    """Z_i predicts C_other far worse than CLIP's own features do, and (Z_i, C_i) still reconstruct X_i.

    Strictly with Z standardised in training (a well-posed CLUB estimate). With the default
    plain encoders (the paper's) the CLUB estimate is fooled: Z_RNA still stays well below
    CLIP's features, but Z_ADT keeps most of C_RNA (R² ≈ 0.8 here) — a known limitation of the
    default, documented on the method page.
    """
    mdata = isk.datasets.synthetic_citeseq(n_cells=2000, seed=0)
    isk.pp.prepare(mdata, train_size=0.5, seed=0)
    isk.IndiSeek.setup_mudata(mdata)
    ind = isk.IndiSeek(mdata, lam=10.0, n_members=1, normalize_z=True)
    ind.train(progress_bar=False)
    clip = isk.IndiSeek(mdata, objective="clip", n_members=1)
    clip.train(progress_bar=False, clip_from=ind)
    default = isk.IndiSeek(mdata, n_members=1)
    default.train(progress_bar=False)
    d_ind = isk.tl.disentanglement(mdata, ind)
    d_clip = isk.tl.disentanglement(mdata, clip)
    d_default = isk.tl.disentanglement(mdata, default)
    print(d_ind, d_clip, d_default)
    assert d_default.loc["rna", "r2_Z_to_C_other"] < d_clip.loc["rna", "r2_Z_to_C_other"] - 0.2
    assert (d_default["rel_rec_error"] < 0.6).all()
    for mod in ("rna", "adt"):
        assert d_clip.loc[mod, "r2_Z_to_C_other"] > 0.6
        assert d_ind.loc[mod, "r2_Z_to_C_other"] < 0.35
        assert d_ind.loc[mod, "r2_Z_to_C_other"] < d_clip.loc[mod, "r2_Z_to_C_other"] - 0.4
        assert d_ind.loc[mod, "rel_rec_error"] < 0.6
    assert d_ind.loc["adt", "rel_rec_error"] < 0.3


def test_ensemble_members(small_mdata, tmp_path):
    """Member 0 is the single model; obsm, θ and clustering read the whole ensemble."""
    n = small_mdata.n_obs
    single = isk.IndiSeek(small_mdata, **SMALL)
    single.train(max_epochs=2, progress_bar=False, seed=5)
    ens = isk.IndiSeek(small_mdata, **{**SMALL, "n_members": 3})
    ens.train(max_epochs=2, progress_bar=False, seed=5)
    first, one = ens.get_representations(members=False), single.get_representations()
    for key in one:
        np.testing.assert_array_equal(first[key], one[key])
    every = ens.get_representations()
    assert every["Z_rna"].shape == (n, 18) and every["C_adt"].shape == (n, 24)
    np.testing.assert_array_equal(every["Z_adt"][:, :6], one["Z_adt"])
    blocks = np.split(every["Z_rna"], 3, axis=1)
    assert not np.allclose(blocks[1], blocks[2], atol=1e-3)
    train = (small_mdata.obs["indiseek_split"] == "train").to_numpy()
    for b in blocks:  # unit variance per dimension on the training cells
        np.testing.assert_allclose(b[train].var(0), 1, rtol=1e-3)
    assert sorted(ens.history["member"].unique()) == [0, 1, 2]

    small_mdata.obsm["X_indiseek_Z_rna_members"] = np.zeros((n, 3))  # as 0.1 wrote it
    ens.write_obsm(small_mdata)
    assert "X_indiseek_Z_rna_members" not in small_mdata.obsm
    np.testing.assert_array_equal(small_mdata.obsm["X_indiseek_Z_rna"], every["Z_rna"])
    assert small_mdata.obsm["X_indiseek"].shape == (n, 3 * (8 + 8 + 6 + 6))
    isk.tl.theta_score(small_mdata, "celltype.l2", subset="test")
    info = small_mdata.uns["indiseek"]["theta"]
    assert info["members"] == 3 and info["rna_key"] == "X_indiseek_Z_rna"
    test = (small_mdata.obs["indiseek_split"] == "test").to_numpy()
    lab = small_mdata.obs["celltype.l2"].astype(object).to_numpy()[test]
    per_member = [
        isk.tl.theta_arrays(zr[test], za[test], lab)[0]
        for zr, za in zip(
            np.split(every["Z_rna"], 3, axis=1), np.split(every["Z_adt"], 3, axis=1), strict=True
        )
    ]
    whole = isk.tl.theta_arrays(every["Z_rna"][test], every["Z_adt"][test], lab)[0]
    theta = small_mdata.obs["indiseek_theta"].to_numpy()
    np.testing.assert_allclose(theta[test], whole)  # one search over the whole ensemble
    np.testing.assert_allclose(
        small_mdata.obsm["indiseek_theta_members"][test], np.stack(per_member, 1)
    )
    table = isk.tl.rank_comparison(
        small_mdata,
        "celltype.l2",
        reference=small_mdata.uns["synthetic_truth"]["rna_importance"],
        min_cells=1,
    )
    assert (table["theta_min"] <= table["theta_max"]).all()
    per_type = pd.DataFrame(np.stack(per_member, 1)).groupby(lab).mean()
    np.testing.assert_allclose(table["theta_max"].sort_index(), per_type.max(1).sort_index())
    assert table[["beta_rna", "beta_adt"]].stack().between(0, 1).all()

    ens.save(tmp_path / "ens")
    loaded = isk.IndiSeek.load(tmp_path / "ens", small_mdata)
    np.testing.assert_array_equal(loaded.get_representations()["Z_adt"], every["Z_adt"])
    with pytest.raises(ValueError, match="n_members"):
        isk.IndiSeek(small_mdata, **SMALL).train(max_epochs=1, progress_bar=False, clip_from=ens)
    with pytest.raises(ValueError, match="member=5"):
        isk.pl.training_curves(ens.history, member=5)

    # A single model written afterwards: its Z alone is used.
    single.write_obsm(small_mdata)
    assert small_mdata.obsm["X_indiseek_Z_rna"].shape == (n, 6)
    isk.tl.theta_score(small_mdata, "celltype.l2", subset="test")
    assert small_mdata.uns["indiseek"]["theta"]["members"] == 1


def test_theta_members_must_split_evenly():
    z = np.zeros((20, 7))
    with pytest.raises(ValueError, match="members=2"):
        isk.tl.theta_arrays(z, z, np.array(["a", "b"] * 10), members=2)
    with pytest.raises(ValueError, match="members must be"):
        isk.tl.theta_arrays(z, z, np.array(["a", "b"] * 10), members=0)


def test_members_in_worker_processes_match_sequential(small_mdata):
    """Members trained in worker processes give exactly what training in this process gives."""
    reps = []
    for n_jobs in (1, 2):
        model = isk.IndiSeek(small_mdata, **{**SMALL, "n_members": 3})
        model.train(max_epochs=2, progress_bar=False, seed=4, n_jobs=n_jobs)
        assert model.train_params["n_jobs"] == n_jobs
        reps.append(model.get_representations())
    for key in reps[0]:
        np.testing.assert_array_equal(reps[0][key], reps[1][key])
    for bad in (0, -2, True, 1.5):
        with pytest.raises(ValueError, match="n_jobs"):
            isk.IndiSeek(small_mdata, **SMALL).train(max_epochs=1, progress_bar=False, n_jobs=bad)
