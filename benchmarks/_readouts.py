"""Experimental read-outs of Z for θ (screening; the adopted one moves into the package)."""

from __future__ import annotations

import numpy as np
import torch


def decoder_metric(decoder, z: np.ndarray, c: np.ndarray, n: int = 2000, seed: int = 0) -> np.ndarray:
    """E[JᵀJ] of the decoder's Jacobian with respect to z, on a sample of cells."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(z), size=min(n, len(z)), replace=False)
    zt = torch.as_tensor(z[idx], dtype=torch.float32)
    ct = torch.as_tensor(c[idx], dtype=torch.float32)

    def g(zz, cc):
        return decoder(torch.cat([zz, cc])[None])[0]

    with torch.no_grad():
        jac = torch.func.vmap(torch.func.jacrev(g, argnums=0))(zt, ct)  # cells × n_x × d_z
    m = torch.einsum("nxi,nxj->ij", jac, jac) / len(idx)
    return m.numpy().astype(np.float64)


def sqrtm_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def readouts(model, mdata) -> dict[str, dict[str, list[np.ndarray]]]:
    """Per read-out, per modality, one Z array per member."""
    every = model.get_representations(mdata, members=True)
    k = model.n_members
    out: dict[str, dict[str, list[np.ndarray]]] = {"raw": {}, "std": {}, "pullback": {}, "diag": {}}
    for m in ("rna", "adt"):
        zs = np.split(every[f"Z_{m}"], k, axis=1)
        cs = np.split(every[f"C_{m}"], k, axis=1)
        out["raw"][m] = zs
        out["std"][m] = [(z - z.mean(0)) / (z.std(0) + 1e-8) for z in zs]
        pb, dg = [], []
        for j, (z, c) in enumerate(zip(zs, cs, strict=True)):
            key = m if j == 0 else f"{m}_{j}"
            dec = model.branches[key].decoder.cpu().eval()
            metric = decoder_metric(dec, z, c)
            pb.append(z @ sqrtm_psd(metric))
            dg.append(z * np.sqrt(np.diag(metric)))
        out["pullback"][m] = pb
        out["diag"][m] = dg
    return out
