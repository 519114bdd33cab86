"""A fingerprint of everything a MuData holds, to check that a call left it unchanged."""

from __future__ import annotations

import hashlib
import pickle

import numpy as np
import pandas as pd
from scipy import sparse


def _digest(value) -> str:
    h = hashlib.sha1()
    if sparse.issparse(value):
        value = value.tocsr()
        for part in (value.data, value.indices, value.indptr, np.asarray(value.shape)):
            h.update(np.ascontiguousarray(part).tobytes())
        return "sparse:" + h.hexdigest()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            h.update(pickle.dumps(value.tolist()))
        else:
            h.update(np.ascontiguousarray(value).tobytes())
        return f"array{value.shape}{value.dtype}:" + h.hexdigest()
    if isinstance(value, pd.DataFrame):
        h.update(
            pickle.dumps((list(value.columns), list(value.index), list(map(str, value.dtypes))))
        )
        h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        return "frame:" + h.hexdigest()
    if isinstance(value, dict) or hasattr(value, "keys"):
        return "{" + ",".join(f"{k}={_digest(value[k])}" for k in sorted(value.keys())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_digest(v) for v in value) + "]"
    return repr(value)


def _mapping(m) -> dict:
    return {} if m is None else {k: m[k] for k in m.keys()}


def _adata(adata) -> dict[str, str]:
    out = {
        "X": _digest(adata.X) if getattr(adata, "X", None) is not None else "None",
        "obs": _digest(adata.obs),
        "var": _digest(adata.var),
        "obsm": _digest({k: np.asarray(v) for k, v in _mapping(adata.obsm).items()}),
        "varm": _digest({k: np.asarray(v) for k, v in _mapping(adata.varm).items()}),
        "obsp": _digest(_mapping(adata.obsp)),
        "uns": _digest(dict(adata.uns)),
    }
    if hasattr(adata, "layers"):
        out["layers"] = _digest(_mapping(adata.layers))
    return out


def snapshot(obj) -> dict:
    """Digests of a MuData (or AnnData) and each of its modalities."""
    if hasattr(obj, "mod"):
        out = {"mudata": _adata(obj), "mod_names": sorted(obj.mod)}
        for name, adata in obj.mod.items():
            out[name] = _adata(adata)
        return out
    return {"anndata": _adata(obj)}
