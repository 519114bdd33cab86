"""θ's neighbour count k on the bone-marrow-like family: one default model, θ read with several k.

Usage: ``python benchmarks/bm_theta_k.py N_CELLS SEED`` (prints one JSON line; joint = one search
over all members' Z, mean = the members' θ averaged, pca = the prepared per-modality PCs).
"""

import json
import sys
import warnings

from _suite_data import load, prepare, scored_cells

import indiseek as isk

warnings.filterwarnings("ignore")

n, seed = int(sys.argv[1]), int(sys.argv[2])
raw, ref, lk = load("bonemarrow", n, 0)
m = prepare(raw, "bonemarrow")
isk.IndiSeek.setup_mudata(m)
model = isk.IndiSeek(m)
model.train(progress_bar=False, seed=seed)
reps = model.get_representations()
test = scored_cells(m)
lab = m.obs[lk].astype(str).to_numpy()[test]


def rho(zr, za, k, members=1):
    th = isk.tl.theta_arrays(zr[test], za[test], lab, k=k, members=members)[0]
    return round(float(isk.tl.rank_table(lab, th, reference=ref).attrs["spearman"]), 3)


out = {"n": n, "seed": seed}
for k in (10, 20, 30, 50, 100):
    out[f"joint_k{k}"] = rho(reps["Z_rna"], reps["Z_adt"], k)
    out[f"mean_k{k}"] = rho(reps["Z_rna"], reps["Z_adt"], k, members=3)
pr, pa = m.mod["rna"].obsm["X_indiseek_pca"], m.mod["adt"].obsm["X_indiseek_adt"]
for k in (10, 30, 100):
    out[f"pca_k{k}"] = rho(pr, pa, k)
print(json.dumps(out), flush=True)
