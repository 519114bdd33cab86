"""Checks of a saved model's files: settings that rebuild the model, the cells it describes."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from ..nn import get_objective
from ._registry import ROLES, Registry


def versions() -> dict[str, str]:
    """Versions of Python and the libraries a saved model was made with."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("indiseek", "torch", "numpy", "anndata", "mudata", "scanpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_REQUIRED = ("params", "setup", "n_features")


def read_config(file: Path) -> dict[str, Any]:
    """``config.json``, checked for the entries a model needs."""
    try:
        config = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{file} is not valid JSON ({err}); the saved model is corrupt. Save it again from "
            "the trained model."
        ) from err
    missing = [k for k in _REQUIRED if not isinstance(config, dict) or k not in config]
    if missing:
        raise ValueError(
            f"{file} lacks {missing}; it is not an IndiSeek model configuration (or it is "
            "truncated). Save the model again."
        )
    try:
        _check_settings(config)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ValueError(
            f"{file} holds invalid settings ({type(err).__name__}: {err}); save the model again."
        ) from err
    _warn_if_newer(config, file)
    return config


def _check_settings(config: dict[str, Any]) -> None:
    """Every setting a model is rebuilt from, of the right type and shape (raises otherwise)."""
    from .._keys import OBSM

    p = config["params"]
    get_objective(p["objective"])
    Registry(**{k: str(v) for k, v in dict(config["setup"]).items()})
    for key in ("n_shared", "n_specific", "n_hidden", "n_layers"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise ValueError(f"params.{key} = {p[key]!r} is not a positive integer")
    n_members = p.get("n_members", 1)
    if not isinstance(n_members, int) or n_members < 1:
        raise ValueError(f"params.n_members = {n_members!r} is not a positive integer")
    for key in ("lam", "temperature"):
        float(p[key])
    features = config["n_features"]
    if set(features) != set(ROLES) or not all(
        isinstance(v, int) and v > 0 for v in features.values()
    ):
        raise ValueError(f"n_features = {features!r} needs positive integers for {ROLES}")
    x_sq = config.get("x_sq") or {}
    if get_objective(p["objective"]).has_specific and not all(
        isinstance(x_sq.get(r), int | float) and x_sq[r] > 0 for r in ROLES
    ):
        raise ValueError(f"x_sq = {x_sq!r} needs a positive number for each of {ROLES}")
    z_scale = config.get("z_scale")
    if z_scale is not None:
        for r in ROLES:
            try:
                shape = np.asarray(z_scale[r], dtype=float).shape
            except (TypeError, ValueError, KeyError) as err:
                raise ValueError(f"z_scale[{r!r}] is not a table of numbers") from err
            if shape != (n_members, p["n_specific"]):
                raise ValueError(
                    f"z_scale[{r!r}] has shape {shape}, not ({n_members}, {p['n_specific']})"
                )
    block = config.get("block_scale")
    if block is not None:
        try:
            values = np.asarray(block, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"block_scale = {block!r} is not a list of numbers") from err
        if values.shape != (len(OBSM) * n_members,) or not np.all(np.isfinite(values)):
            raise ValueError(f"block_scale must be {len(OBSM) * n_members} finite numbers")


def _warn_if_newer(config: dict[str, Any], file: Path) -> None:
    import warnings

    saved = str(config.get("versions", {}).get("indiseek", ""))
    here = versions()["indiseek"]
    try:
        newer = tuple(int(x) for x in saved.split(".")[:2]) > tuple(
            int(x) for x in here.split(".")[:2]
        )
    except ValueError:
        return
    if newer:
        warnings.warn(
            f"{file} was saved by indiseek {saved}, newer than this one ({here}); it loads, but "
            "upgrade indiseek if anything looks wrong.",
            UserWarning,
            stacklevel=4,
        )


def check_cells(cells: dict[str, np.ndarray], n_features: dict[str, int], file: Path) -> None:
    """``cells.npz`` as :func:`write_cells` writes it: names, a mask of the same length, inputs."""
    problem = None
    if "obs_names" not in cells or "train" not in cells:
        problem = "it lacks obs_names or train"
    else:
        n = len(cells["obs_names"])
        if cells["obs_names"].ndim != 1 or cells["train"].shape != (n,):
            problem = (
                f"obs_names and train disagree ({cells['obs_names'].shape}, {cells['train'].shape})"
            )
        for name in ("folds", "batches"):
            v = cells.get(name)
            if v is not None and (v.shape != (n,) or v.dtype.kind != "i"):
                problem = f"{name} has shape {v.shape} and dtype {v.dtype}, not ({n},) integers"
        for r in ROLES:
            x = cells.get(f"input_{r}")
            if problem is None and x is not None:
                if x.shape != (n, n_features[r]):
                    problem = f"input_{r} has shape {x.shape}, not ({n}, {n_features[r]})"
                elif not np.all(np.isfinite(x)):
                    problem = f"input_{r} holds NaN or infinite values"
    if problem:
        raise ValueError(f"{file} is not as indiseek wrote it: {problem}. Save the model again.")
