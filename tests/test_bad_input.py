"""Wrong input through the public API: a clear error, and the user's object left as it was.

One table: each case builds its input from fresh copies, makes one call, and names the error
type and a word its message must contain. Every case also checks that the MuData passed in is
unchanged (same digests of X, layers, obs, var, obsm, uns of it and its modalities).
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

import indiseek as isk

from ._snapshot import snapshot

TINY = dict(n_shared=4, n_specific=3, n_hidden=8, n_layers=2, n_members=1)


def _raw(seed: int = 0):
    return isk.datasets.synthetic_citeseq(
        n_cells=160, n_genes=200, n_proteins=12, n_types=8, n_lineages=4, seed=seed
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A raw MuData, a prepared one, a trained tiny model and its saved directory."""
    raw = _raw()
    prepared = raw.copy()
    isk.pp.prepare(prepared, train_size=0.75, n_pcs=10)
    isk.IndiSeek.setup_mudata(prepared)
    model = isk.IndiSeek(prepared, **TINY)
    model.train(max_epochs=1, progress_bar=False, n_jobs=1)
    model.write_obsm(prepared)
    isk.tl.theta_score(prepared, "celltype.l2")
    saved = tmp_path_factory.mktemp("model") / "m"
    model.save(saved)
    return {"raw": raw, "prepared": prepared, "model": model, "saved": saved}


@dataclass
class Case:
    id: str
    make: Callable  # world, tmp_path → the user's object (a fresh copy)
    call: Callable  # obj, world, tmp_path → None (must raise)
    error: type[BaseException]
    word: str


def raw(w, t):
    return w["raw"].copy()


def prepared(w, t):
    return w["prepared"].copy()


def _set_x(mod: str, fn):
    def make(w, t):
        m = w["raw"].copy()
        m.mod[mod].X = fn(m.mod[mod].X)
        return m

    return make


def _dense(x):
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)


def _lognorm(x):
    x = _dense(x)
    return np.log1p(x / x.sum(1, keepdims=True) * 1e4)


def _negative(x):
    x = _dense(x).copy()
    x[0, 0] = -3
    return x


def _nan(x):
    x = _dense(x).copy()
    x[1, 2] = np.nan
    return x


def _empty_cell(x):
    x = _dense(x).copy()
    x[4] = 0
    return x


def _duplicate_cells(w, t):
    m = w["raw"].copy()
    names = list(m.obs_names)
    names[1] = names[0]
    for mod in m.mod.values():
        mod.obs_names = names
    m.update()
    return m


def _duplicate_genes(w, t):
    m = w["raw"].copy()
    genes = list(m.mod["rna"].var_names)
    genes[3] = genes[2]
    m.mod["rna"].var_names = genes
    return m


def _different_cells(w, t):
    import mudata as md

    m = w["raw"]
    return md.MuData({"rna": m.mod["rna"][:100].copy(), "adt": m.mod["adt"][50:].copy()})


def _fewer_genes(w, t):
    m = w["raw"]
    import mudata as md

    return md.MuData({"rna": m.mod["rna"][:, 20:].copy(), "adt": m.mod["adt"].copy()})


def _renamed_proteins(w, t):
    m = w["raw"].copy()
    m.mod["adt"].var_names = [f"p{i}" for i in range(m.mod["adt"].n_vars)]
    return m


def _bad_split(w, t):
    m = w["prepared"].copy()
    m.obs["indiseek_split"] = "validation"
    return m


def _nan_inputs(w, t):
    m = w["prepared"].copy()
    x = m.mod["adt"].obsm["X_indiseek_adt"].copy()
    x[0, 0] = np.nan
    m.mod["adt"].obsm["X_indiseek_adt"] = x
    return m


def _text_inputs(w, t):
    m = w["prepared"].copy()
    m.mod["adt"].obsm["X_indiseek_adt"] = np.full((m.n_obs, 3), "a", dtype=object)
    return m


def _no_setup(w, t):
    m = w["prepared"].copy()
    del m.uns["indiseek"]["setup"]
    return m


def _text_weights(w, t):
    m = w["prepared"].copy()
    m.obs["w"] = "high"
    return m


def _one_label(w, t):
    m = w["prepared"].copy()
    m.obs["one"] = "T"
    return m


def _saved_copy(w, t) -> Path:
    import shutil

    dest = t / "copy"
    shutil.copytree(w["saved"], dest)
    return dest


def _corrupt(file: str, edit: Callable[[Path], None]):
    def call(obj, w, t):
        path = _saved_copy(w, t)
        edit(path / file)
        isk.IndiSeek.load(path, obj)

    return call


def _edit_json(fn):
    def edit(file: Path):
        config = json.loads(file.read_text())
        fn(config)
        file.write_text(json.dumps(config))

    return edit


def _truncate(file: Path):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED_BY_CORPUS",))


def _pickle_payload(file: Path):
    tensors = torch.load(file, weights_only=True)
    tensors["evil"] = _Payload()
    with open(file, "wb") as fh:
        pickle.dump(tensors, fh)


def _pop(key):
    return _edit_json(lambda c: c.pop(key))


def _features(c):
    c["n_features"]["adt"] += 1


def _format(c):
    c["format"] = 99


def _objective(c):
    c["params"]["objective"] = "magic"


def _write(text: str):
    return lambda file: file.write_text(text)


def _garbage(file: Path):
    file.write_bytes(b"not an archive at all")


def _garbage_text(file: Path):
    file.write_bytes(bytes(range(256)) * 4)


def _npz_edit(fn):
    def edit(file: Path):
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        fn(arrays)
        np.savez(file, **arrays)

    return edit


def _drop_names(a):
    a.pop("obs_names")


def _short_train(a):
    a["train"] = a["train"][:5]


def _nan_input(a):
    a["input_rna"] = a["input_rna"].copy()
    a["input_rna"][0, 0] = np.nan


def _drop_prepare(file: Path):
    tensors = torch.load(file, weights_only=True)
    torch.save({k: v for k, v in tensors.items() if "loadings" not in k}, file)


M = lambda w: w["model"]  # noqa: E731

CASES = [
    # --- preprocessing -------------------------------------------------------------------
    Case(
        "prepare-anndata",
        lambda w, t: w["raw"].mod["rna"].copy(),
        lambda o, w, t: isk.pp.prepare(o),
        TypeError,
        "MuData",
    ),
    Case("prepare-no-rna", raw, lambda o, w, t: isk.pp.prepare(o, rna="gex"), KeyError, "gex"),
    Case("prepare-no-adt", raw, lambda o, w, t: isk.pp.prepare(o, adt="prot"), KeyError, "prot"),
    Case(
        "prepare-negative",
        _set_x("rna", _negative),
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "negative",
    ),
    Case(
        "prepare-nan-adt", _set_x("adt", _nan), lambda o, w, t: isk.pp.prepare(o), ValueError, "NaN"
    ),
    Case(
        "prepare-lognormalised",
        _set_x("rna", _lognorm),
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "non-integer",
    ),
    Case(
        "prepare-lognormalised-adt",
        _set_x("adt", _lognorm),
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "adt_layer",
    ),
    Case(
        "prepare-empty-cell",
        _set_x("adt", _empty_cell),
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "zero total",
    ),
    Case(
        "prepare-duplicate-cells",
        _duplicate_cells,
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "duplicate",
    ),
    Case(
        "prepare-duplicate-genes",
        _duplicate_genes,
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "var_names_make_unique",
    ),
    Case(
        "prepare-unpaired",
        _different_cells,
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "paired",
    ),
    Case(
        "prepare-too-many-pcs",
        raw,
        lambda o, w, t: isk.pp.prepare(o, n_pcs=5000),
        ValueError,
        "n_pcs",
    ),
    Case(
        "prepare-train-size-0",
        raw,
        lambda o, w, t: isk.pp.prepare(o, train_size=0),
        ValueError,
        "train_size",
    ),
    Case(
        "prepare-train-size-2.5",
        raw,
        lambda o, w, t: isk.pp.prepare(o, train_size=2.5),
        ValueError,
        "train_size",
    ),
    Case(
        "prepare-missing-layer",
        raw,
        lambda o, w, t: isk.pp.prepare(o, rna_layer="counts"),
        KeyError,
        "counts",
    ),
    Case(
        "prepare-clr-axis",
        raw,
        lambda o, w, t: isk.pp.prepare(o, adt_clr_axis=2),
        ValueError,
        "adt_clr_axis",
    ),
    Case(
        "prepare-top-genes",
        raw,
        lambda o, w, t: isk.pp.prepare(o, n_top_genes=1),
        ValueError,
        "n_top_genes",
    ),
    Case(
        "prepare-adt-pcs",
        raw,
        lambda o, w, t: isk.pp.prepare(o, adt_n_pcs=50),
        ValueError,
        "adt_n_pcs",
    ),
    Case(
        "prepare-reference-genes",
        _fewer_genes,
        lambda o, w, t: isk.pp.prepare(o, reference=w["prepared"]),
        ValueError,
        "genes",
    ),
    Case(
        "prepare-reference-proteins",
        _renamed_proteins,
        lambda o, w, t: isk.pp.prepare(o, reference=w["prepared"]),
        ValueError,
        "proteins",
    ),
    Case(
        "prepare-reference-unprepared",
        raw,
        lambda o, w, t: isk.pp.prepare(o, reference=w["raw"]),
        ValueError,
        "prepared",
    ),
    Case(
        "prepare-reference-and-split",
        raw,
        lambda o, w, t: isk.pp.prepare(o, reference=w["prepared"], train_size=0.5),
        ValueError,
        "train_size",
    ),
    Case(
        "prepare-text-counts",
        _set_x("adt", lambda x: np.full(x.shape, "7", dtype=object)),
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "numbers",
    ),
    Case(
        "prepare-one-protein",
        lambda w, t: __import__("mudata").MuData(
            {"rna": w["raw"].mod["rna"].copy(), "adt": w["raw"].mod["adt"][:, :1].copy()}
        ),
        lambda o, w, t: isk.pp.prepare(o),
        ValueError,
        "feature",
    ),
    Case(
        "prepare-n-pcs-text",
        raw,
        lambda o, w, t: isk.pp.prepare(o, n_pcs="50"),
        ValueError,
        "n_pcs",
    ),
    Case(
        "prepare-same-modality",
        raw,
        lambda o, w, t: isk.pp.prepare(o, adt="rna"),
        ValueError,
        "same modality",
    ),
    # --- model -----------------------------------------------------------------------------
    Case(
        "setup-unprepared", raw, lambda o, w, t: isk.IndiSeek.setup_mudata(o), KeyError, "prepare"
    ),
    Case(
        "setup-bad-split",
        _bad_split,
        lambda o, w, t: isk.IndiSeek.setup_mudata(o),
        ValueError,
        "train",
    ),
    Case(
        "setup-nan-inputs",
        _nan_inputs,
        lambda o, w, t: isk.IndiSeek.setup_mudata(o),
        ValueError,
        "NaN",
    ),
    Case(
        "setup-text-inputs",
        _text_inputs,
        lambda o, w, t: isk.IndiSeek.setup_mudata(o),
        ValueError,
        "numbers",
    ),
    Case("model-no-setup", _no_setup, lambda o, w, t: isk.IndiSeek(o), ValueError, "setup_mudata"),
    Case(
        "model-n-shared-0",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, n_shared=0),
        ValueError,
        "n_shared",
    ),
    Case(
        "model-n-members-text",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, n_members="3"),
        ValueError,
        "n_members",
    ),
    Case(
        "model-lam-negative", prepared, lambda o, w, t: isk.IndiSeek(o, lam=-1), ValueError, "lam"
    ),
    Case(
        "model-objective",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, objective="magic"),
        ValueError,
        "objective",
    ),
    Case(
        "model-temperature",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, temperature=0),
        ValueError,
        "temperature",
    ),
    Case(
        "train-batch-size",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(batch_size=0),
        ValueError,
        "batch_size",
    ),
    Case(
        "train-lr",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(lr=-1.0),
        ValueError,
        "lr",
    ),
    Case(
        "train-max-epochs-text",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(max_epochs="ten"),
        ValueError,
        "max_epochs",
    ),
    Case(
        "train-seed-negative",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(seed=-1),
        ValueError,
        "seed",
    ),
    Case(
        "train-accelerator",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(accelerator="tpu"),
        ValueError,
        "accelerator",
    ),
    Case(
        "train-validation-size",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(validation_size=1.5),
        ValueError,
        "validation_size",
    ),
    Case(
        "reps-untrained",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).get_representations(),
        RuntimeError,
        "train",
    ),
    Case(
        "reps-missing-genes",
        _fewer_genes,
        lambda o, w, t: M(w).get_representations(o),
        ValueError,
        "genes",
    ),
    Case(
        "reps-kind",
        prepared,
        lambda o, w, t: M(w).get_latent_representation(o, "Z_protein"),
        ValueError,
        "representation",
    ),
    Case(
        "reps-indices",
        prepared,
        lambda o, w, t: M(w).get_latent_representation(o, indices=[0.5]),
        ValueError,
        "indices",
    ),
    Case(
        "reconstruction-mask",
        prepared,
        lambda o, w, t: M(w).reconstruction_error(o, mask=np.ones(3, bool)),
        ValueError,
        "mask",
    ),
    Case(
        "write-obsm-key",
        prepared,
        lambda o, w, t: M(w).write_obsm(o, key_added=""),
        ValueError,
        "key_added",
    ),
    # --- files -----------------------------------------------------------------------------
    Case(
        "load-missing",
        prepared,
        lambda o, w, t: isk.IndiSeek.load(t / "nowhere", o),
        FileNotFoundError,
        "nowhere",
    ),
    Case(
        "load-config-not-json",
        prepared,
        _corrupt("config.json", _write("{ not json")),
        ValueError,
        "config.json",
    ),
    Case(
        "load-config-truncated",
        prepared,
        _corrupt("config.json", _truncate),
        ValueError,
        "config.json",
    ),
    Case(
        "load-config-no-params",
        prepared,
        _corrupt("config.json", _pop("params")),
        ValueError,
        "params",
    ),
    Case(
        "load-config-format",
        prepared,
        _corrupt("config.json", _edit_json(_format)),
        ValueError,
        "format",
    ),
    Case(
        "load-config-objective",
        prepared,
        _corrupt("config.json", _edit_json(_objective)),
        ValueError,
        "config.json",
    ),
    Case(
        "load-config-features",
        prepared,
        _corrupt("config.json", _edit_json(_features)),
        ValueError,
        "save the model again",
    ),
    Case(
        "load-weights-truncated", prepared, _corrupt("model.pt", _truncate), ValueError, "model.pt"
    ),
    Case("load-weights-garbage", prepared, _corrupt("model.pt", _garbage), ValueError, "model.pt"),
    Case(
        "load-weights-pickle",
        prepared,
        _corrupt("model.pt", _pickle_payload),
        ValueError,
        "Refusing",
    ),
    Case("load-cells-garbage", prepared, _corrupt("cells.npz", _garbage), ValueError, "cells.npz"),
    Case(
        "save-existing",
        prepared,
        lambda o, w, t: M(w).save(w["saved"]),
        FileExistsError,
        "overwrite",
    ),
    Case(
        "load-config-no-n-shared",
        prepared,
        _corrupt("config.json", _edit_json(lambda c: c["params"].pop("n_shared"))),
        ValueError,
        "n_shared",
    ),
    Case(
        "load-config-n-shared-text",
        prepared,
        _corrupt("config.json", _edit_json(lambda c: c["params"].update(n_shared="a"))),
        ValueError,
        "n_shared",
    ),
    Case(
        "load-config-no-features",
        prepared,
        _corrupt("config.json", _edit_json(lambda c: c.update(n_features={}))),
        ValueError,
        "n_features",
    ),
    Case(
        "load-config-z-scale",
        prepared,
        _corrupt("config.json", _edit_json(lambda c: c["z_scale"]["rna"].pop())),
        ValueError,
        "z_scale",
    ),
    Case("load-config-x-sq", prepared, _corrupt("config.json", _pop("x_sq")), ValueError, "x_sq"),
    Case(
        "load-config-block-scale",
        prepared,
        _corrupt("config.json", _edit_json(lambda c: c.update(block_scale="x"))),
        ValueError,
        "block_scale",
    ),
    Case(
        "load-history-garbage",
        prepared,
        _corrupt("history.csv", _garbage_text),
        ValueError,
        "history.csv",
    ),
    Case(
        "load-cells-no-names",
        prepared,
        _corrupt("cells.npz", _npz_edit(_drop_names)),
        ValueError,
        "cells.npz",
    ),
    Case(
        "load-cells-short-train",
        prepared,
        _corrupt("cells.npz", _npz_edit(_short_train)),
        ValueError,
        "train",
    ),
    Case(
        "load-cells-nan-input",
        prepared,
        _corrupt("cells.npz", _npz_edit(_nan_input)),
        ValueError,
        "NaN",
    ),
    Case(
        "load-weights-no-fit",
        prepared,
        _corrupt("model.pt", _drop_prepare),
        ValueError,
        "preprocessing fit",
    ),
    Case(
        "theta-key-reserved",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", key_added="prepare"),
        ValueError,
        "key_added",
    ),
    Case(
        "theta-k-none",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", k=None),
        ValueError,
        "k must",
    ),
    Case(
        "theta-pseudocount",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", pseudocount="a"),
        ValueError,
        "pseudocount",
    ),
    Case(
        "clusters-n-clusters-text",
        prepared,
        lambda o, w, t: isk.tl.cluster_metrics(o, "celltype.l2", n_clusters="3"),
        ValueError,
        "n_clusters",
    ),
    Case(
        "ranks-min-cells-text",
        prepared,
        lambda o, w, t: isk.tl.rank_comparison(o, "celltype.l2", min_cells="x"),
        ValueError,
        "min_cells",
    ),
    Case(
        "disentangle-not-a-model",
        prepared,
        lambda o, w, t: isk.tl.disentanglement(o, "model"),
        TypeError,
        "IndiSeek",
    ),
    Case(
        "plot-embedding-bad-label",
        prepared,
        lambda o, w, t: isk.pl.embeddings(o, color="celltype.l9"),
        KeyError,
        "celltype.l9",
    ),
    Case(
        "fit-specific-zero-dims",
        prepared,
        lambda o, w, t: isk.fit_specific(np.ones((50, 3)), np.ones((50, 2)), n_specific=0),
        ValueError,
        "n_specific",
    ),
    Case(
        "read-citeseq-h5ad",
        prepared,
        lambda o, w, t: (
            t.joinpath("x.h5ad").write_text("x"),
            isk.datasets.read_citeseq(t / "x.h5ad"),
        ),
        ValueError,
        "h5mu",
    ),
    Case(
        "synthetic-seed",
        prepared,
        lambda o, w, t: isk.datasets.synthetic_citeseq(n_cells=100, seed=-1),
        ValueError,
        "seed",
    ),
    Case(
        "prepare-scale-max",
        raw,
        lambda o, w, t: isk.pp.prepare(o, scale_max=-1),
        ValueError,
        "scale_max",
    ),
    Case(
        "prepare-train-size-nan",
        raw,
        lambda o, w, t: isk.pp.prepare(o, train_size=float("nan")),
        ValueError,
        "train_size",
    ),
    Case(
        "prepare-reference-incomplete",
        raw,
        lambda o, w, t: isk.pp.prepare(o, reference={"rna": {}, "adt": {}}),
        ValueError,
        "reference",
    ),
    Case("model-none", prepared, lambda o, w, t: isk.IndiSeek(None), TypeError, "MuData"),
    Case(
        "train-clip-from-text",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(clip_from="x"),
        ValueError,
        "clip_from",
    ),
    Case(
        "train-early-stopping-no-validation",
        prepared,
        lambda o, w, t: isk.IndiSeek(o, **TINY).train(early_stopping=True, validation_size=0),
        ValueError,
        "validation",
    ),
    Case(
        "theta-mask-not-embedding",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", rna_key="rna", adt_key="adt"),
        ValueError,
        "not an embedding",
    ),
    # --- tools -----------------------------------------------------------------------------
    Case(
        "theta-no-label",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l9"),
        KeyError,
        "celltype.l9",
    ),
    Case(
        "theta-k-0",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", k=0),
        ValueError,
        "k must",
    ),
    Case(
        "theta-subset-name",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", subset="holdout"),
        ValueError,
        "holdout",
    ),
    Case(
        "theta-subset-mask",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", subset=np.ones(3, bool)),
        ValueError,
        "subset",
    ),
    Case(
        "theta-missing-key",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", rna_key="X_pca"),
        KeyError,
        "X_pca",
    ),
    Case(
        "theta-combine",
        prepared,
        lambda o, w, t: isk.tl.theta_score(o, "celltype.l2", combine="median"),
        ValueError,
        "combine",
    ),
    Case(
        "ranks-no-theta",
        prepared,
        lambda o, w, t: isk.tl.rank_comparison(o, "celltype.l2", theta_key="theta_x"),
        KeyError,
        "theta_x",
    ),
    Case(
        "ranks-text-weights",
        _text_weights,
        lambda o, w, t: isk.tl.rank_comparison(o, "celltype.l2", weight_key="w"),
        ValueError,
        "numeric",
    ),
    Case(
        "ranks-no-reference",
        prepared,
        lambda o, w, t: isk.tl.rank_comparison(o, "celltype.l2", weight_key=None),
        ValueError,
        "weight_key",
    ),
    Case(
        "clusters-one-label",
        _one_label,
        lambda o, w, t: isk.tl.cluster_metrics(o, "one"),
        ValueError,
        "labels",
    ),
    Case(
        "disentangle-cells",
        prepared,
        lambda o, w, t: isk.tl.disentanglement(o, M(w), cells="train"),
        ValueError,
        "cells",
    ),
    Case(
        "plot-no-groupby", prepared, lambda o, w, t: isk.pl.theta_ranking(o), TypeError, "groupby"
    ),
    Case(
        "plot-curves-not-history",
        prepared,
        lambda o, w, t: isk.pl.training_curves(o),
        TypeError,
        "history",
    ),
    Case(
        "plot-embedding-key",
        prepared,
        lambda o, w, t: isk.pl.embeddings(o, color="celltype.l1", keys=["X_nothing"]),
        KeyError,
        "X_nothing",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_clearly(case, world, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    obj = case.make(world, tmp_path)
    before = snapshot(obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(case.error) as info:
            case.call(obj, world, tmp_path)
    message = str(info.value)
    assert case.word.lower() in message.lower(), message
    assert len(message) > 30, f"an error should say what to do: {message!r}"
    assert snapshot(obj) == before, "the user's object changed"
    assert not (tmp_path / "PWNED_BY_CORPUS").exists()


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


def test_normalised_x_with_counts_layer_uses_the_layer(world):
    """SeuratDisk's layout: normalised data in .X, counts in layers["counts"]."""
    m = world["raw"].copy()
    counts = m.mod["rna"].X.copy()
    m.mod["rna"].layers["counts"] = counts
    m.mod["rna"].X = sparse.csr_matrix(_lognorm(counts))
    x_before = m.mod["rna"].X.copy()
    with pytest.warns(UserWarning, match="layers\\['counts'\\]"):
        isk.pp.prepare(m, n_pcs=10)
    reference = world["raw"].copy()
    isk.pp.prepare(reference, n_pcs=10)
    np.testing.assert_allclose(
        np.abs(m.mod["rna"].obsm["X_indiseek_pca"]),
        np.abs(reference.mod["rna"].obsm["X_indiseek_pca"]),
        rtol=1e-3,
        atol=1e-3,
    )
    assert (m.mod["rna"].X != x_before).nnz == 0  # the user's data untouched
    assert m.uns["indiseek"]["prepare"]["params"]["rna_layer"] == "counts"
    assert isinstance(m.obs, pd.DataFrame)
