"""What ``setup_mudata`` records, and how a model's inputs are read from a MuData again.

The role of scvi-tools' AnnDataManager: :class:`Registry` is the record (modality names,
``.obsm`` keys of the inputs, the split column) and reads the same inputs from the training
MuData or from new cells, re-applying the training preprocessing where needed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _keys as K
from .._validate import check_mudata, check_same_cells, check_unique_names, get_modality

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger(__name__)

#: The two roles a model's inputs play; their names key every dict of inputs and outputs.
ROLES = ("rna", "adt")


@dataclass(frozen=True)
class Registry:
    """Modality names, input keys, split and batch columns recorded by ``setup_mudata``
    (``batch_key`` is ``""`` without batches)."""

    rna: str = "rna"
    adt: str = "adt"
    rna_rep: str = K.RNA_INPUT
    adt_rep: str = K.ADT_INPUT
    split_key: str = K.SPLIT
    batch_key: str = ""

    def modality(self, role: str) -> str:
        return getattr(self, role)

    def rep(self, role: str) -> str:
        return getattr(self, f"{role}_rep")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_mudata(cls, mdata: MuData) -> Registry:
        """The record ``setup_mudata`` left in ``mdata.uns``."""
        check_mudata(mdata)
        uns = mdata.uns.get(K.UNS, {})
        if "setup" not in uns:
            raise ValueError(
                "This MuData has not been set up for IndiSeek; call "
                "isk.IndiSeek.setup_mudata(mdata, rna=..., adt=...) first."
            )
        return cls(**{k: str(v) for k, v in dict(uns["setup"]).items()})

    def register(self, mdata: MuData) -> None:
        """Check ``mdata`` against this record and store the record in ``mdata.uns``."""
        for name in ("rna", "adt", "rna_rep", "adt_rep", "split_key"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"{name} must be a non-empty string, got {getattr(self, name)!r}.")
        if self.batch_key:
            self.batch_codes(mdata)  # checks the column
        if self.rna == self.adt:
            raise ValueError(
                f"rna and adt name the same modality ({self.rna!r}); pass the MuData's two "
                "modalities."
            )
        for role in ROLES:
            mod, rep = self.modality(role), self.rep(role)
            adata = get_modality(mdata, mod, role)
            if rep not in adata.obsm:
                raise KeyError(
                    f"Modality {mod!r} has no .obsm[{rep!r}] (it has {sorted(adata.obsm)}); run "
                    f"isk.pp.prepare(mdata, rna={self.rna!r}, adt={self.adt!r}) first or pass "
                    f"{role}_rep=<key>."
                )
            x = np.asarray(adata.obsm[rep])
            if x.dtype.kind not in "fiu":
                raise ValueError(
                    f"{mod!r}.obsm[{rep!r}] must hold numbers (cells × features), got dtype "
                    f"{x.dtype}."
                )
            if x.ndim != 2 or x.shape[1] < 1:
                raise ValueError(
                    f"{mod!r}.obsm[{rep!r}] must be 2-D (cells × features), got {x.shape}."
                )
            if not np.all(np.isfinite(x)):
                raise ValueError(f"{mod!r}.obsm[{rep!r}] holds NaN or infinite values.")
        check_same_cells(mdata, self.rna, self.adt)
        check_unique_names(mdata, (self.rna, self.adt))
        if self.split_key in mdata.obs:
            values = set(mdata.obs[self.split_key].astype(str).unique())
            if not values <= {"train", "test"} or "train" not in values:
                raise ValueError(
                    f"mdata.obs[{self.split_key!r}] must hold 'train'/'test' with some training "
                    f"cells, found {sorted(values)}."
                )
        mdata.uns.setdefault(K.UNS, {})["setup"] = self.as_dict()

    def inputs(self, mdata: MuData) -> dict[str, np.ndarray]:
        """The model inputs of every cell, by role (float32 arrays)."""
        out = {}
        names = None
        for role in ROLES:
            adata = get_modality(mdata, self.modality(role), role)
            if self.rep(role) not in adata.obsm:
                raise KeyError(
                    f"Modality {self.modality(role)!r} has no .obsm[{self.rep(role)!r}]; prepare "
                    "these cells with isk.pp.prepare(new_mdata, reference=<training mdata>) first."
                )
            if names is None:
                names = adata.obs_names
            elif not adata.obs_names.equals(names):
                check_same_cells(mdata, self.rna, self.adt)
                raise ValueError(
                    f"Modalities {self.rna!r} and {self.adt!r} list their cells in different orders."
                )
            out[role] = np.asarray(adata.obsm[self.rep(role)], dtype=np.float32)
        return out

    def batch_codes(self, mdata: MuData, known: np.ndarray | None = None) -> np.ndarray | None:
        """Each cell's batch as a code (``None`` without ``batch_key``); with ``known`` batch
        names, their positions (others get codes from ``len(known)`` on)."""
        if not self.batch_key:
            return None
        from ..pp._batches import read_batches

        return read_batches(mdata, self.batch_key, known).codes

    def batch_names(self, mdata: MuData, cells: np.ndarray | None = None) -> np.ndarray | None:
        """The batches of ``mdata`` (of the boolean mask ``cells`` only), in code order
        (``None`` without ``batch_key``)."""
        if not self.batch_key:
            return None
        from ..pp._batches import read_batches

        batches = read_batches(mdata, self.batch_key)
        if cells is None:
            return batches.names
        return batches.names[np.isin(np.arange(batches.n), batches.codes[cells])]

    def train_mask(self, mdata: MuData, n_cells: int) -> np.ndarray:
        """Training cells: ``obs[split_key] == "train"``, or every cell without a split."""
        if self.split_key in mdata.obs:
            return (mdata.obs[self.split_key].astype(str) == "train").to_numpy()
        return np.ones(n_cells, dtype=bool)

    def new_inputs(
        self, mdata: MuData, prepare_state: dict | None, n_features: dict[str, int]
    ) -> dict[str, np.ndarray]:
        """Inputs of cells the model was not built on, checked against the training fit."""
        for role in ROLES:
            get_modality(mdata, self.modality(role), role)
        missing = any(
            self.rep(r) not in get_modality(mdata, self.modality(r), r).obsm for r in ROLES
        )
        default_reps = (self.rna_rep, self.adt_rep) == (K.RNA_INPUT, K.ADT_INPUT)
        if missing and prepare_state is not None and default_reps:
            from ..pp._prepare import prepared_inputs

            # computed on the fly: the user's object is left as it is
            logger.info("preparing new cells with the training preprocessing (not stored)")
            inputs = prepared_inputs(mdata, prepare_state, self.rna, self.adt)
        else:
            theirs = mdata.uns.get(K.UNS, {}).get("prepare")
            if (
                prepare_state is not None
                and theirs is not None
                and not same_fit(theirs, prepare_state)
            ):
                raise ValueError(
                    "These cells were prepared with a different preprocessing fit than the one "
                    "the model was trained on (other genes, moments or PCA loadings); run "
                    "isk.pp.prepare(new_mdata, reference=training_mdata) instead."
                )
            inputs = self.inputs(mdata)
        for role in ROLES:
            where = f"Modality {self.modality(role)!r}: .obsm[{self.rep(role)!r}]"
            if inputs[role].shape[1] != n_features[role]:
                raise ValueError(
                    f"{where} has {inputs[role].shape[1]} features but the model was trained on "
                    f"{n_features[role]}."
                )
            if not np.all(np.isfinite(inputs[role])):
                raise ValueError(f"{where} holds NaN or inf.")
        return inputs


def same_fit(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two ``pp.prepare`` fits agree (genes, RNA loadings, ADT means)."""
    try:
        la, lb = np.asarray(a["rna"]["loadings"]), np.asarray(b["rna"]["loadings"])
        ga = np.asarray(a["rna"]["genes"]).astype(str)
        gb = np.asarray(b["rna"]["genes"]).astype(str)
        ma, mb = np.asarray(a["adt"]["mean"]), np.asarray(b["adt"]["mean"])
    except KeyError:
        return True
    return (
        la.shape == lb.shape
        and np.allclose(la, lb, atol=1e-6)
        and np.array_equal(ga, gb)
        and ma.shape == mb.shape
        and np.allclose(ma, mb, atol=1e-6)
    )
