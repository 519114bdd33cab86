"""RNA and ADT preprocessing with every fitted quantity learned from training cells only."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import (
    check_mudata,
)
from ._batches import batches_for, order_batches
from ._checks import checked_counts, reference_state
from ._isotypes import isotype_mask
from ._local import correct_locally
from ._split import training_cells
from ._transforms import (
    apply_adt,
    apply_rna,
    check_proteins,
    clr_transform,
    fit_adt,
    fit_rna,
)

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger(__name__)


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
    isotype_controls: Literal["auto"] | Sequence[str] | None = "auto",
    batch_key: str | None = None,
    split_key: str | None = None,
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
        layer. It may be backed (``mudata.read_h5mu(path, backed=True)``): RNA counts in
        ``.X`` (best stored as CSR) are then read from disk 50,000 cells at a time, with the
        same result; nothing is written to the file.
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
        1: CLR per cell across proteins (default; Seurat's ``NormalizeData(method = "CLR",
        margin = 2)`` as in its WNN vignette); 0: per protein across cells (muon's default,
        which :func:`indiseek.tl.wnn_weights` uses to match Seurat's weights).
    adt_n_pcs
        ``None`` (default): the centred CLR values are the ADT input. An integer or ``"auto"``
        (number of proteins − 1, which removes the direction CLR makes constant).
    isotype_controls
        ADT features that are isotype controls (antibodies against no target: they measure
        background), left out of the CLR denominators and the model inputs but kept in the
        object (a warning names them). ``"auto"`` (default): the rule of
        :func:`indiseek.pp.isotype_mask` (``Mouse-IgG1…``, ``rat_IgG2b``, ``…isotype…``,
        ``IgG1_control_…``; markers such as ``IgD`` or ``IgM`` do not match); a list of
        protein names; ``None``: keep every protein. With ``reference=`` the reference's
        choice is applied (passing another value is an error).
    batch_key
        Column of ``mdata.obs`` naming each cell's batch (donor, lane, site). Variable genes
        are then selected across batches (scanpy's ``highly_variable_genes(batch_key=...)``);
        each batch's RNA is centred on its own gene means (scaled with the pooled within-batch
        standard deviation) before the PCA, and each batch's ADT CLR values on its own protein
        means; then, because what a donor adds depends on the cell type, each cell is moved by
        the local difference between batches: the mean of its 100 nearest training cells in
        every batch (averaged over batches) minus the mean of its 100 nearest in its own batch
        (never more than a tenth of a batch; searched in the first 50 input dimensions). The
        split is drawn within each batch. Everything is learned from training cells (up to
        5,000 per batch are kept in the fit as neighbours, so new cells are corrected the same
        way). A batch without training cells (a held-out donor, or new cells with
        ``reference=``) is centred on its own cells, or, below 20 cells, on the average of the
        training batches' means without the local step, with a warning. This assumes batches
        hold the same cell types in broadly similar proportions: a type that only one donor has
        shifts that donor's means. :meth:`indiseek.IndiSeek.setup_mudata` takes the key from
        here and the model also gives step 2 the batch (``batch_covariate``). With
        ``reference=``, defaults to the reference's ``batch_key``. ``None`` (default): no
        batches (inputs exactly as without this option).
    split_key
        Column of ``mdata.obs`` holding ``"train"``/``"test"`` per cell: use this split (e.g.
        whole donors held out, see :func:`indiseek.pp.split_by_group`) instead of drawing one;
        cannot be combined with ``train_size``. Pass the same key to
        :meth:`indiseek.IndiSeek.setup_mudata` (its default takes it from here).
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
    - ``mdata[adt].layers["indiseek_clr"]``: CLR values of every protein (with
      ``adt_clr_axis=1`` the isotype controls relative to the same per-cell denominators as
      the other proteins),
    - ``mdata[adt].var["indiseek_isotype"]``: which proteins were left out as isotype controls,
    - ``mdata[adt].obsm["X_indiseek_adt"]``: ADT input (centred CLR, or its PCs),
    - ``mdata.obs["indiseek_split"]`` when ``train_size`` is given (drawn within each batch
      with ``batch_key``),
    - ``mdata.uns["indiseek"]["prepare"]``: parameters and fitted state (with ``batch_key``
      also ``["local"]``: the training cells' inputs that serve as neighbours, at most 5,000
      per batch).

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.synthetic_citeseq(n_cells=500, seed=0)
    >>> isk.pp.prepare(mdata, train_size=0.8, seed=0)
    >>> mdata.mod["rna"].obsm["X_indiseek_pca"].shape
    (500, 50)
    """
    out = _compute(**locals())  # every argument of prepare, by name
    rna_ad, adt_ad = mdata.mod[rna], mdata.mod[adt]
    rna_ad.obsm[K.RNA_INPUT] = out["rna"]
    rna_ad.var[K.HVG] = rna_ad.var_names.isin(out["state"]["rna"]["genes"])
    adt_ad.layers[K.ADT_CLR_LAYER] = out["clr"]
    adt_ad.var[K.ISOTYPE] = out["isotype"]
    adt_ad.obsm[K.ADT_INPUT] = out["adt"]
    if not out["state"]["params"]["from_reference"] and split_key is None:
        if train_size is not None:
            mdata.obs[K.SPLIT] = pd.Categorical(
                np.where(out["train"], "train", "test"), categories=["train", "test"]
            )
        elif K.SPLIT in mdata.obs:
            warnings.warn(
                f"pp.prepare: removed mdata.obs[{K.SPLIT!r}]: without train_size or split_key "
                "every cell is a training cell (pass split_key='indiseek_split' to use that "
                "split, e.g. one written by pp.split_by_group).",
                UserWarning,
                stacklevel=2,
            )
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
    layers = {}
    for role, mod in (("rna", rna), ("adt", adt)):
        layer = str(p.get(f"{role}_layer", "")) or None
        has = mod in getattr(mdata, "mod", {}) and layer in mdata.mod[mod].layers
        layers[f"{role}_layer"] = layer if has else None
    out = _compute(mdata, rna=rna, adt=adt, reference=reference, **layers)
    return {"rna": out["rna"], "adt": out["adt"]}


def _compute(
    mdata,
    rna: str,
    adt: str,
    n_pcs=None,
    train_size=None,
    seed=0,
    *,
    rna_layer=None,
    adt_layer=None,
    n_top_genes=2000,
    scale_max=10.0,
    adt_clr_axis=1,
    adt_n_pcs=None,
    isotype_controls="auto",
    batch_key=None,
    split_key=None,
    reference=None,
) -> dict[str, Any]:
    """Everything :func:`prepare` writes, computed without touching ``mdata`` (same arguments;
    with ``reference``, only the modalities and count layers matter)."""
    check_mudata(mdata)
    if isinstance(scale_max, bool) or not isinstance(scale_max, int | float) or not scale_max > 0:
        raise ValueError(f"scale_max must be a number > 0, got {scale_max!r}.")
    rna_ad, adt_ad, rna_counts, adt_counts, rna_layer, adt_layer = checked_counts(
        mdata, rna, adt, rna_layer, adt_layer, n_top_genes, adt_clr_axis, seed, n_pcs
    )
    n = rna_ad.n_obs
    ref_state, isotypes = _reference_and_isotypes(
        reference, isotype_controls, adt_ad, adt, train_size
    )
    batch_key, batches = batches_for(mdata, batch_key, ref_state)
    train = training_cells(mdata, n, train_size, split_key, seed, batches, ref_state)
    if ref_state is None and train.sum() < 2:
        raise ValueError(f"At least 2 training cells are needed to fit; got {int(train.sum())}.")
    batches, known = order_batches(mdata, batches, train, ref_state)
    if ref_state is None:
        n_genes = min(n_top_genes, rna_ad.n_vars)
        rna_state = fit_rna(
            rna_counts, train, rna_ad.var_names, n_pcs, n_genes, scale_max, seed, rna, batches
        )
        if batches is not None:
            rna_state["batches"] = np.asarray(known, dtype=str)
    else:
        rna_state = ref_state["rna"]
    rna_x = apply_rna(rna_counts, rna_ad.var_names, rna_state, rna, batches)
    clr, adt_state, isotype = _adt_clr(
        adt_ad, adt_counts, train, ref_state, adt_clr_axis, adt_n_pcs, seed, adt, isotypes, batches
    )
    adt_x = apply_adt(clr[:, ~isotype], adt_state, batches)
    (rna_x, adt_x), local_state = correct_locally(
        (rna_x, adt_x), batches, train, known, ref_state, seed
    )
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
        batch_key=batch_key or "",
        split_key=split_key or "",
        from_reference=ref_state is not None,
    )
    msg = "prepared %d cells (%d for fitting): RNA %d PCs of %d genes, ADT %d dims"
    logger.info(msg, n, train.sum(), rna_x.shape[1], len(rna_state["genes"]), adt_x.shape[1])
    return {
        "rna": rna_x,
        "adt": adt_x,
        "clr": clr,
        "isotype": isotype,
        "train": train,
        "state": dict(rna=rna_state, adt=adt_state, params=params)
        | ({} if local_state is None else {"local": local_state}),
    }


def _reference_and_isotypes(reference, isotype_controls, adt_ad, adt: str, train_size):
    """The reference's fit (``None`` when fitting) and the isotype mask to fit with; checked
    before any fitting, so a wrong name fails fast."""
    if reference is None:
        return None, isotype_mask(adt_ad.var_names, isotype_controls, adt)
    if not (isinstance(isotype_controls, str) and isotype_controls == "auto"):
        raise ValueError(
            "isotype_controls cannot be combined with reference=: the reference's choice of "
            "isotype controls is applied to the new cells."
        )
    if train_size is not None:
        raise ValueError("train_size cannot be combined with reference= (nothing is fitted).")
    return reference_state(reference), None


def _adt_clr(
    adt_ad, counts, train, ref_state, clr_axis, n_pcs, seed, adt: str, isotypes, batches=None
):
    """CLR of the ADT counts (every protein) and the ADT fit on the proteins the model uses
    (isotype controls left out): learned on training cells, or the reference's."""
    if ref_state is not None:
        check_proteins(adt_ad, ref_state["adt"], adt)
        state = ref_state["adt"]
        mask = np.asarray(state.get("isotype", np.zeros(adt_ad.n_vars, bool)), dtype=bool)
        clr, _ = clr_transform(counts, int(state["clr_axis"]), train, state, ~mask)
        return clr, state, mask
    mask = isotypes
    if mask.any():
        warnings.warn(
            f"pp.prepare: {int(mask.sum())} isotype control(s) of modality {adt!r} left out of "
            f"the model inputs: {list(adt_ad.var_names[mask])} (isotype_controls=None keeps them).",
            UserWarning,
            stacklevel=4,
        )
    clr, logmean = clr_transform(counts, clr_axis, train, None, ~mask)
    state = fit_adt(clr[:, ~mask], train, n_pcs, seed, adt, batches)
    state["clr_axis"] = int(clr_axis)
    if logmean is not None:
        state["clr_logmean"] = logmean
    state["proteins"] = np.asarray(adt_ad.var_names, dtype=str)
    state["isotype"] = mask
    return clr, state, mask
