"""Keys under which indiseek writes its results (documented in the user guide)."""

UNS = "indiseek"
SPLIT = "indiseek_split"
RNA_INPUT = "X_indiseek_pca"
ADT_INPUT = "X_indiseek_adt"
ADT_CLR_LAYER = "indiseek_clr"
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
# Every ensemble member's Z, concatenated (written when n_members > 1; θ averages over them).
OBSM_MEMBERS = {
    "Z_rna": "X_indiseek_Z_rna_members",
    "Z_adt": "X_indiseek_Z_adt_members",
}
