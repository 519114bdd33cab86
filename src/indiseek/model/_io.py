"""The saved-model format: a directory with tensors, settings and the training history.

- ``model.pt``: weights and the numeric part of the preprocessing fit, tensors only, read with
  ``torch.load(weights_only=True)`` so that loading never runs code;
- ``config.json``: settings, registry, library versions and the string part of the fit;
- ``history.csv``: per-epoch losses;
- ``cells.npz`` (since 0.3): names of the cells the model was built on, which of them trained
  it, and (by default) their inputs, read with ``numpy.load(allow_pickle=False)``.

Format 2 (indiseek ≥ 0.2) names weights ``<j>.clip…`` / ``<j>.branches.<role>…`` (member j);
format 1 (0.1.0) files are converted on load by :func:`convert_v1_state`.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..nn import get_objective
from ._device import resolve_device
from ._ensemble import build_members
from ._file_checks import check_cells, read_config, versions
from ._registry import ROLES, Registry

if TYPE_CHECKING:
    from mudata import MuData

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CELLS_FILE = "cells.npz"
FORMAT = 2


def write(
    path: str | Path,
    state: dict[str, torch.Tensor],
    config: dict[str, Any],
    prepare_state: dict | None,
    history: pd.DataFrame | None,
    overwrite: bool,
) -> None:
    """Write a model directory (see the module docstring)."""
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True.")
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu() for k, v in state.items()}
    strings: dict[str, list[str]] = {}
    for key, value in _flatten(prepare_state or {}):
        arr = np.asarray(value)
        if arr.dtype.kind in "USO":
            # a single string stays a string (a one-element list would come back as an array)
            strings[key] = [str(v) for v in arr.ravel()] if arr.ndim else str(arr)
        else:
            tensors[f"prepare.{key}"] = torch.as_tensor(arr.astype(arr.dtype.newbyteorder("=")))
    torch.save(tensors, path / MODEL_FILE)
    config = {
        "format": FORMAT,
        **config,
        "prepare_strings": strings,
        "has_prepare": prepare_state is not None,
        "versions": versions(),
    }
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
    if history is not None:
        history.to_csv(path / HISTORY_FILE, index=False)


def read(
    path: str | Path, device: torch.device
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict | None, pd.DataFrame | None]:
    """Read a model directory: (config, module state, preprocessing fit, history)."""
    path = Path(path)
    if not (path / MODEL_FILE).exists() or not (path / CONFIG_FILE).exists():
        raise FileNotFoundError(
            f"{path} is not a saved IndiSeek model (needs {MODEL_FILE} and {CONFIG_FILE})."
        )
    config = read_config(path / CONFIG_FILE)
    fmt = config.get("format", 1)
    if fmt not in (1, FORMAT):
        raise ValueError(
            f"{path / CONFIG_FILE} says format {fmt!r}; this indiseek "
            f"({versions()['indiseek']}) reads formats 1 and {FORMAT}. Upgrade indiseek to load "
            "it."
        )
    try:
        tensors = torch.load(path / MODEL_FILE, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"Refusing to load {path / MODEL_FILE}: it holds objects other than plain tensors "
            f"(it may have been tampered with), and loading it could run code. ({err})"
        ) from err
    except Exception as err:  # truncated or corrupt archives raise many different errors
        raise ValueError(
            f"Cannot read the weights in {path / MODEL_FILE} (truncated or corrupt file?): "
            f"{type(err).__name__}: {err}. Save the model again."
        ) from err
    if not isinstance(tensors, dict) or not all(
        isinstance(v, torch.Tensor) for v in tensors.values()
    ):
        raise ValueError(f"{path / MODEL_FILE} does not hold a dictionary of tensors.")
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    if fmt == 1:
        state = convert_v1_state(state)
    prepare_state = None
    if config.get("has_prepare"):
        flat = {
            k[len("prepare.") :]: v.cpu().numpy()
            for k, v in tensors.items()
            if k.startswith("prepare.")
        }
        flat.update({k: np.asarray(v) for k, v in config.get("prepare_strings", {}).items()})
        prepare_state = _unflatten(flat)
        _check_prepare(prepare_state, path)
        params = prepare_state.get("params", {})
        for k, v in params.items():  # 0.2 stored single strings as one-element lists
            if np.ndim(v) and np.size(v) == 1:
                params[k] = np.asarray(v).ravel()[0].item()
    hist = path / HISTORY_FILE
    history = None
    if hist.exists():
        try:
            history = pd.read_csv(hist)
        except Exception as err:
            raise ValueError(
                f"Cannot read {hist} ({type(err).__name__}: {err}); delete it to load the model "
                "without its training history, or save the model again."
            ) from err
    return config, state, prepare_state, history


_PREPARE_KEYS = {
    "rna": ("genes", "mean", "std", "pca_mean", "loadings", "n_pcs"),
    "adt": ("mean", "proteins", "clr_axis"),
}


def _check_prepare(state: dict, path: Path) -> None:
    missing = [
        f"{mod}.{key}"
        for mod, keys in _PREPARE_KEYS.items()
        for key in keys
        if key not in state.get(mod, {})
    ]
    if missing:
        raise ValueError(
            f"The preprocessing fit saved in {path} lacks {missing} ({MODEL_FILE} or "
            f"{CONFIG_FILE} edited or truncated?); save the model again."
        )


_V1_KEY = re.compile(r"^(?:clip(?:_(\d+))?|branch_([a-z]+?)(?:_(\d+))?)\.(.+)$")


def convert_v1_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename 0.1.0 weights (``clip_1.…``, ``branch_rna_1.…``) to ``<j>.…`` names (member j)."""
    out = {}
    for key, value in state.items():
        match = _V1_KEY.match(key)
        if match is None:
            raise ValueError(f"Unexpected weight {key!r} in a format-1 IndiSeek file.")
        clip_j, role, branch_j, rest = match.groups()
        if role is None:
            out[f"{int(clip_j or 0)}.clip.{rest}"] = value
        else:
            out[f"{int(branch_j or 0)}.branches.{role}.{rest}"] = value
    return out


def write_cells(
    path: Path,
    obs_names: np.ndarray,
    train: np.ndarray,
    inputs: dict[str, np.ndarray] | None,
    folds: np.ndarray | None = None,
    batches: np.ndarray | None = None,
) -> None:
    """``cells.npz``: the cells the model was built on, its training cells, their
    cross-fitting folds and (optionally) inputs."""
    arrays = {"obs_names": np.asarray(obs_names, dtype=str), "train": np.asarray(train, bool)}
    if folds is not None:
        arrays["folds"] = np.asarray(folds, dtype=np.int64)
    if batches is not None:
        arrays["batches"] = np.asarray(batches, dtype=np.int64)
    for role, x in (inputs or {}).items():
        arrays[f"input_{role}"] = np.asarray(x, dtype=np.float32)
    np.savez(path / CELLS_FILE, **arrays)


def read_cells(path: Path) -> dict[str, np.ndarray] | None:
    """What :func:`write_cells` wrote (``None`` for models saved before 0.3); never unpickles."""
    file = Path(path) / CELLS_FILE
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as err:
        raise ValueError(
            f"Cannot read {file} (truncated or corrupt?): {type(err).__name__}: {err}. Save the "
            "model again, or delete the file to load the weights without the training cells."
        ) from err


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten(v, key + "."))
        else:
            out.append((key, v))
    return out


def _unflatten(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        arr = np.asarray(value)
        node[parts[-1]] = arr.item() if arr.ndim == 0 else arr
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


class SaveLoadMixin:
    """``save`` and ``load`` of an IndiSeek model in the format above."""

    def save(self, path: str | Path, overwrite: bool = False, save_inputs: bool = True) -> None:
        """Save weights, settings, preprocessing fit, history and the training cells.

        Weights and arrays go to ``model.pt`` (tensors only, loadable with
        ``torch.load(weights_only=True)``); settings, library versions and feature names to
        ``config.json``; the training history to ``history.csv``; the names of the cells the
        model was built on and which of them trained it to ``cells.npz``.

        Parameters
        ----------
        path
            Directory to write (created if needed).
        overwrite
            Replace the files of an existing, non-empty directory.
        save_inputs
            Also store the model inputs of those cells (cells × (RNA PCs + proteins),
            float32), so that a loaded model gives every read-out without the MuData.

        Examples
        --------
        >>> model.save("my_model", overwrite=True)  # doctest: +SKIP
        """
        self._require_trained()
        config = {
            "params": self.params,
            "setup": self.setup,
            "n_features": self.n_features,
            "train_params": self.train_params,
            "x_sq": self.x_sq,
            "z_scale": self.z_scale,
            "block_scale": self.block_scale,
            "batch_names": None if self.batch_names is None else list(map(str, self.batch_names)),
        }
        write(path, self.module.state_dict(), config, self.prepare_state, self.history, overwrite)
        if self.obs_names is not None and self._train_cells is not None:
            inputs = self._train_inputs if save_inputs else None
            write_cells(
                Path(path), self.obs_names, self._train_cells, inputs, self.folds, self._batches
            )

    @classmethod
    def load(cls, path: str | Path, mdata: MuData | None = None, accelerator: str = "auto") -> Any:
        """Load a model saved with :meth:`save`.

        The weights file is read with ``torch.load(weights_only=True)``: a file that would run
        code when unpickled is refused with a ``ValueError`` and nothing in it is executed;
        truncated or corrupt files are refused with an error naming the file.

        Parameters
        ----------
        path
            Directory written by :meth:`save`.
        mdata
            Optional MuData to attach: read-outs without ``mdata`` then describe its cells. Its
            inputs must match the model's features; cells that trained the model are recognised
            by name (or, for older files, by the split column).
        accelerator
            Device to load onto (``"auto"``, as in :meth:`train`: cuda, then mps, then cpu).

        Returns
        -------
        The trained model.

        Examples
        --------
        >>> model = isk.IndiSeek.load("my_model")  # doctest: +SKIP
        >>> model = isk.IndiSeek.load("my_model", mdata)  # doctest: +SKIP
        """
        device = resolve_device(accelerator)
        path = Path(path)
        config, state, prepare_state, history = read(path, device)
        cells = read_cells(path)
        if cells is not None:
            check_cells(cells, config["n_features"], path / CELLS_FILE)
        model = cls.__new__(cls)
        model.objective = get_objective(config["params"]["objective"])
        model.params = {"n_members": 1, "normalize_z": True, "club_weight": 1.0, **config["params"]}
        model.registry = Registry(**config["setup"])
        model.n_features = {k: int(v) for k, v in config["n_features"].items()}
        model.train_params = config.get("train_params", {})
        model.x_sq = config.get("x_sq", {})
        model.z_scale = config.get("z_scale")  # None in 0.1.0 files: Z as the encoder gives it
        model.block_scale = config.get("block_scale")
        model.batch_names = config.get("batch_names")
        model.module = build_members(model.params, model.n_features, model.objective, seed=0)
        try:
            model.module.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"The weights in {path / MODEL_FILE} do not fit the settings in "
                f"{path / CONFIG_FILE} (files from different models, or edited?): {err}"
            ) from err
        model.module.to(device).eval()
        model.device = device
        model.prepare_state = prepare_state
        model.history = history
        model.is_trained = True
        model._loaded = True
        model._attach(cells, mdata)
        return model

    def _attach(self, cells: dict[str, np.ndarray] | None, mdata: MuData | None) -> None:
        """The cells a loaded model describes: the saved ones, or ``mdata``'s."""
        names = None if cells is None else cells["obs_names"].astype(str)
        trained_on = None if cells is None else names[cells["train"].astype(bool)]
        self.obs_names, self._train_inputs = names, None
        # known from the file even without its inputs, so that saving again keeps them
        self._train_cells = None if cells is None else cells["train"].astype(bool)
        self.folds = None if cells is None or "folds" not in cells else cells["folds"]
        self._batches = None if cells is None or "batches" not in cells else cells["batches"]
        if cells is not None and all(f"input_{r}" in cells for r in ROLES):
            self._train_inputs = {r: cells[f"input_{r}"] for r in ROLES}
            self._train_cells = cells["train"].astype(bool)
        if mdata is None:
            return
        self._train_inputs = self._inputs_of(mdata)
        if self.folds is not None:
            self.folds = self.folds_of(mdata)  # matched by name, before obs_names change
        self.obs_names = np.asarray(mdata.obs_names, dtype=str)
        if self.batch_names is not None and self.registry.batch_key:
            try:
                self._batches = self.registry.batch_codes(mdata, np.asarray(self.batch_names, str))
            except KeyError:  # needed for reconstruction only; said there when asked for
                self._batches = None
        if trained_on is not None:
            self._train_cells = np.isin(self.obs_names, trained_on)
        elif self.registry.split_key in mdata.obs:
            self._train_cells = self.registry.train_mask(mdata, mdata.n_obs)
        else:
            self._train_cells = None  # unknown (a model saved by indiseek < 0.3)

    @property
    def training_cells(self) -> np.ndarray | None:
        """Names of the cells that trained the model (``None`` when not known)."""
        if self._train_cells is None or self.obs_names is None:
            return None
        return self.obs_names[self._train_cells]
