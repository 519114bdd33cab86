"""The per-modality transforms behind :func:`indiseek.pp.prepare`: fit on training cells, apply
to any cells."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ._batches import group_means, with_unseen_means

if TYPE_CHECKING:
    from anndata import AnnData

    from ._batches import Batches

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


#: Rows densified at once when preprocessing is applied: bounds memory on atlases (50,000 cells
#: × 2,000 genes is 400 MB in float32) without changing any value.
CHUNK_CELLS = 50_000


def chunks(n: int, size: int | None = None):
    """Slices of ``range(n)`` of at most ``size`` rows (default :data:`CHUNK_CELLS`)."""
    size = size or CHUNK_CELLS
    return [slice(i, min(i + size, n)) for i in range(0, n, size)] or [slice(0, 0)]


def dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)


def lognormalise(counts) -> Any:
    """Per-cell normalisation to 10,000 counts and log1p: uses nothing but the cell itself."""
    import anndata as ad
    import scanpy as sc

    tmp = ad.AnnData(counts.astype(np.float32, copy=True))
    # A fixed target sum keeps normalisation per-cell; scanpy's default (the median library
    # size over all cells) would let test cells shape training inputs.
    sc.pp.normalize_total(tmp, target_sum=TARGET_SUM)
    sc.pp.log1p(tmp)
    return tmp.X


#: Above this many training cells, :func:`fit_rna` selects variable genes and fits the PCA on
#: this many training cells drawn with the seed (below it, on all of them); gene means and
#: scales still come from every training cell, in chunks.
FIT_MAX_CELLS = 200_000


def _chunked_moments(
    counts, cells: np.ndarray, cols: np.ndarray, groups: np.ndarray | None = None, n_groups: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation of the log-normalised genes ``cols`` over the rows
    ``cells``, chunk by chunk (the training cells are never copied out at once).

    With ``groups`` (a group code for each of ``cells``): the means of each group
    (``n_groups`` × genes, NaN for an empty group) and the pooled within-group standard
    deviation.
    """
    n = len(cells)
    codes = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    total = np.zeros((n_groups, len(cols)))
    sq = np.zeros(len(cols))
    for rows in chunks(n):
        block = dense(lognormalise(counts[cells[rows]])[:, cols]).astype(np.float64)
        if groups is None:
            total[0] += block.sum(axis=0)
        else:
            for g in np.unique(codes[rows]):
                total[g] += block[codes[rows] == g].sum(axis=0)
        sq += (block**2).sum(axis=0)
    size = np.bincount(codes, minlength=n_groups).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / size[:, None]
    present = size > 0
    within = sq - (size[present, None] * mean[present] ** 2).sum(axis=0)
    var = np.maximum(within, 0) / max(n - int(present.sum()), 1)
    std = np.sqrt(var).astype(np.float32)
    return (mean[0] if groups is None else mean).astype(np.float32), std


def max_pcs(n_train: int, n_features: int) -> int:
    return max(min(n_train, n_features) - 1, 1)


def fit_rna(
    counts,
    train: np.ndarray,
    genes: pd.Index,
    n_pcs: int | None,
    n_top_genes: int,
    scale_max: float,
    seed: int,
    modality: str,
    batches: Batches | None = None,
) -> dict[str, Any]:
    """Variable genes, gene means and scales, and PCA loadings, from the training cells.

    With ``batches`` (the training batches coded first, see :func:`.read_batches`), variable
    genes are selected across batches (scanpy's ``batch_key``), each batch has its own gene
    means (``state["mean"]``: batches × genes) and the scale is pooled within batches.
    """
    import anndata as ad
    import scanpy as sc

    train_idx = np.flatnonzero(train)
    n_train = len(train_idx)
    fit_idx = train_idx
    if n_train > FIT_MAX_CELLS:  # atlas: variable genes and PCA from a seeded subset
        rng = np.random.default_rng(seed)
        fit_idx = train_idx[np.sort(rng.choice(n_train, FIT_MAX_CELLS, replace=False))]
    tr = ad.AnnData(lognormalise(counts[fit_idx]), var=pd.DataFrame(index=genes))
    codes = None if batches is None else batches.codes
    n_seen = 0 if codes is None else int(codes[train_idx].max()) + 1
    if n_top_genes >= len(genes):
        hvg = np.ones(len(genes), dtype=bool)
    else:
        by_batch = {}
        if codes is not None and n_seen > 1:
            tr.obs["batch"] = pd.Categorical(codes[fit_idx].astype(str))
            by_batch["batch_key"] = "batch"
        sc.pp.highly_variable_genes(tr, n_top_genes=n_top_genes, flavor="seurat", **by_batch)
        hvg = tr.var["highly_variable"].to_numpy()
    cols = np.flatnonzero(hvg)
    xs = dense(tr.X[:, cols])
    if n_train > FIT_MAX_CELLS:  # the genes' means and scales still come from every training cell
        groups = None if codes is None else codes[train_idx]
        mean, std = _chunked_moments(counts, train_idx, cols, groups, max(n_seen, 1))
    elif codes is None:
        mean = xs.mean(axis=0)
        std = xs.std(axis=0, ddof=1)
    else:
        mean = group_means(xs, codes[fit_idx], n_seen).astype(np.float32)
        ss = np.zeros(xs.shape[1])
        for rows in chunks(len(xs)):  # float64 squares, a chunk of cells at a time
            resid = xs[rows] - mean[codes[fit_idx[rows]]]
            ss += (resid.astype(np.float64) ** 2).sum(axis=0)
        std = np.sqrt(ss / max(n_train - n_seen, 1)).astype(np.float32)
    std[std == 0] = 1.0
    row_mean = mean if codes is None else mean[codes[fit_idx]]
    xs = _scaled(xs, row_mean, std, scale_max)
    allowed = max_pcs(n_train, int(hvg.sum()))
    if n_pcs is None:
        n_pcs = min(default_n_pcs(n_train), allowed)
    elif n_pcs < 1 or n_pcs > allowed:
        raise ValueError(
            f"n_pcs={n_pcs} for modality {modality!r}, but {n_train} training cells × "
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


def apply_rna(
    counts, genes: pd.Index, state: dict[str, Any], modality: str, batches: Batches | None = None
) -> np.ndarray:
    """RNA inputs of any cells: log-normalised, scaled and projected, chunk by chunk.

    A fit with batches needs ``batches`` (coded with the fit's batches first); cells of a batch
    the fit has no means for are centred on their own batch's means.
    """
    idx = genes.get_indexer(pd.Index(state["genes"]))
    if (idx < 0).any():
        missing = np.asarray(state["genes"])[idx < 0]
        raise ValueError(
            f"Modality {modality!r} lacks {len(missing)} of the {len(idx)} variable genes the "
            f"preprocessing was fitted on (e.g. {list(missing[:5])})."
        )
    n = counts.shape[0]
    out = np.empty((n, int(state["n_pcs"])), dtype=np.float32)
    loadings = np.asarray(state["loadings"], dtype=np.float64)
    mean = np.asarray(state["mean"], dtype=np.float32)
    if mean.ndim == 2:
        codes = batches.codes
        mean = with_unseen_means(
            mean,
            codes,
            batches.n,
            lambda b: _chunked_moments(counts, np.flatnonzero(codes == b), idx)[0],
        )
    for rows in chunks(n):
        row_mean = mean if mean.ndim == 1 else mean[batches.codes[rows]]
        xs = _scaled(lognormalise(counts[rows])[:, idx], row_mean, state["std"], state["scale_max"])
        # float64 projection: a cell's PCs do not depend on the other cells in the matrix
        centred = xs.astype(np.float64) - np.asarray(state["pca_mean"], dtype=np.float64)
        out[rows] = centred @ loadings
    return out


def _scaled(x, mean, std, scale_max: float) -> np.ndarray:
    """Dense, scaled to the fitted means and scales, clipped at ± ``scale_max``."""
    return np.clip((dense(x) - mean) / std, -scale_max, scale_max)


def clr_transform(
    counts, axis: int, train: np.ndarray | None, state: dict | None, model: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Seurat-flavour CLR: log1p(x / exp(mean log1p x)).

    ``axis=1`` (per cell across proteins, Seurat's WNN workflow) uses each cell alone, so muon
    does it. ``axis=0`` (per protein across cells) needs a per-protein denominator, which must
    come from training cells; muon would take it from all cells, so it is fitted here.
    ``model`` (boolean, per protein): the proteins whose geometric mean is a cell's denominator
    with ``axis=1`` (isotype controls left out); every protein is transformed.
    """
    if axis == 1:
        if model is not None and not model.all():
            x = dense(counts).astype(np.float64)
            denom = np.exp(np.log1p(x[:, model]).mean(axis=1, keepdims=True))
            return np.log1p(x / denom).astype(np.float32), None
        import anndata as ad
        import muon as mu

        tmp = ad.AnnData(sparse.csr_matrix(counts, dtype=np.float32, copy=True))
        mu.prot.pp.clr(tmp, axis=1)
        return dense(tmp.X), None
    x = dense(counts)
    if state is not None and state.get("clr_logmean") is not None:
        logmean = np.asarray(state["clr_logmean"])
    else:
        logmean = np.log1p(x[train]).mean(axis=0)
    return np.log1p(x / np.exp(logmean)).astype(np.float32), logmean.astype(np.float32)


def fit_adt(
    clr: np.ndarray,
    train: np.ndarray,
    n_pcs,
    seed: int,
    modality: str,
    batches: Batches | None = None,
) -> dict[str, Any]:
    """Protein means (per batch with ``batches``) and optionally PCA loadings, from training
    cells."""
    if batches is None:
        mean = clr[train].mean(axis=0)
        centred = clr[train] - mean
    else:
        codes = batches.codes[train]
        mean = group_means(clr[train], codes, int(codes.max()) + 1)
        centred = clr[train] - mean[codes].astype(np.float32)
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

    pca = PCA(n_components=int(n_pcs), svd_solver="full", random_state=seed).fit(centred)
    state["loadings"] = pca.components_.T.astype(np.float32)
    state["n_pcs"] = int(n_pcs)
    return state


def apply_adt(clr: np.ndarray, state: dict[str, Any], batches: Batches | None = None) -> np.ndarray:
    """ADT inputs: centred CLR values (per batch for a fit with batches; a batch the fit has no
    means for on its own cells' means), or their PCs."""
    mean = np.asarray(state["mean"], dtype=np.float32)
    if mean.ndim == 2:
        own = group_means(clr, batches.codes, batches.n)
        mean = with_unseen_means(mean, batches.codes, batches.n, own.__getitem__)
        mean = mean.astype(np.float32)[batches.codes]
    out = clr - mean
    if state.get("n_pcs", 0):
        out = out.astype(np.float64) @ np.asarray(state["loadings"], dtype=np.float64)
    return out.astype(np.float32)


def check_proteins(adata: AnnData, state: dict[str, Any], modality: str) -> None:
    want = pd.Index(state["proteins"])
    if not adata.var_names.equals(want):
        missing = want.difference(adata.var_names)
        extra = adata.var_names.difference(want)
        raise ValueError(
            f"Modality {modality!r} has proteins that differ from those the preprocessing was "
            f"fitted on: missing {list(missing[:5])}, unexpected {list(extra[:5])} "
            f"(expected {len(want)} proteins in the same order)."
        )
