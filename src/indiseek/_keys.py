"""Keys under which indiseek writes its results (documented in the user guide)."""

UNS = "indiseek"
SPLIT = "indiseek_split"
RNA_INPUT = "X_indiseek_pca"
ADT_INPUT = "X_indiseek_adt"
ADT_CLR_LAYER = "indiseek_clr"
ISOTYPE = "indiseek_isotype"
HVG = "indiseek_hvg"
THETA = "indiseek_theta"
BETA_RNA = "indiseek_beta_rna"
BETA_ADT = "indiseek_beta_adt"
OBSM = {
    "C_rna": "X_indiseek_C_rna",
    "C_adt": "X_indiseek_C_adt",
    "Z_rna": "X_indiseek_Z_rna",
    "Z_adt": "X_indiseek_Z_adt",
}
OBSM_ALL = "X_indiseek"
# Every member's Z as written by indiseek 0.1 (the Z keys now hold the whole ensemble).
OBSM_MEMBERS_OLD = ("X_indiseek_Z_rna_members", "X_indiseek_Z_adt_members")
THETA_MEMBERS = "indiseek_theta_members"


def theta_keys(key_added: str) -> dict[str, str]:
    """Where :func:`indiseek.tl.theta_score` writes β and per-member θ beside θ itself."""
    if key_added == THETA:
        return {"beta_rna": BETA_RNA, "beta_adt": BETA_ADT, "members": THETA_MEMBERS}
    return {k: f"{key_added}_{k}" for k in ("beta_rna", "beta_adt", "members")}


def embedding_keys(key_added: str = OBSM_ALL) -> dict[str, str]:
    """``.obsm`` keys of C and Z that :meth:`IndiSeek.write_obsm` writes for a ``key_added``."""
    return {k: f"{key_added}_{k}" for k in OBSM}


def fold_key(key_added: str = OBSM_ALL) -> str:
    """``mdata.obs`` column of the cross-fitting folds written beside ``key_added``'s embeddings."""
    return "indiseek_fold" if key_added == OBSM_ALL else f"{key_added}_fold"
