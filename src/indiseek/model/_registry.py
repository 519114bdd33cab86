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
from .._validate import (
    check_mudata,
    check_same_cells,
    check_unique_names,
    get_modality,
    prepare_params,
)

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
    def from_arguments(
        cls,
        mdata: MuData,
        rna: str,
        adt: str,
        rna_rep: str,
        adt_rep: str,
        split_key: str | None,
        batch_key: str | None,
    ) -> Registry:
        """``setup_mudata``'s arguments, with the split and batch columns that ``pp.prepare``
        used as the defaults (and checked against them)."""
        prep = prepare_params(mdata)
        for name, value in (("split_key", split_key), ("batch_key", batch_key)):
            if value is not None and (not isinstance(value, str) or not value):
                raise TypeError(f"{name} must be a column name or None, got {value!r}.")
        prepared_split = str(prep.get("split_key") or "")
        if split_key is None:
            split_key = prepared_split or K.SPLIT
        elif prepared_split and split_key != prepared_split:
            raise ValueError(
                f"split_key={split_key!r}, but pp.prepare fitted on the split in "
                f"mdata.obs[{prepared_split!r}]; pass split_key={prepared_split!r} (or leave it "
                "None) so that the model trains on the cells the preprocessing was fitted on."
            )
        if split_key != K.SPLIT and split_key not in mdata.obs:
            raise KeyError(
                f"split_key={split_key!r} is not a column of mdata.obs; without a split every "
                "cell trains the model (leave split_key=None)."
            )
        prepared_with = str(prep.get("batch_key") or "")
        if batch_key is None:
            batch_key = prepared_with
        else:
            from ..pp._batches import read_batches

            read_batches(mdata, batch_key)  # a misspelt column fails here, with the choices
        if (
            batch_key
            and batch_key != prepared_with
            and (rna_rep, adt_rep) == (K.RNA_INPUT, K.ADT_INPUT)
        ):
            raise ValueError(
                f"batch_key={batch_key!r}, but pp.prepare was run with batch_key="
                f"{prepared_with or None!r}: the batch correction happens in preprocessing; run "
                f"isk.pp.prepare(mdata, batch_key={batch_key!r}, ...) first."
            )
        return cls(rna, adt, rna_rep, adt_rep, split_key, batch_key)

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

    def training_batches(
        self, mdata: MuData, train: np.ndarray, covariate: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None, int]:
        """The batches with training cells (names), every cell's code (those batches first)
        and the width of the batch covariate (0 without batches, with one, or when off).

        A batch without training cells (a held-out donor) gets no covariate column of its own:
        its cells get zeros, as cells of new batches do.
        """
        if not isinstance(covariate, bool | np.bool_):
            raise ValueError(f"batch_covariate must be True or False, got {covariate!r}.")
        names = self.batch_names(mdata, train)
        codes = self.batch_codes(mdata, names)
        width = len(names) if covariate and names is not None and len(names) > 1 else 0
        return names, codes, width

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


class SetupMixin:
    """``setup_mudata`` and the record it leaves, for the model class."""

    @staticmethod
    def setup_mudata(
        mdata: MuData,
        rna: str = "rna",
        adt: str = "adt",
        rna_rep: str = K.RNA_INPUT,
        adt_rep: str = K.ADT_INPUT,
        split_key: str | None = None,
        batch_key: str | None = None,
    ) -> None:
        """Check a MuData and record which inputs IndiSeek trains on.

        Parameters
        ----------
        mdata
            MuData with paired RNA and ADT modalities.
        rna, adt
            Modality names.
        rna_rep, adt_rep
            Keys of each modality's ``.obsm`` holding the model inputs (written by
            :func:`indiseek.pp.prepare`; any cells × features array works).
        split_key
            ``mdata.obs`` column with ``"train"``/``"test"``; when present, only training cells
            are used by :meth:`train`. ``None``: the ``split_key`` given to
            :func:`indiseek.pp.prepare`, else ``"indiseek_split"`` (the split it draws).
        batch_key
            ``mdata.obs`` column of batches (donors). ``None``: the ``batch_key`` given to
            :func:`indiseek.pp.prepare`, if any. The inputs are corrected there; the model adds
            each cell's batch to step 2 (``IndiSeek(batch_covariate=True)``) and deals
            cross-fitting folds evenly within batches (``train(cross_fit=True)``). A
            ``batch_key`` that ``pp.prepare`` did not use is an error: the inputs would still
            carry the batches.

        Returns
        -------
        Nothing; the record goes to ``mdata.uns["indiseek"]["setup"]``.

        Examples
        --------
        >>> isk.IndiSeek.setup_mudata(mdata, rna="rna", adt="adt")  # doctest: +SKIP
        """
        Registry.from_arguments(mdata, rna, adt, rna_rep, adt_rep, split_key, batch_key).register(
            mdata
        )

    @property
    def setup(self) -> dict[str, str]:
        """What :meth:`setup_mudata` recorded (modalities, input keys, split column)."""
        return self.registry.as_dict()
