"""RNA and ADT preprocessing with every fitted quantity learned from training cells only."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from .. import _keys as K
from .._validate import (
    check_counts,
    check_same_cells,
    check_unique_names,
    get_modality,
    resolve_counts,
)
from ._split import split_cells

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

logger = logging.getLogger(__name__)

DEFAULT_N_PCS = 200  # the paper's; θ suite in benchmarks/README.md
MIN_DEFAULT_PCS, CELLS_PER_PC = 50, 25


def default_n_pcs(n_train: int) -> int:
    """RNA PCs when ``n_pcs=None``: one per 25 training cells, between 50 and 200.

    How many components rise above sampling noise grows with the number of cells. Measured
    (θ suite): 200 PCs of 800–1,182 cells left even per-modality PCA's θ at noise level, and 50
    PCs of 5,000 bone-marrow-like cells lost the RNA-specific programmes of single types.
    """
    return int(min(DEFAULT_N_PCS, max(MIN_DEFAULT_PCS, n_train // CELLS_PER_PC)))


TARGET_SUM = 1e4


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)


def _lognorm(counts) -> Any:
    """Per-cell normalisation to 10,000 counts and log1p: uses nothing but the cell itself."""
    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(counts.astype(np.float32, copy=True))
    # A fixed target sum keeps normalisation per-cell; scanpy's default (the median library
    # size over all cells) would let test cells shape training inputs.
    sc.pp.normalize_total(tmp, target_sum=TARGET_SUM)
    sc.pp.log1p(tmp)
    return tmp.X


def _max_pcs(n_train: int, n_features: int) -> int:
    return max(min(n_train, n_features) - 1, 1)


def _fit_rna(
    lognorm,
    train: np.ndarray,
    genes: pd.Index,
    n_pcs: int | None,
    n_top_genes: int,
    scale_max: float,
    seed: int,
    modality: str,
) -> dict[str, Any]:
    import anndata as ad
    import scanpy as sc

    tr = ad.AnnData(lognorm[train], var=pd.DataFrame(index=genes))
    if n_top_genes >= len(genes):
        hvg = np.ones(len(genes), dtype=bool)
    else:
        sc.pp.highly_variable_genes(tr, n_top_genes=n_top_genes, flavor="seurat")
        hvg = tr.var["highly_variable"].to_numpy()
    xs = _dense(tr.X[:, np.flatnonzero(hvg)])
    mean = xs.mean(axis=0)
    std = xs.std(axis=0, ddof=1)
    std[std == 0] = 1.0
    xs = np.clip((xs - mean) / std, -scale_max, scale_max)
    allowed = _max_pcs(int(train.sum()), int(hvg.sum()))
    if n_pcs is None:
        n_pcs = min(default_n_pcs(int(train.sum())), allowed)
    elif n_pcs < 1 or n_pcs > allowed:
        raise ValueError(
            f"n_pcs={n_pcs} for modality {modality!r}, but {int(train.sum())} training cells × "
            f"{int(hvg.sum())} variable genes allow 1 to {allowed} PCs."
        )
    tmp = ad.AnnData(xs)
    sc.pp.pca(tmp, n_comps=n_pcs, zero_center=True, svd_solver="arpack", random_state=seed)
    return {
        "genes": np.asarray(genes[hvg], dtype=str),
        "mean": mean.astype(np.float32),
        "std": std.astype(np.float32),
        "pca_mean": xs.mean(axis=0).astype(np.float32),
        "loadings": np.asarray(tmp.varm["PCs"], dtype=np.float32),
        "variance_ratio": np.asarray(tmp.uns["pca"]["variance_ratio"], dtype=np.float32),
        "scale_max": float(scale_max),
        "n_pcs": int(n_pcs),
    }


def _apply_rna(lognorm, genes: pd.Index, state: dict[str, Any], modality: str) -> np.ndarray:
    idx = genes.get_indexer(pd.Index(state["genes"]))
    if (idx < 0).any():
        missing = np.asarray(state["genes"])[idx < 0]
        raise ValueError(
            f"Modality {modality!r} lacks {len(missing)} of the {len(idx)} variable genes the "
            f"preprocessing was fitted on (e.g. {list(missing[:5])})."
        )
    xs = _dense(lognorm[:, idx])
    xs = np.clip((xs - state["mean"]) / state["std"], -state["scale_max"], state["scale_max"])
    return ((xs - state["pca_mean"]) @ state["loadings"]).astype(np.float32)


def _clr(
    counts, axis: int, train: np.ndarray | None, state: dict | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Seurat-flavour CLR: log1p(x / exp(mean log1p x)).

    ``axis=1`` (per cell across proteins, Seurat's WNN workflow) uses each cell alone, so muon
    does it. ``axis=0`` (per protein across cells) needs a per-protein denominator, which must
    come from training cells; muon would take it from all cells, so it is fitted here.
    """
    if axis == 1:
        import anndata as ad
        import muon as mu

        tmp = ad.AnnData(sparse.csr_matrix(counts, dtype=np.float32, copy=True))
        mu.prot.pp.clr(tmp, axis=1)
        return _dense(tmp.X), None
    x = _dense(counts)
    if state is not None and state.get("clr_logmean") is not None:
        logmean = np.asarray(state["clr_logmean"])
    else:
        logmean = np.log1p(x[train]).mean(axis=0)
    return np.log1p(x / np.exp(logmean)).astype(np.float32), logmean.astype(np.float32)


def _fit_adt(clr: np.ndarray, train: np.ndarray, n_pcs, seed: int, modality: str) -> dict[str, Any]:
    mean = clr[train].mean(axis=0)
    state: dict[str, Any] = {"mean": mean.astype(np.float32), "n_pcs": 0}
    if n_pcs is None:
        return state
    n_prot = clr.shape[1]
    allowed = min(n_prot - 1, int(train.sum()) - 1)
    if n_pcs == "auto":
        n_pcs = allowed
    if not isinstance(n_pcs, int | np.integer) or n_pcs < 1 or n_pcs > allowed:
        raise ValueError(
            f"adt_n_pcs={n_pcs!r} for modality {modality!r}, but {n_prot} proteins and "
            f"{int(train.sum())} training cells allow 1 to {allowed} PCs (or 'auto', or None)."
        )
    from sklearn.decomposition import PCA

    pca = PCA(n_components=int(n_pcs), svd_solver="full", random_state=seed).fit(clr[train] - mean)
    state["loadings"] = pca.components_.T.astype(np.float32)
    state["n_pcs"] = int(n_pcs)
    return state


def _apply_adt(clr: np.ndarray, state: dict[str, Any]) -> np.ndarray:
    out = clr - state["mean"]
    if state.get("n_pcs", 0):
        out = out @ state["loadings"]
    return out.astype(np.float32)


def _check_proteins(adata: AnnData, state: dict[str, Any], modality: str) -> None:
    want = pd.Index(state["proteins"])
    if not adata.var_names.equals(want):
        missing = want.difference(adata.var_names)
        extra = adata.var_names.difference(want)
        raise ValueError(
            f"Modality {modality!r} has proteins that differ from those the preprocessing was "
            f"fitted on: missing {list(missing[:5])}, unexpected {list(extra[:5])} "
            f"(expected {len(want)} proteins in the same order)."
        )


def prepare(
    mdata: MuData,
    rna: str = "rna",
    adt: str = "adt",
    n_pcs: int | None = None,
    train_size: float | int | None = None,
    seed: int = 0,
    *,
    rna_layer: str | None = None,
    adt_layer: str | None = None,
    n_top_genes: int = 2000,
    scale_max: float = 10.0,
    adt_clr_axis: Literal[0, 1] = 1,
    adt_n_pcs: int | Literal["auto"] | None = None,
    reference: MuData | dict | None = None,
) -> None:
    """Prepare RNA and ADT inputs for IndiSeek, fitting only on training cells.

    RNA: per-cell normalisation to 10,000 counts and ``log1p``; ``n_top_genes`` variable genes
    (scanpy, ``flavor="seurat"``); scaling to unit variance with values clipped at
    ``scale_max``; PCA. ADT: CLR (``adt_clr_axis=1``, each cell across proteins, as Seurat's WNN
    workflow does with ``margin = 2``; ``0`` normalises each protein across cells), centred with
    training means, optionally PCA.

    Variable genes, means, scales, PCA loadings (and the per-protein CLR denominators for
    ``adt_clr_axis=0``) are learned from the training cells alone and then applied to all
    cells, so test cells never influence training inputs. Raw counts are not modified.

    Parameters
    ----------
    mdata
        MuData with an RNA and an ADT modality of the same cells, raw counts in ``.X`` or a
        layer.
    rna, adt
        Names of the RNA and ADT modalities.
    n_pcs
        RNA principal components. ``None``: one per 25 training cells, between 50 and 200 (the
        paper's number, reached from 5,000 training cells), and never more than the training
        data allow (one less than the smaller of training cells and variable genes); a larger
        number is an error. On bone-marrow-like simulations the RNA-specific programmes of
        single types lie partly beyond the 50th PC, while on a thousand real cells 200 PCs are
        mostly noise (θ suite, ``benchmarks/README.md``).
    train_size
        Fraction (in (0, 1]) or number of cells for training. When given, a random split is
        written to ``mdata.obs["indiseek_split"]`` (``"train"``/``"test"``) and only training
        cells are used for fitting. ``None``: all cells are training cells.
    seed
        Seed of the split and of the PCA solver.
    rna_layer, adt_layer
        Layers that hold the counts (default ``.X``).
    n_top_genes
        Number of variable genes (all genes when the modality has fewer).
    scale_max
        Clip scaled RNA values at ± this value.
    adt_clr_axis
        1: CLR per cell (Seurat WNN convention, default); 0: per protein across cells.
    adt_n_pcs
        ``None`` (default): the centred CLR values are the ADT input. An integer or ``"auto"``
        (number of proteins − 1, which removes the direction CLR makes constant).
    reference
        A prepared MuData, or its ``mdata.uns["indiseek"]["prepare"]`` dict: apply that fitted
        preprocessing to new cells instead of fitting (e.g. to embed new cells with a trained
        model). The genes and proteins it was fitted on must be present.

    Raw counts are expected (whole numbers). When ``.X`` holds normalised values and
    ``layers["counts"]`` holds counts (e.g. after ``SeuratDisk``/``WriteH5MU``), the layer is
    used with a warning; otherwise non-integer values are an error naming the modality.

    Returns
    -------
    Nothing; writes

    - ``mdata[rna].obsm["X_indiseek_pca"]``: RNA input (cells × n_pcs),
    - ``mdata[rna].var["indiseek_hvg"]``: variable genes used,
    - ``mdata[adt].layers["indiseek_clr"]``: CLR values,
    - ``mdata[adt].obsm["X_indiseek_adt"]``: ADT input (centred CLR, or its PCs),
    - ``mdata.obs["indiseek_split"]`` when ``train_size`` is given,
    - ``mdata.uns["indiseek"]["prepare"]``: parameters and fitted state.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.synthetic_citeseq(n_cells=500, seed=0)
    >>> isk.pp.prepare(mdata, train_size=0.8, seed=0)
    >>> mdata.mod["rna"].obsm["X_indiseek_pca"].shape
    (500, 50)
    """
    out = _compute(
        mdata,
        rna,
        adt,
        n_pcs,
        train_size,
        seed,
        rna_layer,
        adt_layer,
        n_top_genes,
        scale_max,
        adt_clr_axis,
        adt_n_pcs,
        reference,
    )
    rna_ad, adt_ad = mdata.mod[rna], mdata.mod[adt]
    rna_ad.obsm[K.RNA_INPUT] = out["rna"]
    rna_ad.var[K.HVG] = rna_ad.var_names.isin(out["state"]["rna"]["genes"])
    adt_ad.layers[K.ADT_CLR_LAYER] = out["clr"]
    adt_ad.obsm[K.ADT_INPUT] = out["adt"]
    if not out["state"]["params"]["from_reference"]:
        if train_size is not None:
            mdata.obs[K.SPLIT] = pd.Categorical(
                np.where(out["train"], "train", "test"), categories=["train", "test"]
            )
        elif K.SPLIT in mdata.obs:
            del mdata.obs[K.SPLIT]
    mdata.uns.setdefault(K.UNS, {})["prepare"] = out["state"]


def prepared_inputs(
    mdata: MuData, reference: dict, rna: str | None = None, adt: str | None = None
) -> dict[str, np.ndarray]:
    """The model inputs of new cells under a fitted preprocessing, without writing anything.

    ``reference`` is a ``mdata.uns["indiseek"]["prepare"]`` dict. Modality names default to
    the reference's; counts come from the layer the reference was prepared from when the new
    cells have it, else from ``.X`` (or ``layers["counts"]``, see :func:`prepare`).
    Returns ``{"rna": …, "adt": …}``.
    """
    p = reference.get("params", {})
    rna = rna or str(p.get("rna", "rna"))
    adt = adt or str(p.get("adt", "adt"))
    layers = []
    for role, mod in (("rna", rna), ("adt", adt)):
        layer = str(p.get(f"{role}_layer", "")) or None
        has = mod in getattr(mdata, "mod", {}) and layer in mdata.mod[mod].layers
        layers.append(layer if has else None)
    out = _compute(
        mdata,
        rna,
        adt,
        None,
        None,
        0,
        *layers,
        2000,
        float(p.get("scale_max", 10.0)),
        int(p.get("adt_clr_axis", 1)),
        None,
        reference,
    )
    return {"rna": out["rna"], "adt": out["adt"]}


def _compute(
    mdata,
    rna,
    adt,
    n_pcs,
    train_size,
    seed,
    rna_layer,
    adt_layer,
    n_top_genes,
    scale_max,
    adt_clr_axis,
    adt_n_pcs,
    reference,
) -> dict[str, Any]:
    """Everything :func:`prepare` writes, computed without touching ``mdata``."""
    rna_ad, adt_ad, rna_counts, adt_counts, rna_layer, adt_layer = _checked_counts(
        mdata, rna, adt, rna_layer, adt_layer, n_top_genes, adt_clr_axis
    )
    n = rna_ad.n_obs
    ref_state = None
    if reference is not None:
        ref_state = _reference_state(reference)
        if train_size is not None:
            raise ValueError("train_size cannot be combined with reference= (nothing is fitted).")
    train = np.ones(n, dtype=bool) if train_size is None else split_cells(n, train_size, seed)
    if ref_state is None and train.sum() < 2:
        raise ValueError(f"At least 2 training cells are needed to fit; got {int(train.sum())}.")
    lognorm = _lognorm(rna_counts)
    if ref_state is None:
        rna_state = _fit_rna(
            lognorm,
            train,
            rna_ad.var_names,
            n_pcs,
            min(n_top_genes, rna_ad.n_vars),
            scale_max,
            seed,
            rna,
        )
    else:
        rna_state = ref_state["rna"]
    rna_x = _apply_rna(lognorm, rna_ad.var_names, rna_state, rna)
    clr, adt_state = _adt_clr(
        adt_ad, adt_counts, train, ref_state, adt_clr_axis, adt_n_pcs, seed, adt
    )
    adt_x = _apply_adt(clr, adt_state)
    params = dict(rna=rna, adt=adt, rna_layer=rna_layer or "", adt_layer=adt_layer or "")
    params.update(
        n_pcs=int(rna_state["n_pcs"]),
        n_top_genes=len(rna_state["genes"]),
        scale_max=float(rna_state.get("scale_max", scale_max)),
        adt_clr_axis=int(adt_state["clr_axis"]),
        adt_n_pcs=int(adt_state.get("n_pcs", 0)),
        train_size=-1 if train_size is None else float(train_size),
        n_train=int(train.sum()),
        seed=int(seed),
        from_reference=ref_state is not None,
    )
    msg = "prepared %d cells (%d for fitting): RNA %d PCs of %d genes, ADT %d dims"
    logger.info(msg, n, train.sum(), rna_x.shape[1], len(rna_state["genes"]), adt_x.shape[1])
    return {
        "rna": rna_x,
        "adt": adt_x,
        "clr": clr,
        "train": train,
        "state": {"rna": rna_state, "adt": adt_state, "params": params},
    }


def _reference_state(reference) -> dict[str, Any]:
    if hasattr(reference, "uns"):
        state = reference.uns.get(K.UNS, {}).get("prepare")
        if state is None:
            raise ValueError(
                "reference= is a MuData that was never prepared (no "
                "uns['indiseek']['prepare']); pass the prepared training MuData."
            )
        return state
    if not isinstance(reference, dict) or not {"rna", "adt"} <= set(reference):
        raise TypeError(
            "reference= must be a prepared MuData or its uns['indiseek']['prepare'] dict, got "
            f"{type(reference).__name__}."
        )
    return reference


def _adt_clr(adt_ad, counts, train, ref_state, clr_axis, n_pcs, seed, adt: str):
    """CLR of the ADT counts and the ADT fit: learned on training cells, or the reference's."""
    if ref_state is not None:
        _check_proteins(adt_ad, ref_state["adt"], adt)
        axis = int(ref_state["adt"]["clr_axis"])
        clr, _ = _clr(counts, axis, train, ref_state["adt"])
        return clr, ref_state["adt"]
    clr, logmean = _clr(counts, clr_axis, train, None)
    state = _fit_adt(clr, train, n_pcs, seed, adt)
    state["clr_axis"] = int(clr_axis)
    if logmean is not None:
        state["clr_logmean"] = logmean
    state["proteins"] = np.asarray(adt_ad.var_names, dtype=str)
    return clr, state


def _checked_counts(mdata, rna, adt, rna_layer, adt_layer, n_top_genes, adt_clr_axis):
    """Both modalities (same cells, same order) and their count matrices, checked."""
    rna_ad = get_modality(mdata, rna, "rna")
    adt_ad = get_modality(mdata, adt, "adt")
    check_same_cells(mdata, rna, adt)
    if not rna_ad.obs_names.equals(adt_ad.obs_names):
        raise ValueError(
            f"Modalities {rna!r} and {adt!r} hold the same cells in a different order; reorder "
            f"one, e.g. mdata.mod[{adt!r}] = mdata.mod[{adt!r}][mdata.mod[{rna!r}].obs_names]."
        )
    if n_top_genes < 2:
        raise ValueError(f"n_top_genes must be >= 2, got {n_top_genes}.")
    if adt_clr_axis not in (0, 1):
        raise ValueError(f"adt_clr_axis must be 0 or 1, got {adt_clr_axis!r}.")
    check_unique_names(mdata, (rna, adt))
    obs_names = rna_ad.obs_names
    rna_counts, rna_layer = resolve_counts(rna_ad, rna_layer, rna, "rna")
    adt_counts, adt_layer = resolve_counts(adt_ad, adt_layer, adt, "adt")
    check_counts(rna_counts, rna, obs_names, f"layer {rna_layer!r}" if rna_layer else ".X")
    check_counts(adt_counts, adt, obs_names, f"layer {adt_layer!r}" if adt_layer else ".X")
    return rna_ad, adt_ad, rna_counts, adt_counts, rna_layer, adt_layer
