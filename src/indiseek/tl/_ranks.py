"""Per-type ranking of θ against a reference (WNN RNA weights or a known truth)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .. import _keys as K
from .._validate import find_labels

if TYPE_CHECKING:
    from mudata import MuData


def rank_comparison(
    mdata: MuData,
    groupby: str,
    weight_key: str | None = "rna:mod_weight",
    *,
    theta_key: str = K.THETA,
    reference: pd.Series | dict | None = None,
    parent_key: str | None = None,
    min_cells: int = 10,
) -> pd.DataFrame:
    """Rank cell types by mean θ and by mean WNN RNA weight, and correlate the ranks.

    The paper's evidence: if θ tells which modality defines a type, types with high mean θ
    should be those WNN weights towards RNA. Only cells with a θ value (e.g. the test cells
    that :func:`theta_score` scored) and a label count.

    Exclusion rule: a type with fewer than ``min_cells`` scored cells is left out of the ranks
    and of ρ (its mean is too noisy to rank); it is listed in ``.attrs["excluded"]`` and
    kept in the table with ``included = False``.

    Parameters
    ----------
    mdata
        MuData with θ in ``mdata.obs[theta_key]``.
    groupby
        Cell-type labels (``mdata.obs`` or a modality's ``.obs``).
    weight_key
        Per-cell RNA weight column (``"rna:mod_weight"`` from :func:`wnn_weights`, or e.g.
        Seurat's ``"RNA.weight"`` brought into ``mdata.obs``).
    theta_key
        θ column.
    reference
        Instead of ``weight_key``: one reference value per type (e.g. the simulator's
        ``mdata.uns["synthetic_truth"]["rna_importance"]``).
    parent_key
        Level-1 labels; each type's most common parent is reported.
    min_cells
        See the exclusion rule.

    Returns
    -------
    DataFrame indexed by type: ``n_cells``, ``mean_theta``, ``mean_weight`` (or
    ``reference``), ``theta_rank``, ``weight_rank`` (1 = most RNA-defined), ``included``,
    ``parent``; after an ensemble's :func:`theta_score` also ``theta_min`` / ``theta_max``
    (the per-type mean θ of the least and most RNA-leaning member, each read alone: how much
    single models disagree; the ensemble's own θ can lie outside that range) and
    ``beta_rna`` / ``beta_adt`` (mean β per type: θ ≈ 0 with both high means both modalities
    separate the type, with both low that neither does); ``.attrs["spearman"]``,
    ``.attrs["pvalue"]``, ``.attrs["excluded"]``.

    Examples
    --------
    >>> df = isk.tl.rank_comparison(mdata, groupby="celltype.l2", weight_key="rna:mod_weight")  # doctest: +SKIP
    >>> df.attrs["spearman"]  # doctest: +SKIP
    """
    if reference is None and weight_key is None:
        raise ValueError("Pass weight_key (a per-cell weight column) or reference (per type).")
    return type_table(mdata, groupby, weight_key, theta_key, reference, parent_key, min_cells)


def type_table(
    mdata: MuData,
    groupby: str,
    weight_key: str | None = None,
    theta_key: str = K.THETA,
    reference: pd.Series | dict | None = None,
    parent_key: str | None = None,
    min_cells: int = 10,
) -> pd.DataFrame:
    """:func:`rank_comparison`'s table; without weights or reference, θ per type alone."""
    if isinstance(min_cells, bool) or not isinstance(min_cells, int | np.integer) or min_cells < 1:
        raise ValueError(f"min_cells must be a positive integer, got {min_cells!r}.")
    if not isinstance(theta_key, str) or theta_key not in mdata.obs:
        raise KeyError(f"No {theta_key!r} in mdata.obs; run isk.tl.theta_score(mdata, ...) first.")
    if not np.issubdtype(mdata.obs[theta_key].dtype, np.number):
        raise ValueError(f"mdata.obs[{theta_key!r}] must hold θ values (numbers).")
    labels = find_labels(mdata, groupby)
    weights = None
    if reference is None and weight_key is not None:
        weights = _weights(mdata, weight_key)
    parents = None if parent_key is None else find_labels(mdata, parent_key).to_numpy()
    table = rank_table(
        labels.to_numpy(),
        mdata.obs[theta_key].to_numpy(dtype=float),
        weights=weights,
        reference=reference,
        parents=parents,
        min_cells=min_cells,
        **_theta_details(mdata, theta_key),
        require_reference=False,
    )
    table.index.name = groupby
    return table


def _weights(mdata: MuData, weight_key: str) -> np.ndarray:
    column = find_labels(mdata, weight_key)
    try:
        return column.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"Weight column {weight_key!r} must be numeric (an RNA weight per cell), got "
            f"{column.dtype} values such as {column.dropna().iloc[:2].tolist()}."
        ) from err


def _theta_details(mdata: MuData, theta_key: str) -> dict[str, np.ndarray]:
    """β and per-member θ that :func:`theta_score` wrote beside ``theta_key``, if it did."""
    keys = K.theta_keys(theta_key)
    out = {}
    members = mdata.obsm[keys["members"]] if keys["members"] in mdata.obsm else None
    if members is not None and np.ndim(members) == 2 and members.shape[1] > 1:
        out["theta_members"] = np.asarray(members, dtype=float)
    if keys["beta_rna"] in mdata.obs and keys["beta_adt"] in mdata.obs:
        out["beta_rna"] = mdata.obs[keys["beta_rna"]].to_numpy(dtype=float)
        out["beta_adt"] = mdata.obs[keys["beta_adt"]].to_numpy(dtype=float)
    return out


def rank_table(
    types: np.ndarray,
    theta: np.ndarray,
    weights: np.ndarray | None = None,
    reference: pd.Series | dict | None = None,
    parents: np.ndarray | None = None,
    min_cells: int = 10,
    *,
    theta_members: np.ndarray | None = None,
    beta_rna: np.ndarray | None = None,
    beta_adt: np.ndarray | None = None,
    require_reference: bool = True,
) -> pd.DataFrame:
    """Array version of :func:`rank_comparison`: per-cell types, θ and weights (or per-type reference).

    With ``theta_members`` (cells × members) the table gains ``theta_min`` / ``theta_max``:
    the range of the per-type mean θ over the ensemble's members; with ``beta_rna`` /
    ``beta_adt``, their per-type means. ``require_reference=False`` allows neither weights
    nor reference: a θ-only table (no reference column, rank or ρ).
    """
    types = np.asarray(types, dtype=object)
    theta = np.asarray(theta, dtype=float)
    ok = np.isfinite(theta) & pd.notna(types)
    if weights is not None:
        ok &= np.isfinite(np.asarray(weights, dtype=float))
    frame = pd.DataFrame({"type": types[ok], "theta": theta[ok]})
    if reference is None and weights is None:
        if require_reference:
            raise ValueError("Pass per-cell weights or a per-type reference.")
        ref_name = None
        frame["weight"] = np.nan
    elif reference is None:
        ref_name = "mean_weight"
        frame["weight"] = np.asarray(weights, dtype=float)[ok]
    else:
        ref_name = "reference"
        ref = pd.Series(reference, dtype=float)
        missing = sorted(set(frame["type"]) - set(ref.index))
        if missing:
            raise KeyError(f"reference has no value for types {missing[:5]}.")
        frame["weight"] = frame["type"].map(ref)
    if parents is not None:
        frame["parent"] = np.asarray(parents, dtype=object)[ok]
    extra = {"beta_rna": beta_rna, "beta_adt": beta_adt}
    if theta_members is not None:
        extra.update({f"_m{j}": col for j, col in enumerate(np.asarray(theta_members).T)})
    for name, values in extra.items():
        if values is not None:
            frame[name] = np.asarray(values, dtype=float)[ok]
    if frame.empty:
        raise ValueError("No cells have both a θ value and a label.")
    grouped = frame.groupby("type")
    table = pd.DataFrame(
        {
            "n_cells": grouped.size(),
            "mean_theta": grouped["theta"].mean(),
            ref_name or "_none": grouped["weight"].mean(),
        }
    ).drop(columns="_none", errors="ignore")
    member_cols = [c for c in frame if c.startswith("_m")]
    if member_cols:
        per_member = grouped[member_cols].mean()
        table["theta_min"], table["theta_max"] = per_member.min(1), per_member.max(1)
    for name in ("beta_rna", "beta_adt"):
        if name in frame:
            table[name] = grouped[name].mean()
    table["included"] = table["n_cells"] >= min_cells
    inc = table["included"]
    table["theta_rank"] = table["mean_theta"].where(inc).rank(ascending=False)
    if ref_name is not None:
        table["weight_rank"] = table[ref_name].where(inc).rank(ascending=False)
    if parents is not None:
        table["parent"] = grouped["parent"].agg(lambda s: s.value_counts().index[0])
    table = table.sort_values("mean_theta", ascending=False)
    _attach_rho(table, ref_name, min_cells)
    return table


def _attach_rho(table: pd.DataFrame, ref_name: str | None, min_cells: int) -> None:
    """Spearman ρ of the included types' mean θ against the reference, into ``table.attrs``."""
    from scipy.stats import spearmanr

    inc = table["included"]
    if inc.sum() >= 3 and ref_name is not None:
        res = spearmanr(table.loc[inc, "mean_theta"], table.loc[inc, ref_name])
        rho, p = float(res.statistic), float(res.pvalue)
    else:
        rho, p = float("nan"), float("nan")
    table.attrs.update(
        {
            "spearman": rho,
            "pvalue": p,
            "excluded": list(table.index[~inc]),
            "min_cells": int(min_cells),
            "n_types": int(inc.sum()),
        }
    )
