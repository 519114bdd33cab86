import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import indiseek as isk


def test_structure_and_determinism():
    a = isk.datasets.synthetic_citeseq(n_cells=300, n_genes=200, n_proteins=12, n_types=10, seed=3)
    b = isk.datasets.synthetic_citeseq(n_cells=300, n_genes=200, n_proteins=12, n_types=10, seed=3)
    c = isk.datasets.synthetic_citeseq(n_cells=300, n_genes=200, n_proteins=12, n_types=10, seed=4)
    assert a.mod["rna"].shape == (300, 200) and a.mod["adt"].shape == (300, 12)
    for mod in ("rna", "adt"):
        x = a.mod[mod].X
        assert sparse.issparse(x)
        assert np.all(x.data >= 0) and np.allclose(x.data, np.round(x.data))
        assert (b.mod[mod].X != x).nnz == 0
    assert (c.mod["rna"].X != a.mod["rna"].X).nnz > 0
    assert a.obs["celltype.l1"].nunique() == 5
    assert a.obs["celltype.l2"].nunique() <= 10
    truth = a.uns["synthetic_truth"]
    assert set(truth.columns) >= {"w_shared", "w_rna", "w_adt", "rna_importance", "celltype.l1"}
    np.testing.assert_allclose(truth[["w_shared", "w_rna", "w_adt"]].sum(1), 1.0)
    # pure archetypes exist: types defined by RNA alone, ADT alone and shared signal alone
    assert (
        (truth["w_rna"] == 1).any()
        and (truth["w_adt"] == 1).any()
        and (truth["w_shared"] == 1).any()
    )
    for key in ("latent_shared", "latent_rna_specific", "latent_adt_specific"):
        assert a.obsm[key].shape == (300, 8)


def test_library_sizes_vary_and_adt_has_background():
    m = isk.datasets.synthetic_citeseq(n_cells=500, seed=0)
    lib = np.asarray(m.mod["rna"].X.sum(1)).ravel()
    assert lib.std() / lib.mean() > 0.2
    # ambient background: almost every protein is detected in almost every cell
    assert (m.mod["adt"].X.toarray() > 0).mean() > 0.9


@pytest.mark.parametrize(
    "kw",
    [
        {"n_cells": 5},
        {"n_types": 3, "n_lineages": 5},
        {"separation": -1},
        {"programmes": "lineage"},
        {"min_shared": 1.5},
        {"shared_noise": 0},
    ],
)
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        isk.datasets.synthetic_citeseq(**kw)


def _rho(mdata, zr, za, mask):
    lab = mdata.obs["celltype.l2"].astype(object).to_numpy()[mask]
    theta, _, _ = isk.tl.theta_arrays(zr[mask], za[mask], lab, k=10)
    truth = mdata.uns["synthetic_truth"]["rna_importance"]
    return isk.tl.rank_table(lab, theta, reference=truth).attrs["spearman"]


def test_truth_is_recoverable_and_rewards_disentanglement():
    """θ from the true specific factors tracks the stored truth; θ from per-modality PCA does not."""
    mdata = isk.datasets.synthetic_citeseq(seed=0)
    isk.pp.prepare(mdata, seed=0)
    everyone = np.ones(mdata.n_obs, dtype=bool)
    rho_true = _rho(
        mdata, mdata.obsm["latent_rna_specific"], mdata.obsm["latent_adt_specific"], everyone
    )
    rho_pca = _rho(
        mdata,
        mdata.mod["rna"].obsm["X_indiseek_pca"],
        mdata.mod["adt"].obsm["X_indiseek_adt"],
        everyone,
    )
    print(f"rho true latents {rho_true:.3f}, rho PCA {rho_pca:.3f}")
    assert rho_true >= 0.8
    assert rho_pca < rho_true - 0.15


def test_variants_keep_truth_and_change_structure():
    kw = {"n_cells": 2000, "n_genes": 200, "n_proteins": 12, "n_types": 10, "seed": 2}
    base = isk.datasets.synthetic_citeseq(**kw)
    per_type = isk.datasets.synthetic_citeseq(programmes="per_type", **kw)
    floor = isk.datasets.synthetic_citeseq(min_shared=0.5, **kw)
    for m in (per_type, floor):
        pd.testing.assert_frame_equal(m.uns["synthetic_truth"], base.uns["synthetic_truth"])
    assert floor.uns["synthetic_params"]["min_shared"] == 0.5

    def sibling_distance(m, key, lineage):
        lab = m.obs["celltype.l2"].to_numpy()
        means = pd.DataFrame(m.obsm[key]).groupby(lab, observed=True).mean()
        names = [t for t in means.index if t.startswith(lineage + "-")]
        return np.linalg.norm(means.loc[names[0]] - means.loc[names[1]])

    # min_shared separates every pair of siblings on the shared factor as well
    truth = base.uns["synthetic_truth"]
    lin = truth.index[(truth["w_shared"] == 0)][0].split("-")[0]
    assert sibling_distance(floor, "latent_shared", lin) > sibling_distance(
        base, "latent_shared", lin
    )
    # recurring programmes: sibling b of lineages 4 and 5 share one RNA-specific direction;
    # with per-type programmes they do not
    a, b = "lineage4-b", "lineage5-b"
    assert truth.loc[[a, b], "w_rna"].min() > 0.5

    def cosine(m):
        lab = m.obs["celltype.l2"].to_numpy()
        means = pd.DataFrame(m.obsm["latent_rna_specific"]).groupby(lab).mean()
        u, v = means.loc[a].to_numpy(), means.loc[b].to_numpy()
        return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    assert cosine(base) > 0.8
    assert cosine(per_type) < cosine(base) - 0.3


def test_shared_noise_spreads_types_on_the_shared_factor_only():
    kw = {"n_cells": 2000, "n_genes": 200, "n_proteins": 12, "n_types": 10, "seed": 3}
    base = isk.datasets.synthetic_citeseq(**kw)
    spread = isk.datasets.synthetic_citeseq(shared_noise=2.5, **kw)
    pd.testing.assert_frame_equal(spread.uns["synthetic_truth"], base.uns["synthetic_truth"])
    assert spread.uns["synthetic_params"]["shared_noise"] == 2.5
    lab = base.obs["celltype.l2"].to_numpy()

    def within_sd(m, key):
        x = pd.DataFrame(m.obsm[key])
        return float((x - x.groupby(lab).transform("mean")).to_numpy().std())

    assert within_sd(spread, "latent_shared") == pytest.approx(2.5, rel=0.05)
    assert within_sd(base, "latent_shared") == pytest.approx(1.0, rel=0.05)
    for key in ("latent_rna_specific", "latent_adt_specific"):
        assert within_sd(spread, key) == pytest.approx(within_sd(base, key), rel=0.05)


def test_truth_table_indexes_labels():
    m = isk.datasets.synthetic_citeseq(n_cells=400, seed=1)
    truth = m.uns["synthetic_truth"]
    assert set(m.obs["celltype.l2"].unique()) <= set(truth.index)
    assert isinstance(truth, pd.DataFrame)


def test_bonemarrow_family():
    """27 types in 5 lineages; the truth is the log-ratio of the specific offsets; seeded."""
    a = isk.datasets.synthetic_bonemarrow(n_cells=800, seed=3)
    b = isk.datasets.synthetic_bonemarrow(n_cells=800, seed=3)
    assert a.mod["rna"].shape == (800, 2000) and a.mod["adt"].shape == (800, 25)
    assert (a.mod["rna"].X != b.mod["rna"].X).nnz == 0
    truth = a.uns["synthetic_truth"]
    assert len(truth) == 27 and truth["celltype.l1"].nunique() == 5
    np.testing.assert_allclose(truth["rna_importance"], np.log(truth["len_rna"] / truth["len_adt"]))
    # T-cell subtypes are protein-defined, progenitors RNA-defined, as described
    assert (truth.loc[truth["celltype.l1"] == "T", "rna_importance"] < 0).all()
    assert (truth.loc[truth["celltype.l1"] == "Progenitor", "rna_importance"] > 0).all()
    assert a.obsm["latent_rna_specific"].shape == (800, 6)
    with pytest.raises(ValueError, match="n_cells"):
        isk.datasets.synthetic_bonemarrow(n_cells=5)


def test_bonemarrow_specific_strength():
    """Same draws at every strength (same latents); 1 is the default data."""
    a = isk.datasets.synthetic_bonemarrow(n_cells=300, seed=3)
    one = isk.datasets.synthetic_bonemarrow(n_cells=300, seed=3, specific_strength=1.0)
    two = isk.datasets.synthetic_bonemarrow(n_cells=300, seed=3, specific_strength=2.0)
    assert (a.mod["rna"].X != one.mod["rna"].X).nnz == 0
    assert (a.mod["rna"].X != two.mod["rna"].X).nnz > 0
    np.testing.assert_array_equal(a.obsm["latent_rna_specific"], two.obsm["latent_rna_specific"])
    assert two.uns["synthetic_params"]["specific_strength"] == 2.0
    with pytest.raises(ValueError, match="specific_strength"):
        isk.datasets.synthetic_bonemarrow(n_cells=300, specific_strength=-1)


def test_bonemarrow_donors():
    """Donor effects come from their own stream: with zero sizes the data are unchanged."""
    plain = isk.datasets.synthetic_bonemarrow(n_cells=600, seed=2)
    zero = isk.datasets.synthetic_bonemarrow(n_cells=600, seed=2, n_donors=3)
    assert (plain.mod["rna"].X != zero.mod["rna"].X).nnz == 0
    assert (plain.mod["adt"].X != zero.mod["adt"].X).nnz == 0
    assert "donor" not in plain.obs and list(zero.obs["donor"].cat.categories) == [
        "donor0",
        "donor1",
        "donor2",
    ]
    kw = dict(n_cells=600, seed=2, n_donors=3)
    only_rna = isk.datasets.synthetic_bonemarrow(**kw, donor_rna=1.5)
    assert (only_rna.mod["rna"].X != plain.mod["rna"].X).nnz > 0
    shifted = isk.datasets.synthetic_bonemarrow(**kw, donor_shared=1.0, donor_adt=1.0)
    d = shifted.obs["donor"].to_numpy()
    latent = shifted.obsm["latent_shared"] - plain.obsm["latent_shared"]
    means = np.array([latent[d == k].mean(0) for k in ("donor0", "donor1", "donor2")])
    assert np.abs(means[0] - means[1]).max() > 0.1  # donors move the shared factor
    np.testing.assert_allclose(
        latent[d == "donor0"], means[[0]].repeat((d == "donor0").sum(), 0), atol=1e-5
    )
    assert shifted.uns["synthetic_params"]["donor_adt"] == 1.0
    truth = shifted.uns["synthetic_donors"]
    np.testing.assert_allclose(means, truth["shared_shift"], atol=1e-5)
    assert truth["adt_shift"].shape == (3, 25) and "rna_shift" not in truth
    assert 0 < (truth["adt_shift"] != 0).any(axis=0).sum() < 25  # about a fifth of proteins
    with pytest.raises(ValueError, match="n_donors >= 2"):
        isk.datasets.synthetic_bonemarrow(n_cells=100, donor_rna=1.0)
    assert (
        shifted.uns["synthetic_truth"]["rna_importance"]
        == plain.uns["synthetic_truth"]["rna_importance"]
    ).all()
    with pytest.raises(ValueError, match="donor_rna"):
        isk.datasets.synthetic_bonemarrow(n_cells=100, donor_rna=-1.0)
