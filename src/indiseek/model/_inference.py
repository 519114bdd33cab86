"""Reading a trained ensemble: representations and reconstruction errors, numpy out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import _keys as K
from .._embeddings import concatenate_blocks
from ..nn import IndiSeekModule, to_tensor
from ._arrays import encode_chunks

if TYPE_CHECKING:
    from mudata import MuData


def encode(
    members: Sequence[IndiSeekModule], inputs: dict[str, np.ndarray], device: torch.device
) -> dict[str, np.ndarray]:
    """``C_<role>`` and ``Z_<role>`` of every cell, the members' columns side by side.

    A member without step-2 branches (``objective="clip"``) gives its C as Z.
    """
    x = {m: to_tensor(v, device) for m, v in inputs.items()}
    out: dict[str, list[np.ndarray]] = {f"{kind}_{m}": [] for kind in "CZ" for m in inputs}
    with torch.no_grad():
        for member in members:
            member.eval()
            for m, c_m in member.shared(x).items():
                c_np = c_m.cpu().numpy()
                out[f"C_{m}"].append(c_np)
                if len(member.branches):
                    out[f"Z_{m}"].append(
                        encode_chunks(member.branches[m].encoder, inputs[m], device)
                    )
                else:
                    out[f"Z_{m}"].append(c_np.copy())
    return {k: np.concatenate(v, axis=1) for k, v in out.items()}


def relative_errors(
    members: Sequence[IndiSeekModule],
    inputs: dict[str, np.ndarray],
    every: dict[str, np.ndarray],
    x_sq: dict[str, float],
    mask: np.ndarray | None,
    device: torch.device,
) -> dict[str, float]:
    """Mean over members of ``E‖g(Z, C) − X‖² / E‖X‖²`` per modality (NaN without decoders)."""
    n = len(members)
    mask = np.ones(len(next(iter(inputs.values()))), dtype=bool) if mask is None else mask
    errors: dict[str, list[float]] = {m: [] for m in inputs}
    for j, member in enumerate(members):
        for m in inputs if len(member.branches) else ():
            z = np.split(every[f"Z_{m}"], n, axis=1)[j][mask]
            c = np.split(every[f"C_{m}"], n, axis=1)[j][mask]
            dec_in = np.concatenate([z, c], axis=1)
            x_hat = encode_chunks(member.branches[m].decoder, dec_in, device)
            errors[m].append(float(((x_hat - inputs[m][mask]) ** 2).sum(1).mean() / x_sq[m]))
    return {m: float(np.mean(v)) if v else float("nan") for m, v in errors.items()}


class RepresentationMixin:
    """What a trained IndiSeek model gives: C and Z of any cells, reconstruction, ``.obsm``."""

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError("The model is not trained yet; call model.train() first.")

    def _inputs_of(self, mdata: MuData | None) -> dict[str, np.ndarray]:
        if mdata is None:
            if self._train_inputs is None:
                raise ValueError("This model was loaded without a MuData; pass mdata.")
            return self._train_inputs
        return self.registry.new_inputs(mdata, self.prepare_state, self.n_features)

    def get_representations(
        self, mdata: MuData | None = None, *, members: bool = False
    ) -> dict[str, np.ndarray]:
        """Shared and specific features of every cell.

        Parameters
        ----------
        mdata
            The training MuData or new cells with the same features (``None``: the cells the
            model was built on). New cells without prepared inputs are prepared with the
            training preprocessing first.
        members
            False: the first ensemble member's features (``n_shared`` and ``n_specific``
            columns). True: every member's, concatenated in member order (``n_members`` times
            as many columns), as :func:`indiseek.tl.theta_arrays` expects with ``members``.

        Returns
        -------
        ``{"C_rna", "C_adt", "Z_rna", "Z_adt"}`` → numpy arrays (cells × dims). For
        ``objective="clip"`` the Z entries are the modality's own C.

        Examples
        --------
        >>> reps = model.get_representations(mdata)  # doctest: +SKIP
        >>> reps["Z_rna"].shape  # doctest: +SKIP
        (600, 10)
        """
        self._require_trained()
        inputs = self._inputs_of(mdata)
        n_used = self.n_members if members else 1
        return encode(list(self.module)[:n_used], inputs, self.device)

    def first_member(self, every: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The first member's columns of ``get_representations(members=True)``."""
        return {k: np.split(v, self.n_members, axis=1)[0] for k, v in every.items()}

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
        every = self.get_representations(mdata, members=True)
        return relative_errors(self.module, inputs, every, self.x_sq, mask, self.device)

    def write_obsm(self, mdata: MuData) -> None:
        """Write the representations into ``mdata.obsm``.

        Keys: ``X_indiseek_C_rna``, ``X_indiseek_C_adt``, ``X_indiseek_Z_rna``,
        ``X_indiseek_Z_adt`` and ``X_indiseek`` (the four concatenated, in that order, each
        block scaled to unit total variance so that no block dominates distances: C is
        L2-normalised while Z has unit variance per dimension). These hold the first ensemble
        member; with ``n_members > 1`` every member's Z also goes, concatenated, to
        ``X_indiseek_Z_rna_members`` and ``X_indiseek_Z_adt_members``, where
        :func:`indiseek.tl.theta_score` finds them.
        The model's settings go to ``mdata.uns["indiseek"]["model"]``.

        Examples
        --------
        >>> model.write_obsm(mdata)  # doctest: +SKIP
        """
        every = self.get_representations(mdata, members=True)
        reps = self.first_member(every)
        for k, key in K.OBSM.items():
            mdata.obsm[key] = reps[k]
        mdata.obsm[K.OBSM_ALL] = concatenate_blocks([reps[k] for k in K.OBSM])
        has_z = bool(len(self.module[0].branches))
        if self.n_members > 1 and has_z:
            for k, key in K.OBSM_MEMBERS.items():
                mdata.obsm[key] = every[k]
        else:  # members of an earlier model would no longer match the Z keys
            for key in K.OBSM_MEMBERS.values():
                mdata.obsm.pop(key, None)
        mdata.uns.setdefault(K.UNS, {})["model"] = {
            **self.params,
            **{k: v for k, v in self.train_params.items() if not isinstance(v, bool | type(None))},
            "z_is_c": not has_z,
        }
