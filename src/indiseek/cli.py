"""Command line: ``indiseek demo`` (built-in example) and ``indiseek fit`` (your .h5mu)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import _keys as K

logger = logging.getLogger("indiseek")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, flush=True)


def _train(model, mdata, args: argparse.Namespace) -> None:
    """Train with the command line's settings and write the embeddings into ``mdata``."""
    model.train(
        max_epochs=args.epochs,
        seed=args.seed,
        accelerator=args.device,
        progress_bar=not args.quiet,
        n_jobs=args.jobs,
    )
    model.write_obsm(mdata)


def _analyse(
    mdata,
    model,
    out_dir: Path,
    label_key: str | None,
    parent_key: str | None,
    reference,
    weight_key: str | None,
    quiet: bool,
) -> dict[str, Any]:
    """θ, ranks, clustering metrics, disentanglement and figures; returns the metrics."""
    import matplotlib

    matplotlib.use("Agg")

    from . import pl, tl

    figs = out_dir / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {"model": model.params, "training": model.train_params}
    dis = tl.disentanglement(mdata, model)
    metrics["disentanglement_test"] = dis.to_dict(orient="index")
    last = model.history.groupby("step").tail(1)
    metrics["final_epoch_losses"] = {
        row["step"]: {
            k: v for k, v in row.items() if k != "step" and isinstance(v, float) and np.isfinite(v)
        }
        for row in last.to_dict(orient="records")
    }
    pl.training_curves(model, save=figs / "training_curves.png")
    if label_key is None:
        return metrics
    subset = "test" if K.SPLIT in mdata.obs and (mdata.obs[K.SPLIT] == "test").any() else None
    tl.theta_score(mdata, label_key=label_key, subset=subset)
    if reference is not None or weight_key is not None:
        table = tl.rank_comparison(
            mdata,
            groupby=label_key,
            weight_key=weight_key,
            reference=reference,
            parent_key=parent_key,
        )
        metrics["theta_spearman"] = table.attrs["spearman"]
        metrics["theta_pvalue"] = table.attrs["pvalue"]
        metrics["theta_reference"] = "simulator truth" if reference is not None else weight_key
        metrics["theta_excluded_types"] = table.attrs["excluded"]
        metrics["theta_per_type"] = table.reset_index().to_dict(orient="records")
        # from the MuData, so each level-1 type has its colour of uns["<parent>_colors"]
        pl.theta_ranking(mdata, label_key, parent_key=parent_key, save=figs / "theta_ranking.png")
        pl.rank_scatter(
            mdata,
            label_key,
            weight_key=weight_key,
            reference=reference,
            parent_key=parent_key,
            save=figs / "rank_scatter.png",
        )
        _say(
            quiet, f"θ vs {metrics['theta_reference']}: Spearman ρ = {table.attrs['spearman']:.3f}"
        )
    labels = [label_key] + ([parent_key] if parent_key else [])
    cm = tl.cluster_metrics(mdata, label_key=labels, subset=subset)
    metrics["clustering"] = cm.to_dict(orient="records")
    # UMAPs of the test cells only: the embeddings' behaviour on unseen cells, at half the cost.
    shown = mdata[(mdata.obs[K.SPLIT] == "test").to_numpy()].copy() if subset else mdata
    pl.embeddings(shown, color=labels[::-1], save=figs / "embeddings_umap.png")
    return metrics


def _demo(args: argparse.Namespace) -> int:
    from . import datasets, pp
    from .model import IndiSeek

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.data == "pbmc":
        _say(args.quiet, "Loading the bundled PBMC CITE-seq (800 cells, Hao et al. 2021) ...")
        mdata = datasets.pbmc_cite800()
        # a real set this small: every cell trains and is scored, as Seurat's WNN weights are
        pp.prepare(mdata, seed=args.seed)
        label, parent, truth, weight = "celltype", None, None, "seurat_rna_weight"
    else:
        _say(args.quiet, f"Simulating CITE-seq ({args.n_cells} cells, seed {args.seed}) ...")
        mdata = datasets.synthetic_citeseq(n_cells=args.n_cells, seed=args.seed)
        pp.prepare(mdata, train_size=0.5, seed=args.seed)
        label, parent, weight = "celltype.l2", "celltype.l1", None
        truth = mdata.uns["synthetic_truth"]["rna_importance"]
    IndiSeek.setup_mudata(mdata)
    model = IndiSeek(mdata, lam=args.lam, n_members=args.members)
    _say(args.quiet, f"Training {model} ...")
    _train(model, mdata, args)
    metrics = _analyse(mdata, model, out, label, parent, truth, weight, args.quiet)
    metrics["data"] = mdata.uns.get("dataset", {"name": "synthetic_citeseq"})
    metrics.update(_baselines(mdata, label, truth, weight))
    metrics["wall_time_s"] = round(time.perf_counter() - t0, 2)
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2, default=str))
    mdata.write(out / "demo.h5mu")
    _say(
        args.quiet,
        f"Done in {metrics['wall_time_s']:.0f} s: {out / 'demo.h5mu'}, {out / 'metrics.json'}, {out / 'figures'}/",
    )
    return 0


def _baselines(mdata, label: str, truth, weight: str | None) -> dict[str, float]:
    """The same θ read-out from per-modality PCs (no disentanglement) and, on simulations,
    from the true latent factors (the ceiling): context for the model's ρ."""
    from . import tl

    cells = (
        (mdata.obs[K.SPLIT] == "test").to_numpy()
        if K.SPLIT in mdata.obs
        else np.ones(mdata.n_obs, dtype=bool)
    )
    lab = mdata.obs[label].astype(object).to_numpy()[cells]
    spaces = {"pca": (mdata.mod["rna"].obsm[K.RNA_INPUT], mdata.mod["adt"].obsm[K.ADT_INPUT])}
    if "latent_rna_specific" in mdata.obsm:
        spaces["true_latents"] = (
            mdata.obsm["latent_rna_specific"],
            mdata.obsm["latent_adt_specific"],
        )
    out = {}
    for name, (a, b) in spaces.items():
        theta, _, _ = tl.theta_arrays(a[cells], b[cells], lab)
        if truth is not None:
            table = tl.rank_table(lab, theta, reference=truth)
        else:
            table = tl.rank_table(lab, theta, weights=mdata.obs[weight].to_numpy()[cells])
        out[f"theta_spearman_{name}"] = table.attrs["spearman"]
    return out


def _fit(args: argparse.Namespace) -> int:
    import mudata as md

    from . import pp, tl
    from .model import IndiSeek

    t0 = time.perf_counter()
    src = Path(args.input)
    if not src.exists():
        print(f"error: no such file: {src}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    mdata = md.read_h5mu(src)
    pp.prepare(
        mdata,
        rna=args.rna,
        adt=args.adt,
        rna_layer=args.rna_layer,
        adt_layer=args.adt_layer,
        train_size=args.train_size,
        seed=args.seed,
        n_pcs=args.n_pcs,
    )
    IndiSeek.setup_mudata(mdata, rna=args.rna, adt=args.adt)
    model = IndiSeek(mdata, objective=args.objective, lam=args.lam, n_members=args.members)
    _train(model, mdata, args)
    weight_key = None
    if args.weights_csv:
        tl.wnn_weights(
            mdata, rna=args.rna, adt=args.adt, weights=args.weights_csv, column=args.weights_column
        )
        weight_key = f"{args.rna}:mod_weight"
    elif args.wnn:
        _say(args.quiet, "Computing WNN weights with muon ...")
        tl.wnn_weights(
            mdata, rna=args.rna, adt=args.adt, rna_layer=args.rna_layer, adt_layer=args.adt_layer
        )
        weight_key = f"{args.rna}:mod_weight"
    fig_dir = out.parent / (out.stem + "_indiseek")
    metrics = _analyse(
        mdata, model, fig_dir, args.label_key, args.parent_key, None, weight_key, args.quiet
    )
    if args.save_model:
        model.save(fig_dir / "model", overwrite=True)
    metrics["wall_time_s"] = round(time.perf_counter() - t0, 2)
    (fig_dir / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2, default=str))
    mdata.write(out)
    _say(args.quiet, f"Wrote {out} and {fig_dir}/ (metrics.json, figures/)")
    return 0


def _add_ensemble_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--members",
        type=int,
        default=3,
        help="models trained independently; θ searches neighbours in all of them at once "
        "(default 3; 1: single model)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="members trained at once in worker processes on a CPU (-1: one per core; default: "
        "one per member, at most one per core, but 3 workers for 3 members on 2 cores)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``indiseek`` argument parser."""
    p = argparse.ArgumentParser(
        prog="indiseek",
        description="IndiSeek: shared (C) and modality-specific (Z) representations of CITE-seq "
        "RNA + ADT, and the θ-score telling which modality defines each cell type.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    _add_demo(sub)
    _add_fit(sub)
    return p


def _add_demo(sub) -> None:
    d = sub.add_parser(
        "demo",
        help="run the whole pipeline on built-in data (simulated, or real PBMCs)",
        description="Simulate CITE-seq with known truth (or load the bundled real PBMCs), "
        "prepare, train IndiSeek, score θ against the truth (or Seurat's WNN weights), and "
        "write DIR/demo.h5mu, DIR/metrics.json, DIR/figures/*.png.",
    )
    d.add_argument("--out", required=True, help="output directory")
    d.add_argument(
        "--data",
        choices=["synthetic", "pbmc"],
        default="synthetic",
        help="synthetic: simulated CITE-seq with known truth (default); pbmc: the bundled 800 "
        "real PBMCs (Hao et al. 2021), θ ranked against Seurat's WNN weights",
    )
    d.add_argument("--n-cells", type=int, default=10_000, help="simulated cells (default 10000)")
    d.add_argument(
        "--lam", type=float, default=10.0, help="λ, weight of reconstruction (default 10)"
    )
    d.add_argument(
        "--epochs", type=int, default=None, help="training epochs per step (default: automatic)"
    )
    d.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    _add_ensemble_args(d)
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--quiet", action="store_true", help="no progress output")
    d.set_defaults(func=_demo)


def _add_fit(sub) -> None:
    f = sub.add_parser(
        "fit",
        help="train IndiSeek on your .h5mu and write the embeddings",
        description="Prepare, train and embed a MuData file; embeddings go to OUT's "
        ".obsm (X_indiseek*), metrics and figures to OUT_indiseek/.",
    )
    f.add_argument("input", help="input .h5mu with RNA and ADT counts of the same cells")
    f.add_argument("--out", required=True, help="output .h5mu")
    f.add_argument("--rna", default="rna", help="RNA modality name (default rna)")
    f.add_argument("--adt", default="adt", help="ADT modality name (default adt)")
    f.add_argument("--rna-layer", default=None, help="layer with RNA counts (default .X)")
    f.add_argument("--adt-layer", default=None, help="layer with ADT counts (default .X)")
    f.add_argument(
        "--n-pcs",
        type=int,
        default=None,
        help="RNA PCs (default: one per 25 training cells, between 50 and 200)",
    )
    f.add_argument(
        "--train-size",
        type=float,
        default=None,
        help="fraction (≤1) or number of training cells; the rest are test cells (default: all)",
    )
    f.add_argument(
        "--objective",
        default="indiseek",
        choices=["indiseek", "indiseek0", "factorized_cl", "infodisen", "clip"],
        help="objective (default indiseek)",
    )
    f.add_argument("--lam", type=float, default=10.0, help="λ (default 10)")
    f.add_argument(
        "--epochs", type=int, default=None, help="training epochs per step (default: automatic)"
    )
    f.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    _add_ensemble_args(f)
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    f.add_argument(
        "--label-key", default=None, help="cell-type column for θ and ARI/NMI (e.g. celltype.l2)"
    )
    f.add_argument(
        "--parent-key", default=None, help="level-1 column for colours (e.g. celltype.l1)"
    )
    f.add_argument(
        "--wnn", action="store_true", help="compute WNN weights with muon and rank θ against them"
    )
    f.add_argument(
        "--weights-csv", default=None, help="CSV of per-cell RNA weights (e.g. Seurat's)"
    )
    f.add_argument(
        "--weights-column",
        default="RNA.weight",
        help="column of --weights-csv (default RNA.weight)",
    )
    f.add_argument("--save-model", action="store_true", help="also save the trained model")
    f.add_argument("--quiet", action="store_true", help="no progress output")
    f.set_defaults(func=_fit)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``indiseek`` command."""
    args = build_parser().parse_args(argv)
    if getattr(args, "train_size", None) is not None and args.train_size > 1:
        args.train_size = int(args.train_size)
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*update.*", category=UserWarning)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
