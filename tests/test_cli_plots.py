import json
import subprocess
import sys

import matplotlib
import mudata as md
import numpy as np
import pytest

matplotlib.use("Agg")

import indiseek as isk
from indiseek.cli import main

from .conftest import shared_file


def test_help():
    out = subprocess.run(
        [sys.executable, "-m", "indiseek.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "demo" in out.stdout and "fit" in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "indiseek.cli", "fit", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--lam" in out.stdout and "--objective" in out.stdout and "--rna-layer" in out.stdout


def test_demo_on_the_bundled_pbmc_data(tmp_path):
    """`indiseek demo --data pbmc`: real cells, θ ranked against Seurat's WNN weights."""
    args = ["demo", "--data", "pbmc", "--out", str(tmp_path), "--epochs", "2", "--members", "1"]
    assert main([*args, "--quiet"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["theta_reference"] == "seurat_rna_weight"
    assert -1 <= metrics["theta_spearman"] <= 1 and -1 <= metrics["theta_spearman_pca"] <= 1
    assert {r["embedding"] for r in metrics["clustering"]} >= {"X_indiseek"}
    assert "Hao et al." in metrics["data"]["attribution"]
    figs = {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"theta_ranking.png", "rank_scatter.png", "embeddings_umap.png"} <= figs
    assert md.read_h5mu(tmp_path / "demo.h5mu").obsm["X_indiseek"].shape[0] == 800


def test_demo_small(tmp_path):
    assert (
        main(["demo", "--out", str(tmp_path), "--n-cells", "800", "--epochs", "3", "--quiet"]) == 0
    )
    mdata = md.read_h5mu(tmp_path / "demo.h5mu")
    for key in (
        "X_indiseek_C_rna",
        "X_indiseek_C_adt",
        "X_indiseek_Z_rna",
        "X_indiseek_Z_adt",
        "X_indiseek",
    ):
        assert key in mdata.obsm
    n_specific = mdata.uns["indiseek"]["model"]["n_specific"]
    assert mdata.obsm["X_indiseek_Z_adt"].shape[1] == 3 * n_specific  # the whole ensemble
    assert mdata.uns["indiseek"]["theta"]["members"] == 3  # θ averages the default 3 members
    assert mdata.obsm["indiseek_theta_members"].shape == (mdata.n_obs, 3)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {
        "theta_spearman",
        "theta_spearman_pca",
        "theta_spearman_true_latents",
        "clustering",
        "disentanglement_test",
        "training",
    } <= set(metrics)
    figs = {p.name for p in (tmp_path / "figures").iterdir()}
    assert figs == {
        "training_curves.png",
        "theta_ranking.png",
        "rank_scatter.png",
        "embeddings_umap.png",
    }


def test_fit_real_file(tmp_path):
    src = shared_file("pbmc_wnn_paired800.h5mu")
    out = tmp_path / "out.h5mu"
    seurat = shared_file("seurat_wnn/pbmc_wnn_paired800.csv")
    rc = main(
        [
            "fit",
            str(src),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--train-size",
            "0.6",
            "--label-key",
            "celltype",
            "--weights-csv",
            str(seurat),
            "--save-model",
            "--quiet",
        ]
    )
    assert rc == 0
    mdata = md.read_h5mu(out)
    p = mdata.uns["indiseek"]["model"]
    width = p["n_members"] * 2 * (p["n_shared"] + p["n_specific"])
    assert mdata.obsm["X_indiseek"].shape == (800, width)
    metrics = json.loads((tmp_path / "out_indiseek" / "metrics.json").read_text())
    assert np.isfinite(metrics["theta_spearman"])
    assert (tmp_path / "out_indiseek" / "model" / "model.pt").exists()


def test_fit_bad_input(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.h5mu"), "--out", str(tmp_path / "o.h5mu")]) == 2
    src = shared_file("pbmc_wnn_paired800.h5mu")
    assert (
        main(["fit", str(src), "--out", str(tmp_path / "o.h5mu"), "--adt", "protein", "--quiet"])
        == 2
    )
    assert "'protein'" in capsys.readouterr().err


def test_figures(trained, tmp_path):
    model, mdata = trained
    isk.tl.theta_score(mdata, label_key="celltype.l2")
    table = isk.tl.rank_comparison(
        mdata,
        "celltype.l2",
        reference=mdata.uns["synthetic_truth"]["rna_importance"],
        parent_key="celltype.l1",
        min_cells=5,
    )
    f1 = isk.pl.theta_ranking(table, save=tmp_path / "a.png", return_fig=True)
    f2 = isk.pl.rank_scatter(table, save=tmp_path / "b.png", return_fig=True)
    f3 = isk.pl.embeddings(mdata, color="celltype.l1", save=tmp_path / "c.png", show=False)
    f4 = isk.pl.training_curves(model, save=tmp_path / "d.png", return_fig=True)
    for f in (f1, f2, f3, f4):
        assert f.axes
    assert "ρ" in f2.axes[0].get_title()
    # shown (the default): nothing is returned, so Jupyter does not draw the figure twice
    assert isk.pl.theta_ranking(table) is None
    assert "X_umap_indiseek_Z_rna" in mdata.obsm  # cached
    cached = mdata.obsm["X_umap_indiseek_Z_rna"].copy()
    isk.pl.embeddings(mdata, color="celltype.l1", keys=["X_indiseek_Z_rna"])
    np.testing.assert_array_equal(cached, mdata.obsm["X_umap_indiseek_Z_rna"])
    # a changed embedding (e.g. after retraining) is noticed: its UMAP is made anew
    mdata.obsm["X_indiseek_Z_rna"] = mdata.obsm["X_indiseek_Z_rna"][:, :-1]
    isk.pl.embeddings(mdata, color="celltype.l1", keys=["X_indiseek_Z_rna"])
    assert not np.array_equal(cached, mdata.obsm["X_umap_indiseek_Z_rna"])
    # one colour per level-1 type in every figure, kept where scanpy keeps it
    l1 = mdata.obs["celltype.l1"]
    cats = list(l1.cat.categories) if hasattr(l1, "cat") else sorted(l1.unique())
    colors = dict(zip(cats, mdata.uns["celltype.l1_colors"], strict=True))
    fig = isk.pl.theta_ranking(mdata, "celltype.l2", parent_key="celltype.l1", return_fig=True)
    legend = {
        t.get_text(): h.get_facecolor()
        for t, h in zip(
            fig.axes[0].get_legend().get_texts(),
            fig.axes[0].get_legend().legend_handles,
            strict=True,
        )
    }
    from matplotlib.colors import to_rgba

    for name, rgba in legend.items():
        assert to_rgba(colors[name]) == pytest.approx(rgba)
    for name in "abcd":
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    import pandas as pd

    df = pd.DataFrame(
        {
            "objective": ["indiseek"] * 4 + ["clip"] * 2,
            "lam": [1, 1, 10, 10, np.nan, np.nan],
            "seed": [0, 1, 0, 1, 0, 1],
            "spearman": [0.5, 0.6, 0.8, 0.7, 0.2, 0.3],
        }
    )
    assert isk.pl.compare_methods(df, return_fig=True).axes
    with pytest.raises(KeyError):
        isk.pl.compare_methods(df, metric="nope")
