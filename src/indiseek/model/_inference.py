"""Reading a trained ensemble: representations and reconstruction errors, numpy out."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .. import _keys as K
from .._embeddings import block_scales, concatenate_blocks
from ..nn import IndiSeekModule
from ._arrays import encode_chunks

if TYPE_CHECKING:
    from mudata import MuData


_CHUNK = 65536


def _float64_copy(module: torch.nn.Module, device: torch.device):
    """A float64 copy of ``module`` for inference (on the CPU when the device lacks float64)."""
    where = torch.device("cpu") if device.type == "mps" else device
    return copy.deepcopy(module).to(where, torch.float64).eval(), where


def _rows(fn, x: np.ndarray, device: torch.device) -> np.ndarray:
    """``fn`` on the rows of ``x`` in float64 chunks; float32 numpy out.

    In float64, a row's result does not depend on which other rows share its batch (BLAS
    picks its kernels by batch shape, which moves float32 results in the last bits), so a
    cell gets the same representation whether it is embedded alone or with others.
    """
    outs = []
    for i in range(0, len(x), _CHUNK):
        t = torch.as_tensor(np.asarray(x[i : i + _CHUNK], dtype=np.float64), device=device)
        outs.append(fn(t).cpu().numpy().astype(np.float32))
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


def encode(
    members: Sequence[IndiSeekModule],
    inputs: dict[str, np.ndarray],
    device: torch.device,
    z_scale: dict[str, list[list[float]]] | None = None,
) -> dict[str, np.ndarray]:
    """``C_<role>`` and ``Z_<role>`` of every cell, the members' columns side by side.

    Member ``j``'s Z of modality ``m`` is multiplied column-wise by ``z_scale[m][j]`` when
    given. A member without step-2 branches (``objective="clip"``) gives its C as Z.
    """
    names = list(inputs)
    n = len(inputs[names[0]])
    width = {m: inputs[m].shape[1] for m in names}
    joined = np.concatenate([inputs[m] for m in names], axis=1)  # one pass per member
    out: dict[str, list[np.ndarray]] = {f"{kind}_{m}": [] for kind in "CZ" for m in names}
    with torch.no_grad():
        for member in members:
            m64, where = _float64_copy(member, device)

            def shared(t, m64=m64):
                parts = dict(zip(names, torch.split(t, [width[m] for m in names], 1), strict=True))
                return torch.cat([m64.shared(parts)[m] for m in names], dim=1)

            c_all = _rows(shared, joined, where) if n else np.zeros((0, 0), np.float32)
            c_split = np.split(c_all, len(names), axis=1) if n else [c_all] * len(names)
            for m, c_np in zip(names, c_split, strict=True):
                out[f"C_{m}"].append(c_np)
                if len(member.branches):
                    out[f"Z_{m}"].append(_rows(m64.branches[m].encoder, inputs[m], where))
                else:
                    out[f"Z_{m}"].append(c_np.copy())
    reps = {k: np.concatenate(v, axis=1) for k, v in out.items()}
    return apply_z_scale(reps, z_scale, len(members))


def apply_z_scale(
    reps: dict[str, np.ndarray], z_scale: dict[str, list[list[float]]] | None, n_members: int
) -> dict[str, np.ndarray]:
    """Z of the first ``n_members`` members multiplied column-wise by their ``z_scale``."""
    if z_scale is None:
        return reps
    out = dict(reps)
    for key in [k for k in reps if k.startswith("Z_")]:
        scale = np.concatenate([np.asarray(s, np.float64) for s in z_scale[key[2:]][:n_members]])
        out[key] = (reps[key].astype(np.float64) * scale).astype(np.float32)
    return out


def z_scales(every: dict[str, np.ndarray], n_members: int) -> dict[str, list[list[float]]]:
    """Per member, modality and dimension, the factor that gives Z unit variance.

    ``every``: unscaled :func:`encode` output of the training cells. The scale of each
    dimension of Z is the encoder's arbitrary choice (the decoder absorbs it), yet it would
    decide how much that dimension, and that member, counts in θ's neighbour search.
    """
    out: dict[str, list[list[float]]] = {}
    for key in [k for k in every if k.startswith("Z_")]:
        sd = np.split(every[key].std(axis=0), n_members)
        out[key[2:]] = [(1 / np.maximum(s, 1e-6)).astype(float).tolist() for s in sd]
    return out


def relative_errors(
    members: Sequence[IndiSeekModule],
    inputs: dict[str, np.ndarray],
    every: dict[str, np.ndarray],
    x_sq: dict[str, float],
    mask: np.ndarray | None,
    device: torch.device,
    covariates: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean over members of ``E‖g(Z, C) − X‖² / E‖X‖²`` per modality (NaN without decoders).

    ``every`` holds unscaled Z (:func:`encode` without ``z_scale``), as the decoders saw it;
    ``covariates`` the cells' one-hot batches for a model trained with them.
    """
    n = len(members)
    mask = np.ones(len(next(iter(inputs.values()))), dtype=bool) if mask is None else mask
    errors: dict[str, list[float]] = {m: [] for m in inputs}
    for j, member in enumerate(members):
        for m in inputs if len(member.branches) else ():
            z = np.split(every[f"Z_{m}"], n, axis=1)[j][mask]
            c = np.split(every[f"C_{m}"], n, axis=1)[j][mask]
            extra = [] if covariates is None else [covariates[mask]]
            dec_in = np.concatenate([z, c, *extra], axis=1)
            x_hat = encode_chunks(member.branches[m].decoder, dec_in, device)  # float32 is enough
            errors[m].append(float(((x_hat - inputs[m][mask]) ** 2).sum(1).mean() / x_sq[m]))
    return {m: float(np.mean(v)) if v else float("nan") for m, v in errors.items()}


REPRESENTATIONS = ("all", "C_rna", "C_adt", "Z_rna", "Z_adt")


class RepresentationMixin:
    """What a trained IndiSeek model gives: C and Z of any cells, reconstruction, ``.obsm``."""

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError("The model is not trained yet; call model.train() first.")

    def _inputs_of(self, mdata: MuData | None) -> dict[str, np.ndarray]:
        if mdata is None:
            if self._train_inputs is None:
                raise ValueError(
                    "This model was loaded without its cells (saved with save_inputs=False, or "
                    "by indiseek < 0.3); pass mdata."
                )
            return self._train_inputs
        return self.registry.new_inputs(mdata, self.prepare_state, self.n_features)

    def _covariates_of(self, mdata: MuData | None) -> np.ndarray | None:
        """One-hot batches of the cells (``None`` for a model without batch covariates);
        cells of a batch the model was not trained with get zeros."""
        n_cov = int(self.params.get("n_covariates", 0))
        if not n_cov:
            return None
        if mdata is None:
            codes = self._batches
            if codes is None:
                raise ValueError(
                    "This model was loaded without its cells' batches; pass mdata (with "
                    f"obs[{self.registry.batch_key!r}])."
                )
        else:
            codes = self.registry.batch_codes(mdata, np.asarray(self.batch_names, dtype=str))
        return (codes[:, None] == np.arange(n_cov)).astype(np.float32)  # new batches: zeros

    def get_representations(
        self, mdata: MuData | None = None, *, members: bool = True
    ) -> dict[str, np.ndarray]:
        """Shared and specific features of every cell, for the whole ensemble.

        Parameters
        ----------
        mdata
            The training MuData or new cells with the same features (``None``: the cells the
            model was built on). New cells without prepared inputs are prepared on the fly with
            the training preprocessing; nothing is written to ``mdata``.
        members
            True (default): every member's features side by side, in member order
            (``n_members × n_shared`` and ``n_members × n_specific`` columns), as
            :meth:`write_obsm` writes them. False: the first member's alone.

        Returns
        -------
        ``{"C_rna", "C_adt", "Z_rna", "Z_adt"}`` → numpy arrays (cells × dims). Every dimension
        of Z is scaled to unit variance on the training cells (``model.z_scale``), so that
        neither a dimension nor a member dominates distances by the encoder's arbitrary scale.
        For ``objective="clip"`` the Z entries are the modality's own C.

        Examples
        --------
        >>> reps = model.get_representations(mdata)  # doctest: +SKIP
        >>> reps["Z_rna"].shape  # three members of 10 dimensions  # doctest: +SKIP
        (600, 30)
        """
        self._require_trained()
        if not isinstance(members, bool):
            raise TypeError(f"members must be True or False, got {members!r}.")
        inputs = self._inputs_of(mdata)
        n_used = self.n_members if members else 1
        return encode(list(self.module)[:n_used], inputs, self.device, self.z_scale)

    def get_latent_representation(
        self,
        mdata: MuData | None = None,
        representation: str = "all",
        indices: np.ndarray | None = None,
    ) -> np.ndarray:
        """One representation as an array, in the manner of scvi-tools' accessor.

        Parameters
        ----------
        mdata
            Cells to embed (``None``: the cells the model was built on); not modified.
        representation
            ``"all"`` (default): the four concatenated, each member's block scaled as in
            ``obsm["X_indiseek"]`` (:meth:`write_obsm`); or one of ``"C_rna"``, ``"C_adt"``,
            ``"Z_rna"``, ``"Z_adt"``.
        indices
            Integer positions of the cells to return (default: all).

        Returns
        -------
        numpy array, cells × dims.

        Examples
        --------
        >>> mdata.obsm["X_indiseek_Z_rna"] = model.get_latent_representation(  # doctest: +SKIP
        ...     mdata, "Z_rna"
        ... )
        """
        if representation not in REPRESENTATIONS:
            raise ValueError(
                f"representation must be one of {list(REPRESENTATIONS)}, got {representation!r}."
            )
        reps = self.get_representations(mdata)
        out = self._concatenated(reps) if representation == "all" else reps[representation]
        if indices is None:
            return out
        idx = np.asarray(indices)
        if (
            idx.dtype.kind not in "iu"
            or idx.ndim != 1
            or (len(idx) and not (0 <= idx.min() and idx.max() < len(out)))
        ):
            raise ValueError(
                f"indices must be 1-D integer positions in [0, {len(out)}), got {idx.dtype} "
                f"array of shape {idx.shape}."
            )
        return out[idx]

    def _concatenated(self, reps: dict[str, np.ndarray]) -> np.ndarray:
        """``X_indiseek``: every member's C and Z blocks, scaled with the training cells' scales."""
        blocks = [b for k in K.OBSM for b in np.split(reps[k], self.n_members, axis=1)]
        if self.block_scale is None:  # models saved before 0.3
            if self._train_inputs is None:
                raise ValueError(
                    "This model (saved by indiseek < 0.3) has no stored block scales and was "
                    "loaded without its cells; load it with the training MuData."
                )
            self.block_scale = self._measure_block_scale()
        return concatenate_blocks(blocks, self.block_scale)

    def _measure_block_scale(self, own: dict[str, np.ndarray] | None = None) -> list[float]:
        """Scales of the C and Z blocks of ``X_indiseek``, measured on the training cells
        (``own``: their representations, when already at hand)."""
        if own is None:
            cells = self._train_cells
            if cells is None or not cells.any():
                cells = np.ones(len(self._train_inputs["rna"]), dtype=bool)
            inputs = {m: v[cells] for m, v in self._train_inputs.items()}
            own = encode(self.module, inputs, self.device, self.z_scale)
        return block_scales([b for k in K.OBSM for b in np.split(own[k], self.n_members, axis=1)])

    def reconstruction_error(
        self, mdata: MuData | None = None, mask: np.ndarray | None = None
    ) -> dict[str, float]:
        """Relative error ``E‖g(Z_i, C_i) − X_i‖² / E‖X_i‖²`` per modality, mean over members.

        Parameters
        ----------
        mdata
            Cells to evaluate (``None``: the cells the model was built on).
        mask
            Boolean mask of the cells to use (default: all).

        Returns
        -------
        ``{"rna": error, "adt": error}``; NaN for ``objective="clip"`` (no decoder).
        """
        self._require_trained()
        inputs = self._inputs_of(mdata)
        if mask is not None:
            mask = np.asarray(mask)
            n = len(inputs["rna"])
            if mask.dtype != bool or mask.shape != (n,):
                raise ValueError(
                    f"mask must be a boolean array of length {n}, got {mask.dtype} {mask.shape}."
                )
            if not mask.any():
                raise ValueError("mask selects no cells.")
        every = encode(self.module, inputs, self.device)
        cov = self._covariates_of(mdata)
        return relative_errors(self.module, inputs, every, self.x_sq, mask, self.device, cov)

    def folds_of(self, mdata: MuData) -> np.ndarray | None:
        """Cross-fitting fold of each cell of ``mdata`` when it holds the cells the model was
        built on (in any order); ``None`` for other cells (new cells share barcodes with the
        training cells often enough that names alone do not say they are the same) or a model
        trained without ``cross_fit``."""
        folds = getattr(self, "folds", None)
        if folds is None or self.obs_names is None or len(self.obs_names) != mdata.n_obs:
            return None
        names = pd.Index(self.obs_names)
        if names.equals(mdata.obs_names):
            return folds
        if not names.is_unique or set(names) != set(mdata.obs_names):
            return None
        return pd.Series(folds, index=names).reindex(mdata.obs_names).to_numpy(dtype=np.int64)

    def write_obsm(self, mdata: MuData, key_added: str = K.OBSM_ALL) -> None:
        """Write the ensemble's representations into ``mdata.obsm``.

        Parameters
        ----------
        mdata
            The cells to embed (the training MuData or new cells with the same features).
        key_added
            Prefix of the keys (default ``"X_indiseek"``); pass another one to keep a second
            model's representations beside the first's.

        Returns
        -------
        Nothing; writes ``<key_added>_C_rna``, ``<key_added>_C_adt``, ``<key_added>_Z_rna``,
        ``<key_added>_Z_adt`` — every member's features side by side, as
        :meth:`get_representations` returns them (Z with unit variance per dimension on the
        training cells) — and ``<key_added>``, the four concatenated with each member's block
        scaled to unit total variance *on the training cells* (the scales are stored in the
        model, so a cell gets the same coordinates whichever cells it is embedded with). θ
        (:func:`indiseek.tl.theta_score`), the UMAPs (:func:`indiseek.pl.embeddings`) and the
        clustering read-outs (:func:`indiseek.tl.cluster_metrics`) read these keys, so they
        describe the same ensemble. The model's settings go to
        ``mdata.uns["indiseek"]["embeddings"][key_added]`` (and, for the default key,
        ``mdata.uns["indiseek"]["model"]``; ``n_members`` tells how many blocks each key
        holds). Removed as stale: UMAPs cached from exactly these keys (``X_umap_<key>`` and
        their ``uns["indiseek"]["umap"]`` entries) and, for the
        default key, indiseek 0.1's ``X_indiseek_Z_*_members``. A model trained with
        ``cross_fit=True`` also writes each cell's fold to ``mdata.obs["indiseek_fold"]``
        (``<key_added>_fold``; ``"held_out"`` for cells no member trained on), which
        :func:`indiseek.tl.theta_score` uses to score every cell with the member that never saw it;
        writing a model trained without cross-fitting removes a fold column left at that key
        by an earlier one.

        Examples
        --------
        >>> model.write_obsm(mdata)  # doctest: +SKIP
        >>> other.write_obsm(mdata, key_added="X_indiseek_lam1")  # doctest: +SKIP
        """
        if not isinstance(key_added, str) or not key_added:
            raise ValueError(f"key_added must be a non-empty string, got {key_added!r}.")
        reps = self.get_representations(mdata)
        keys = K.embedding_keys(key_added)
        for k, key in keys.items():
            mdata.obsm[key] = reps[k]
        mdata.obsm[key_added] = self._concatenated(reps)
        # UMAPs that pl.embeddings cached from these keys describe the old embeddings
        stale = [f"X_umap_{k.removeprefix('X_')}" for k in [*keys.values(), key_added]]
        if key_added == K.OBSM_ALL:
            stale += list(K.OBSM_MEMBERS_OLD)
        for key in stale:
            mdata.obsm.pop(key, None)
            mdata.uns.get(K.UNS, {}).get("umap", {}).pop(key, None)
        info = {
            **self.params,
            **{k: v for k, v in self.train_params.items() if not isinstance(v, bool | type(None))},
            "z_is_c": not self.objective.has_specific,
        }
        fold_key = K.fold_key(key_added)
        folds = self.folds_of(mdata)
        if folds is None:
            if fold_key in mdata.obs:
                del mdata.obs[fold_key]  # another model's folds
        else:
            names = [f"fold{j}" for j in range(self.n_members)]
            mdata.obs[fold_key] = pd.Categorical.from_codes(
                np.where(folds >= 0, folds, len(names)), categories=[*names, "held_out"]
            )
            info["fold_key"] = fold_key
        uns = mdata.uns.setdefault(K.UNS, {})
        uns.setdefault("embeddings", {})[key_added] = info
        if key_added == K.OBSM_ALL:
            uns["model"] = info
