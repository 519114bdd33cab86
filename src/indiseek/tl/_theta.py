"""θ-score: which modality's specific features define a cell's type."""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import check_mudata, find_labels, get_obsm
from ._neighbors import knn_indices
from ._scored_cells import _crossfit_folds, _ensemble_members, _subset_mask

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger(__name__)


def label_purity(
    x: np.ndarray,
    labels: np.ndarray,
    k: int = 10,
    method: Literal["auto", "exact", "approx"] = "auto",
    seed: int = 0,
) -> np.ndarray:
    """β: share of each cell's ``k`` nearest neighbours in ``x`` that carry its label.

    Parameters
    ----------
    x
        Cells × dims embedding.
    labels
        One label per cell.
    k
        Neighbours (the cell itself excluded).
    method
        ``"exact"``, ``"approx"`` or ``"auto"``.
    seed
        Seed of the approximate search.

    Returns
    -------
    β per cell, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 9]
    >>> label_purity(x, np.array(list("aaaaabbbbb")), k=3).min()
    np.float64(1.0)
    """
    x = np.asarray(x, dtype=np.float32)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(labels):
        raise ValueError(
            f"Embedding of shape {x.shape} and {len(labels)} labels: one row per labelled cell "
            "is needed."
        )
    idx = knn_indices(x, k, method, seed)
    codes = pd.factorize(labels)[0]
    return (codes[idx] == codes[:, None]).mean(axis=1)


def theta_arrays(
    z_rna: np.ndarray,
    z_adt: np.ndarray,
    labels: np.ndarray,
    k: int = 10,
    pseudocount: float | None = None,
    method: Literal["auto", "exact", "approx"] = "auto",
    seed: int = 0,
    members: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array version of :func:`theta_score` for labelled cells: returns (θ, β_RNA, β_ADT).

    With ``members > 1`` each embedding is the concatenation of that many equally wide blocks
    (the members of an ensemble) and θ and β are computed in every block separately and
    averaged; :func:`theta_score` instead searches neighbours once in the whole embedding
    (``members=1`` here), which agreed better with the truth on the θ suite.
    """
    theta, beta_rna, beta_adt = theta_members(
        z_rna, z_adt, labels, members, k=k, pseudocount=pseudocount, method=method, seed=seed
    )
    return theta.mean(axis=1), beta_rna.mean(axis=1), beta_adt.mean(axis=1)


def theta_members(
    z_rna: np.ndarray,
    z_adt: np.ndarray,
    labels: np.ndarray,
    members: int,
    *,
    k: int = 10,
    pseudocount: float | None = None,
    method: Literal["auto", "exact", "approx"] = "auto",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """θ, β_RNA and β_ADT of every cell in every member's block: three cells × members arrays.

    :func:`theta_arrays` averages them; their spread over members says how far one model's θ
    can be trusted.
    """
    if int(members) != members or members < 1:
        raise ValueError(f"members must be a positive integer, got {members!r}.")
    for name, z in (("Z_RNA", z_rna), ("Z_ADT", z_adt)):
        if z.shape[1] % members:
            raise ValueError(
                f"{name} has {z.shape[1]} columns, which do not split into members={members} "
                "equally wide blocks."
            )
    eps = 1.0 / (2 * k) if pseudocount is None else float(pseudocount)
    out: list[list[np.ndarray]] = [[], [], []]
    for zr, za in zip(
        np.split(np.asarray(z_rna), members, axis=1),
        np.split(np.asarray(z_adt), members, axis=1),
        strict=True,
    ):
        beta_rna = label_purity(zr, labels, k, method, seed)
        beta_adt = label_purity(za, labels, k, method, seed)
        for store, value in zip(
            out, (np.log((beta_rna + eps) / (beta_adt + eps)), beta_rna, beta_adt), strict=True
        ):
            store.append(value)
    theta, beta_rna, beta_adt = (np.stack(v, axis=1) for v in out)
    return theta, beta_rna, beta_adt


#: Entries of ``uns["indiseek"]`` that other calls own; not valid as a θ ``key_added``.
RESERVED = {"prepare", "setup", "model", "embeddings", "umap", "theta"}


def _common_k(groups, k: int, cross_fitted: bool, n: int) -> int:
    """One ``k`` for every group of scored cells (so θ is on one scale), lowered below the
    smallest set searched; warns about it, about single cells and about mixed estimators."""
    sizes = [int(cells.sum()) for cells, _ in groups]
    if cross_fitted and sizes[0] and any(sizes[1:]):
        warnings.warn(
            f"{sizes[0]} scored cells were held out from every member (a split as well as "
            "cross-fitting): they are scored by the whole ensemble, the fold cells by one member "
            "each, in the same column.",
            UserWarning,
            stacklevel=3,
        )
    # a fold's cells are searched among every scored cell; held-out cells among themselves
    sizes = [m if g is None or m == 0 else n for (_, g), m in zip(groups, sizes, strict=True)]
    lonely = [g for (_, g), m in zip(groups, sizes, strict=True) if m == 1]
    if lonely:
        warnings.warn(
            f"{'held-out cells' if None in lonely else 'fold'} {lonely}: a single scored cell "
            "has no neighbours; its θ is NaN.",
            stacklevel=3,
        )
    smallest = min((m for m in sizes if m >= 2), default=n)
    if k >= smallest:
        warnings.warn(
            f"k={k} is not smaller than the {smallest} scored cells searched; using "
            f"k={smallest - 1}.",
            stacklevel=3,
        )
        k = smallest - 1
    return k


def _check_theta_args(k, members, pseudocount, key_added, combine) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    if members != "auto" and (
        isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1
    ):
        raise ValueError(f"members must be 'auto' or a positive integer, got {members!r}.")
    if pseudocount is not None and not (
        isinstance(pseudocount, int | float) and np.isfinite(pseudocount) and pseudocount > 0
    ):
        raise ValueError(f"pseudocount must be a number > 0 or None, got {pseudocount!r}.")
    if not isinstance(key_added, str) or not key_added or key_added in RESERVED:
        raise ValueError(
            f"key_added must be a non-empty string other than {sorted(RESERVED)}, got "
            f"{key_added!r}."
        )
    if combine not in ("joint", "mean"):
        raise ValueError(f"combine must be 'joint' or 'mean', got {combine!r}.")


def theta_score(
    mdata: MuData,
    label_key: str,
    k: int = 10,
    *,
    rna_key: str = K.OBSM["Z_rna"],
    adt_key: str = K.OBSM["Z_adt"],
    subset: str | np.ndarray | None = "auto",
    split_key: str | None = None,
    pseudocount: float | None = None,
    method: Literal["auto", "exact", "approx"] = "auto",
    key_added: str = K.THETA,
    seed: int = 0,
    members: int | Literal["auto"] = "auto",
    combine: Literal["joint", "mean"] = "joint",
    cross_fit: bool | Literal["auto"] = "auto",
) -> None:
    """Per-cell θ = log(β_RNA / β_ADT) from modality-specific embeddings.

    β_RNA (β_ADT) is the share of a cell's ``k`` nearest neighbours (Euclidean) in Z_RNA
    (Z_ADT) that carry the cell's label. θ > 0: the cell's type is better told apart by
    RNA-specific features; θ < 0: by ADT-specific features. For an ensemble, the neighbours
    are searched once in all members' Z side by side (as :meth:`IndiSeek.write_obsm` writes
    them), and each member's own θ is kept for the spread over members.

    Handling of edge cases:

    - β = 0 is common (a type no modality resolves). θ uses a pseudocount ε on both sides,
      ``θ = log((β_RNA + ε) / (β_ADT + ε))``, with ``ε = 1/(2k)`` (half a neighbour) by default,
      so θ is always finite and 0 when both β are 0.
    - Cells without a label (NaN) take no part: they are not searched as neighbours and get
      NaN θ and β.
    - A type with a single cell has β = 0 in both spaces, hence θ = 0.
    - ``k`` ≥ the number of scored cells: ``k`` is lowered to (cells − 1) with a warning.

    Parameters
    ----------
    mdata
        MuData with the embeddings in ``.obsm`` (:meth:`IndiSeek.write_obsm`).
    label_key
        Labels in ``mdata.obs`` or a modality's ``.obs`` (``"rna:celltype"`` or ``"celltype"``).
    k
        Number of neighbours (paper: 10).
    rna_key, adt_key
        Keys of Z_RNA and Z_ADT in ``mdata.obsm``, or in a modality's ``.obsm`` as
        ``"<modality>:<key>"`` (any two embeddings work, e.g. the prepared per-modality inputs
        ``"rna:X_indiseek_pca"`` and ``"adt:X_indiseek_adt"``, the naive baseline; give a
        ``key_added`` then, so the model's θ is kept).
    subset
        Score only these cells, with neighbours searched among them: ``"auto"`` (default:
        the held-out cells, ``mdata.obs[split_key] == "test"``, when there are any, else all
        cells), ``None`` (all cells), a value of ``mdata.obs[split_key]`` such as
        ``"train"``, or a boolean mask. Other cells get NaN.
    split_key
        Column that ``subset`` names a value of (default: the one ``setup_mudata`` recorded,
        else ``"indiseek_split"``).
    pseudocount
        ε above (default ``1/(2k)``).
    method
        Neighbour search: ``"exact"`` (scikit-learn), ``"approx"`` (pynndescent) or ``"auto"``
        (approximate above 50,000 cells).
    key_added
        ``mdata.obs`` column for θ; β go to ``indiseek_beta_rna`` / ``indiseek_beta_adt``.
    seed
        Seed of the approximate search.
    members
        Number of ensemble members whose Z stand side by side in the embeddings; each
        member's own θ goes to the members key. ``"auto"``: with the default keys, the
        ``n_members`` that :meth:`IndiSeek.write_obsm` recorded (when the keys' widths match
        it); otherwise 1. Pass it explicitly for an ensemble's Z copied to other keys.
    combine
        ``"joint"`` (default): θ and β from one neighbour search in all members' Z side by side.
        ``"mean"``: each member's θ and β averaged (indiseek 0.1's ensemble θ), the better
        read-out with ``normalize_z=True`` on the θ suite (``benchmarks/README.md``).
    cross_fit
        For embeddings written by a model trained with ``train(cross_fit=True)``: score the
        cells of fold ``j`` with member ``j`` alone (the member that never trained on them),
        their neighbours searched among every scored cell in member ``j``'s Z (the labels of
        the cells it trained on serve only as the reference, as in kNN classification), so
        every cell gets θ from a model that did not see it; cells no member trained on (``"held_out"``) are scored by the whole
        ensemble as usual. ``subset="auto"`` then means every cell, and ``combine`` applies to
        the held-out cells only; one ``k`` serves every fold. The members key then holds, for
        each fold cell, the θ of the member that scored it (NaN for the others). ``"auto"``
        (default): whenever the embeddings were written that way; ``True``: required (an error
        otherwise); ``False``: ignore the folds.

    Returns
    -------
    Nothing; writes ``mdata.obs[key_added]``, ``mdata.obs["indiseek_beta_rna"]``,
    ``mdata.obs["indiseek_beta_adt"]``, every member's own θ in
    ``mdata.obsm["indiseek_theta_members"]`` (cells × members) and
    ``mdata.uns["indiseek"]["theta"]`` (the settings). With another ``key_added``, β and the
    members go to ``<key_added>_beta_rna``, ``<key_added>_beta_adt`` and
    ``<key_added>_members`` and the settings to ``mdata.uns["indiseek"][key_added]``, so a second
    θ (e.g. from the prepared PCs) does not overwrite the model's.

    Examples
    --------
    >>> isk.tl.theta_score(mdata, label_key="celltype.l2", k=10, subset="test")  # doctest: +SKIP
    >>> mdata.obs["indiseek_theta"].describe()  # doctest: +SKIP
    """
    check_mudata(mdata)
    _check_theta_args(k, members, pseudocount, key_added, combine)
    if cross_fit not in ("auto", True, False):
        raise ValueError(f"cross_fit must be 'auto', True or False, got {cross_fit!r}.")
    if members == "auto":
        members = _ensemble_members(mdata, rna_key, adt_key)
    folds = _crossfit_folds(mdata, rna_key, adt_key, members, cross_fit)
    if folds is not None and isinstance(subset, str) and subset == "auto":
        subset = None  # every cell has a member that never saw it
    z_rna = get_obsm(mdata, rna_key)
    z_adt = get_obsm(mdata, adt_key)
    labels = find_labels(mdata, label_key)
    mask = _subset_mask(mdata, subset, split_key) & labels.notna().to_numpy()
    n = int(mask.sum())
    if n < 2:
        raise ValueError(f"θ needs at least 2 labelled cells; found {n} (label {label_key!r}).")
    lab_all = labels.to_numpy()
    groups = [(mask, None)] if folds is None else [(mask & (folds == -1), None)]
    if folds is not None:
        groups += [(mask & (folds == j), j) for j in range(members)]
    k = _common_k(groups, k, folds is not None, n)
    eps = 1.0 / (2 * k) if pseudocount is None else float(pseudocount)
    theta, beta_rna, beta_adt = (np.full(mdata.n_obs, np.nan) for _ in range(3))
    per_member = np.full((mdata.n_obs, members), np.nan)
    for cells, member in groups:
        if cells.sum() < 2:
            continue
        # a fold's cells are scored by the member that never trained on them, their
        # neighbours searched among every scored cell in that member's Z (the labels of cells
        # it trained on serve only as the reference, as in kNN classification)
        space = cells if member is None else mask
        zr, za = z_rna[space], z_adt[space]
        if member is not None:
            zr = np.split(zr, members, axis=1)[member]
            za = np.split(za, members, axis=1)[member]
        n_blocks = members if member is None else 1
        lab = lab_all[space]
        own = theta_members(zr, za, lab, n_blocks, k=k, pseudocount=eps, method=method, seed=seed)
        if member is not None or combine == "mean":  # the members' own θ already is the answer
            t, br, ba = (v.mean(axis=1) for v in own)
        else:  # one neighbour search in all members' Z side by side
            t, br, ba = theta_arrays(zr, za, lab, k, eps, method, seed)
        rows = cells[space]  # the group's cells among those searched
        theta[cells], beta_rna[cells], beta_adt[cells] = t[rows], br[rows], ba[rows]
        if member is None:
            per_member[cells] = own[0]
        else:
            per_member[np.flatnonzero(cells), member] = own[0][rows, 0]
    keys = K.theta_keys(key_added)
    columns = {key_added: theta, keys["beta_rna"]: beta_rna, keys["beta_adt"]: beta_adt}
    for key, values in columns.items():
        mdata.obs[key] = values
    mdata.obsm[keys["members"]] = per_member
    uns_key = "theta" if key_added == K.THETA else key_added
    mdata.uns.setdefault(K.UNS, {})[uns_key] = {
        "label_key": label_key,
        "k": int(k),
        "pseudocount": eps,
        "rna_key": rna_key,
        "adt_key": adt_key,
        "n_cells": n,
        "key_added": key_added,
        "members": int(members),
        "combine": combine,
        "cross_fit": folds is not None,
    }
