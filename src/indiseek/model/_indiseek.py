"""The IndiSeek model on a MuData, in the shape of scvi-tools models."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import pickle
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from .. import _keys as K
from .._validate import check_same_cells, get_modality
from ..nn import (
    ClipModule,
    SpecificBranch,
    TrainConfig,
    get_objective,
    resolve_device,
)
from ..nn._members import MODALITIES, MemberJob, available_cores, run_members, spawn_is_safe
from ..nn._training import default_epochs, to_tensor
from ._arrays import encode_chunks, split_validation

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("indiseek", "torch", "numpy", "anndata", "mudata", "scanpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _setup(mdata: MuData) -> dict[str, Any]:
    uns = mdata.uns.get(K.UNS, {})
    if "setup" not in uns:
        raise ValueError(
            "This MuData has not been set up for IndiSeek; call "
            "isk.IndiSeek.setup_mudata(mdata, rna=..., adt=...) first."
        )
    return dict(uns["setup"])


@contextlib.contextmanager
def _progress_members(n_members: int, workers: int, enabled: bool):
    """Callback for finished members: a bar over members when they train in workers."""
    if n_members == 1:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(
        total=n_members,
        desc=f"ensemble ({workers} worker{'s' if workers > 1 else ''})",
        unit="member",
        disable=not enabled or workers == 1,
    )

    def done(j: int) -> None:
        logger.info("member %d of %d trained", j + 1, n_members)
        bar.update()

    try:
        yield done
    finally:
        bar.close()


def member_seed(seed: int, member: int) -> int:
    """Seed of ensemble member ``member``: ``seed`` itself for the first, then derived ones."""
    if member == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), member]).generate_state(1)[0] % (2**31))


def member_key(modality: str, member: int) -> str:
    """Name of a step-2 branch: the modality for member 0 (older saves), else ``rna_1`` etc."""
    return modality if member == 0 else f"{modality}_{member}"


class IndiSeek:
    """Shared (C) and modality-specific (Z) representations of paired RNA + ADT data.

    Step 1 trains encoders f_rna, f_adt with CLIP's symmetric InfoNCE (shared features C).
    Step 2, with C fixed, trains for each modality i an encoder h_i (Z_i = h_i(X_i)) and a
    decoder g_i to minimise ``CLUB(Z_i; C_other) + λ/(2 E‖X_i‖²)·E‖g_i(Z_i, C_i) − X_i‖²``:
    Z_i is made independent of what the *other* modality shares, while (Z_i, C_i) must still
    reconstruct X_i.

    Parameters
    ----------
    mdata
        A MuData registered with :meth:`setup_mudata` (after :func:`indiseek.pp.prepare`).
    objective
        ``"indiseek"`` (default), or a baseline: ``"indiseek0"`` (CLUB on the modality's own
        C), ``"factorized_cl"`` (FactorizedCL), ``"infodisen"`` (InfoDisen), ``"clip"`` (shared
        features only; its Z keys hold each modality's own C so downstream code runs
        unchanged).
    lam
        λ, the weight of the completeness term: small λ favours independence of Z from C,
        large λ completeness. The paper uses 10 on CITE-seq; 0.1–10 is the sensible range.
    n_shared, n_specific
        Dimensions of C and Z. The paper uses 50 for both; Z defaults to 10 here. Z is
        standardised per dimension, so dimensions that only encode noise weigh as much as the
        rest in θ's neighbour search. On simulated CITE-seq with known truth (θ ranks vs truth,
        Spearman ρ, seed 0/1) n_specific=10 gave 0.90/0.83 at 30,000 cells and 0.76 at 10,000,
        against 0.51/0.65 and 0.41 with 50; at 4,000 cells 50 did better (0.82/0.62 vs
        0.37/0.58). Compare on your data with :func:`indiseek.tl.compare_methods`
        (``model_kwargs={"n_specific": ...}``).
    n_hidden, n_layers
        Width and number of linear layers of every MLP (paper: 50 and 5).
    temperature
        Initial InfoNCE temperature.
    learn_temperature
        Learn the temperature in step 1 (else fixed).
    normalize_z
        End each h with a non-affine batch standardisation, fixing the scale of Z.
    club_weight
        Weight of the independence (CLUB) term; 0 is the reconstruction-only ablation.
    n_members
        Models trained independently (each its own seed, step 1 and step 2) whose θ-scores
        are averaged. Single runs scatter by ±0.1 in θ's Spearman ρ between seeds; the
        average is steadier and better: on 30,000 simulated cells (27 types, θ ranks vs
        truth, five simulator draws) three members gave 0.893 / 0.755 / 0.776 / 0.777 / 0.415
        where the members alone averaged 0.845 / 0.645 / 0.719 / 0.708 / 0.351 (see the
        method page). Compute grows in proportion; on a CPU the members train in parallel
        worker processes (see ``train(n_jobs=...)``). ``get_representations``, the contract
        keys of ``write_obsm`` and the clustering read-outs use the first member (exactly the
        single model with the same ``seed``); ``n_members=1`` is the paper's single model.

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.synthetic_citeseq(n_cells=600, seed=0)
    >>> isk.pp.prepare(mdata, train_size=0.8)
    >>> isk.IndiSeek.setup_mudata(mdata)
    >>> model = isk.IndiSeek(mdata, lam=10.0)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> model.write_obsm(mdata)
    >>> mdata.obsm["X_indiseek"].shape
    (600, 120)
    """

    def __init__(
        self,
        mdata: MuData,
        objective: Literal[
            "indiseek", "indiseek0", "factorized_cl", "infodisen", "clip"
        ] = "indiseek",
        lam: float = 10.0,
        n_shared: int = 50,
        n_specific: int = 10,
        n_hidden: int = 50,
        n_layers: int = 5,
        *,
        temperature: float = 0.1,
        learn_temperature: bool = True,
        normalize_z: bool = True,
        club_weight: float = 1.0,
        n_members: int = 3,
    ) -> None:
        self.objective = get_objective(objective)
        for name, value in (
            ("n_shared", n_shared),
            ("n_specific", n_specific),
            ("n_hidden", n_hidden),
            ("n_layers", n_layers),
            ("n_members", n_members),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not lam >= 0:
            raise ValueError(f"lam must be >= 0, got {lam!r}.")
        if not 0 < temperature <= 1:
            raise ValueError(f"temperature must be in (0, 1], got {temperature!r}.")
        self.setup = _setup(mdata)
        self._capture(mdata)
        inputs = self._train_inputs
        self.n_features = {m: int(inputs[m].shape[1]) for m in MODALITIES}
        self.params = {
            "objective": self.objective.name,
            "lam": float(lam),
            "n_shared": int(n_shared),
            "n_specific": int(n_specific),
            "n_hidden": int(n_hidden),
            "n_layers": int(n_layers),
            "temperature": float(temperature),
            "learn_temperature": bool(learn_temperature),
            "normalize_z": bool(normalize_z),
            "club_weight": float(club_weight),
            "n_members": int(n_members),
        }
        prep = mdata.uns.get(K.UNS, {}).get("prepare")
        self.prepare_state = prep if prep is not None else None
        self._build(seed=0)
        self.device = torch.device("cpu")
        self.is_trained = False
        self.history: pd.DataFrame | None = None
        self.train_params: dict[str, Any] = {}
        self.x_sq: dict[str, float] = {}

    # ------------------------------------------------------------------ setup
    @staticmethod
    def setup_mudata(
        mdata: MuData,
        rna: str = "rna",
        adt: str = "adt",
        rna_rep: str = K.RNA_INPUT,
        adt_rep: str = K.ADT_INPUT,
        split_key: str = K.SPLIT,
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
            are used by :meth:`train`.

        Returns
        -------
        Nothing; the record goes to ``mdata.uns["indiseek"]["setup"]``.

        Examples
        --------
        >>> isk.IndiSeek.setup_mudata(mdata, rna="rna", adt="adt")  # doctest: +SKIP
        """
        for mod, rep in ((rna, rna_rep), (adt, adt_rep)):
            adata = get_modality(mdata, mod, "rna" if mod == rna else "adt")
            if rep not in adata.obsm:
                raise KeyError(
                    f"Modality {mod!r} has no .obsm[{rep!r}] (it has {sorted(adata.obsm)}); run "
                    f"isk.pp.prepare(mdata, rna={rna!r}, adt={adt!r}) first or pass "
                    f"{'rna' if mod == rna else 'adt'}_rep=<key>."
                )
            x = np.asarray(adata.obsm[rep])
            if x.ndim != 2 or x.shape[1] < 1:
                raise ValueError(
                    f"{mod!r}.obsm[{rep!r}] must be 2-D (cells × features), got {x.shape}."
                )
            if not np.all(np.isfinite(x)):
                raise ValueError(f"{mod!r}.obsm[{rep!r}] holds NaN or infinite values.")
        check_same_cells(mdata, rna, adt)
        if split_key in mdata.obs:
            values = set(mdata.obs[split_key].astype(str).unique())
            if not values <= {"train", "test"} or "train" not in values:
                raise ValueError(
                    f"mdata.obs[{split_key!r}] must hold 'train'/'test' with some training cells, "
                    f"found {sorted(values)}."
                )
        mdata.uns.setdefault(K.UNS, {})["setup"] = {
            "rna": rna,
            "adt": adt,
            "rna_rep": rna_rep,
            "adt_rep": adt_rep,
            "split_key": split_key,
        }

    def _inputs(self, mdata: MuData) -> dict[str, np.ndarray]:
        s = self.setup
        out = {}
        names = None
        for m in MODALITIES:
            adata = get_modality(mdata, s[m], m)
            if s[f"{m}_rep"] not in adata.obsm:
                raise KeyError(
                    f"Modality {s[m]!r} has no .obsm[{s[f'{m}_rep']!r}]; prepare these cells with "
                    "isk.pp.prepare(new_mdata, reference=<training mdata>) first."
                )
            if names is None:
                names = adata.obs_names
            elif not adata.obs_names.equals(names):
                check_same_cells(mdata, s["rna"], s["adt"])
                raise ValueError(
                    f"Modalities {s['rna']!r} and {s['adt']!r} list their cells in different orders."
                )
            out[m] = np.asarray(adata.obsm[s[f"{m}_rep"]], dtype=np.float32)
        return out

    @property
    def n_members(self) -> int:
        """Independently trained models in the ensemble (θ averages over them)."""
        return int(self.params.get("n_members", 1))

    @property
    def clip(self) -> ClipModule:
        """Step-1 encoders of the first member."""
        return self.clips[0]

    # ------------------------------------------------------------------ networks
    def _build(self, seed: int) -> None:
        p = self.params
        self.clips: list[ClipModule] = []
        self.branches: dict[str, SpecificBranch] = {}
        for j in range(self.n_members):
            torch.manual_seed(member_seed(seed, j))
            self.clips.append(
                ClipModule(
                    self.n_features["rna"],
                    self.n_features["adt"],
                    p["n_shared"],
                    p["n_hidden"],
                    p["n_layers"],
                    p["temperature"],
                    p["learn_temperature"],
                )
            )
            if not self.objective.has_specific:
                continue
            critic = p["n_shared"] if self.objective.uses_critics else None
            for m in MODALITIES:
                self.branches[member_key(m, j)] = SpecificBranch(
                    self.n_features[m],
                    p["n_shared"],
                    p["n_shared"],
                    p["n_specific"],
                    p["n_hidden"],
                    p["n_layers"],
                    n_c_critic=critic,
                    normalize_z=p["normalize_z"],
                )

    def _modules(self) -> torch.nn.ModuleDict:
        clips = {("clip" if j == 0 else f"clip_{j}"): c for j, c in enumerate(self.clips)}
        return torch.nn.ModuleDict(
            {**clips, **{f"branch_{m}": b for m, b in self.branches.items()}}
        )

    # ------------------------------------------------------------------ training
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        accelerator: str = "auto",
        seed: int = 0,
        *,
        clip_epochs: int | None = None,
        q_schedule: Literal["interleaved", "epoch"] = "interleaved",
        q_steps: int = 1,
        q_epochs: int = 5,
        validation_size: float = 0.1,
        early_stopping: bool = False,
        patience: int = 20,
        clip_early_stopping: bool = True,
        clip_patience: int = 10,
        weight_decay: float = 0.0,
        n_threads: int | None = 1,
        n_jobs: int | None = None,
        progress_bar: bool = True,
        clip_from: IndiSeek | None = None,
    ) -> None:
        """Train step 1 (CLIP) and then step 2 (both modality-specific branches).

        Each call starts from a fresh initialisation drawn from ``seed``: the same seed on the
        same device gives the same representations.

        Parameters
        ----------
        max_epochs
            Epochs of step 2 (``None``: enough for about 4,000 updates, 20 to 500 epochs).
            The paper's schedule is ``max_epochs=2000, lr=1e-4``.
        batch_size
            Cells per batch.
        lr
            Adam learning rate for every network.
        accelerator
            ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
        seed
            Seed of initialisation, validation split and batch order.
        clip_epochs
            Epochs of step 1 (default: as step 2).
        q_schedule, q_steps, q_epochs
            CLUB critic schedule: ``q_steps`` q updates before each main step
            (``"interleaved"``, default, stable) or ``q_epochs`` passes per epoch
            (``"epoch"``, the paper's).
        validation_size
            Fraction of training cells held out for validation losses (and early stopping).
        early_stopping, patience
            Stop step 2 when its validation loss has not improved for ``patience`` epochs and
            keep its best weights.
        clip_early_stopping, clip_patience
            The same for step 1, on the validation InfoNCE (on by default: CLIP encoders
            memorise small training sets).
        weight_decay
            Adam weight decay.
        n_threads
            torch CPU threads during training on the CPU (1 is fastest for small networks;
            ``None`` leaves torch's setting).
        n_jobs
            Ensemble members trained at once, each in its own worker process (CPU only; GPU
            training is sequential). ``None``: as many as there are members and cores when
            each member runs at least 1,000 updates (below that, starting workers costs more
            than it saves) and when called from Jupyter/IPython or ``python -m``; from a plain
            script, workers (started with ``spawn``) would re-run the script, so members then
            train one after another unless you pass ``n_jobs`` and keep the script's work under
            ``if __name__ == "__main__":``. 1: always in this process. Results are identical
            either way.
        progress_bar
            Show progress bars (silence with ``False``).
        clip_from
            A trained model on the same inputs whose step 1 (CLIP encoders) is reused instead of
            training step 1 again; with the same ``seed`` this gives exactly what retraining
            would (used by :func:`indiseek.tl.compare_methods`).

        Examples
        --------
        >>> model = isk.IndiSeek(mdata, lam=10.0)  # doctest: +SKIP
        >>> model.train()  # doctest: +SKIP
        >>> model.train(max_epochs=2000, lr=1e-4)  # the paper's schedule  # doctest: +SKIP
        >>> model.history.tail()  # doctest: +SKIP
        """
        cfg = TrainConfig(
            max_epochs=max_epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            q_schedule=q_schedule,
            q_steps=q_steps,
            q_epochs=q_epochs,
            early_stopping=early_stopping,
            patience=patience,
            progress_bar=progress_bar,
            seed=seed,
            cpu_threads=n_threads,
            clip_early_stopping=clip_early_stopping,
            clip_patience=clip_patience,
        )
        cfg.validate()
        if clip_epochs is not None and (int(clip_epochs) != clip_epochs or clip_epochs < 1):
            raise ValueError(f"clip_epochs must be a positive integer, got {clip_epochs!r}.")
        device = resolve_device(accelerator)
        if clip_from is not None:
            self._check_clip_source(clip_from)
        if n_jobs is not None and (int(n_jobs) != n_jobs or n_jobs < 1):
            raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}.")
        cells = np.flatnonzero(self._train_cells)
        self._build(seed)
        self._modules().to(device)
        self.device = device
        x = {m: to_tensor(v, device) for m, v in self._train_inputs.items()}
        jobs = []
        for j in range(self.n_members):
            # Each member has its own seed (initialisation, validation split, batch order);
            # member 0 is the single model trained with ``seed``.
            seed_j = member_seed(seed, j)
            tr_local, va_local = split_validation(len(cells), validation_size, seed_j)
            tr, va = cells[tr_local], cells[va_local]
            if j == 0:  # the scale of the reconstruction term, shared by all members
                idx = torch.as_tensor(tr, device=device)
                self.x_sq = {m: float((x[m][idx] ** 2).sum(1).mean()) for m in MODALITIES}
            epochs = int(max_epochs or default_epochs(len(tr), batch_size))
            epochs1 = int(clip_epochs or epochs)
            clip_state, clip_hist = None, pd.DataFrame()
            if clip_from is not None:
                clip_state = clip_from.clips[j].state_dict()
                clip_hist = clip_from._clip_history(j)
            jobs.append(
                MemberJob(
                    clip=self.clips[j],
                    branches={m: self.branches[member_key(m, j)] for m in MODALITIES}
                    if self.branches
                    else {},
                    x=x,
                    train_idx=tr,
                    val_idx=va,
                    cfg=dataclasses.replace(cfg, seed=seed_j),
                    epochs=epochs,
                    clip_epochs=epochs1,
                    objective=self.objective.name,
                    lam=self.params["lam"],
                    club_weight=self.params.get("club_weight", 1.0),
                    x_sq=self.x_sq,
                    clip_state=clip_state,
                    clip_history=clip_hist,
                )
            )
        workers = self._n_workers(n_jobs, device, len(jobs[0].train_idx), epochs, batch_size)
        if workers > 1:
            for job in jobs:
                job.cfg = dataclasses.replace(job.cfg, progress_bar=False)
        t0 = time.perf_counter()
        with _progress_members(self.n_members, workers, progress_bar) as on_done:
            results = run_members(jobs, workers, on_done)
        t2 = time.perf_counter()
        histories = []
        for j, res in enumerate(results):
            self.clips[j].load_state_dict(res.clip_state)
            self.clips[j].eval()
            for m, state in res.branch_states.items():
                self.branches[member_key(m, j)].load_state_dict(state)
                self.branches[member_key(m, j)].eval()
            hist1, hist2 = res.clip_history, res.specific_history
            hist1.insert(0, "step", "clip")
            if len(hist2):
                hist2.insert(0, "step", "specific")
            for h in (hist1, hist2):
                if len(h):
                    h.insert(1, "member", j)
            histories += [hist1, hist2]
        self.history = pd.concat(histories, ignore_index=True)
        n_clip = int((self.history["step"] == "clip").sum())
        time_clip = sum(r.time_clip_s for r in results)
        self.train_params = {
            "max_epochs": epochs,
            "clip_epochs": epochs1,
            "epochs_run_clip": n_clip // self.n_members,
            "epochs_run_specific": (len(self.history) - n_clip) // self.n_members,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "q_schedule": q_schedule,
            "q_steps": q_steps,
            "q_epochs": q_epochs,
            "validation_size": validation_size,
            "early_stopping": early_stopping,
            "n_train": len(tr),
            "n_validation": len(va),
            "device": str(device),
            "n_jobs": workers,
            "time_clip_s": round(time_clip, 3),
            "time_specific_s": round(sum(r.time_specific_s for r in results), 3),
            "time_wall_s": round(t2 - t0, 3),
        }
        self.is_trained = True
        logger.info("trained in %.1f s on %s (%d worker(s))", t2 - t0, device, workers)

    def _n_workers(
        self, n_jobs: int | None, device: torch.device, n_train: int, epochs: int, batch_size: int
    ) -> int:
        if device.type != "cpu" or self.n_members == 1:
            return 1
        if n_jobs is not None:
            return min(int(n_jobs), self.n_members)
        updates = epochs * max(n_train // batch_size, 1)
        if updates < 1000:
            return 1
        if not spawn_is_safe():
            logger.info(
                "members train one after another: worker processes would re-run this script; "
                "pass n_jobs (with the script's work under `if __name__ == '__main__':`)"
            )
            return 1
        return max(1, min(self.n_members, available_cores()))

    def _clip_history(self, member: int) -> pd.DataFrame:
        """Member ``member``'s step-1 history, without the step and member columns."""
        hist = self.history
        if hist is None:
            return pd.DataFrame()
        keep = hist["step"] == "clip"
        if "member" in hist:
            keep &= hist["member"] == member
        hist = hist[keep].drop(columns=[c for c in ("step", "member") if c in hist])
        return hist.dropna(axis=1, how="all").reset_index(drop=True)

    def _check_clip_source(self, other: IndiSeek) -> None:
        if not other.is_trained:
            raise ValueError("clip_from must be a trained IndiSeek model.")
        keys = ("n_shared", "n_hidden", "n_layers", "n_members")
        mine = [self.params.get(k, 1) for k in keys]
        theirs = [other.params.get(k, 1) for k in keys]
        if other.n_features != self.n_features or mine != theirs:
            raise ValueError(
                "clip_from was built with other inputs or sizes: features "
                f"{other.n_features} vs {self.n_features}, {list(keys)} {theirs} vs {mine}."
            )

    # The MuData is not kept on the model (it may be large and is the user's); what training
    # needs is captured at construction.
    def _capture(self, mdata: MuData) -> None:
        inputs = self._inputs(mdata)
        split = self.setup.get("split_key", K.SPLIT)
        if split in mdata.obs:
            train = (mdata.obs[split].astype(str) == "train").to_numpy()
        else:
            train = np.ones(len(inputs["rna"]), dtype=bool)
        self._train_cells = train
        self._train_inputs = inputs

    # ------------------------------------------------------------------ outputs
    def _require_trained(self) -> None:
        if not self.is_trained:
            raise RuntimeError("The model is not trained yet; call model.train() first.")

    def _new_inputs(self, mdata: MuData) -> dict[str, np.ndarray]:
        s = self.setup
        reps_missing = any(
            s[f"{m}_rep"] not in get_modality(mdata, s[m], m).obsm for m in MODALITIES
        )
        if reps_missing and self.prepare_state is not None:
            from ..pp import prepare

            logger.info("preparing new cells with the training preprocessing")
            prepare(mdata, rna=s["rna"], adt=s["adt"], reference=self.prepare_state)
        elif self.prepare_state is not None:
            theirs = mdata.uns.get(K.UNS, {}).get("prepare")
            if theirs is not None and not _same_fit(theirs, self.prepare_state):
                raise ValueError(
                    "These cells were prepared with a different preprocessing fit than the one the "
                    "model was trained on (other genes, moments or PCA loadings); run "
                    "isk.pp.prepare(new_mdata, reference=training_mdata) instead."
                )
        inputs = self._inputs(mdata)
        for m in MODALITIES:
            if inputs[m].shape[1] != self.n_features[m]:
                raise ValueError(
                    f"Modality {s[m]!r}: .obsm[{s[f'{m}_rep']!r}] has {inputs[m].shape[1]} features "
                    f"but the model was trained on {self.n_features[m]}."
                )
            if not np.all(np.isfinite(inputs[m])):
                raise ValueError(f"Modality {s[m]!r}: .obsm[{s[f'{m}_rep']!r}] holds NaN or inf.")
        return inputs

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
        inputs = self._train_inputs if mdata is None else self._new_inputs(mdata)
        x1 = to_tensor(inputs["rna"], self.device)
        x2 = to_tensor(inputs["adt"], self.device)
        used = range(self.n_members if members else 1)
        c = {m: [] for m in MODALITIES}
        with torch.no_grad():
            for clip in (self.clips[j] for j in used):
                clip.eval()
                for m, c_m in zip(MODALITIES, clip(x1, x2), strict=True):
                    c[m].append(c_m.cpu().numpy())
        out = {f"C_{m}": np.concatenate(c[m], axis=1) for m in MODALITIES}
        for m in MODALITIES:
            if self.branches:
                out[f"Z_{m}"] = np.concatenate(
                    [
                        encode_chunks(
                            self.branches[member_key(m, j)].encoder, inputs[m], self.device
                        )
                        for j in used
                    ],
                    axis=1,
                )
            else:
                out[f"Z_{m}"] = out[f"C_{m}"].copy()
        return out

    def first_member(self, every: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The first member's columns of ``get_representations(members=True)``."""
        return {k: np.split(v, self.n_members, axis=1)[0] for k, v in every.items()}

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
        if self.n_members > 1 and self.branches:
            for k, key in K.OBSM_MEMBERS.items():
                mdata.obsm[key] = every[k]
        else:  # members of an earlier model would no longer match the Z keys
            for key in K.OBSM_MEMBERS.values():
                mdata.obsm.pop(key, None)
        mdata.uns.setdefault(K.UNS, {})["model"] = {
            **self.params,
            **{k: v for k, v in self.train_params.items() if not isinstance(v, bool | type(None))},
            "z_is_c": not bool(self.branches),
        }

    # ------------------------------------------------------------------ diagnostics
    def disentanglement(
        self, mdata: MuData | None = None, cells: Literal["test", "all"] = "test", seed: int = 0
    ) -> pd.DataFrame:
        """How much of the other modality's shared features each Z still carries.

        For each modality i: the R² with which a k-nearest-neighbour regression predicts
        C_other from Z_i (cross-validated, see :func:`indiseek.tl.predictability`), the same
        from C_i for reference, and the relative reconstruction error of X_i from (Z_i, C_i).
        Computed for the first ensemble member.

        Parameters
        ----------
        mdata
            Cells to evaluate (``None``: the training MuData's cells).
        cells
            ``"test"``: cells outside the training split when a split exists; ``"all"``.
        seed
            Seed of the cross-validation folds.

        Returns
        -------
        DataFrame indexed by modality.

        Examples
        --------
        >>> model.disentanglement()  # doctest: +SKIP
        """
        from ..tl._leakage import predictability

        self._require_trained()
        reps = self.get_representations(mdata)
        inputs = self._train_inputs if mdata is None else self._new_inputs(mdata)
        mask = np.ones(len(inputs["rna"]), dtype=bool)
        if cells == "test" and mdata is None and (~self._train_cells).any():
            mask = ~self._train_cells
        other = {"rna": "adt", "adt": "rna"}
        rows = {}
        for m in MODALITIES:
            z, c_own, c_other = (
                reps[f"Z_{m}"][mask],
                reps[f"C_{m}"][mask],
                reps[f"C_{other[m]}"][mask],
            )
            row = {
                "r2_Z_to_C_other": predictability(z, c_other, seed=seed),
                "r2_C_own_to_C_other": predictability(c_own, c_other, seed=seed),
                "n_cells": int(mask.sum()),
            }
            if self.branches:
                x = inputs[m][mask]
                dec_in = np.concatenate([z, c_own], axis=1)
                x_hat = encode_chunks(self.branches[m].decoder, dec_in, self.device)
                row["rel_rec_error"] = float(((x_hat - x) ** 2).sum(1).mean() / self.x_sq[m])
            rows[m] = row
        return pd.DataFrame(rows).T

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Save weights, settings, preprocessing fit and history to a directory.

        Weights and arrays go to ``model.pt`` (tensors only, loadable with
        ``torch.load(weights_only=True)``); settings, library versions and feature names to
        ``config.json``; the training history to ``history.csv``.

        Examples
        --------
        >>> model.save("my_model", overwrite=True)  # doctest: +SKIP
        """
        self._require_trained()
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True.")
        path.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().cpu() for k, v in self._modules().state_dict().items()}
        strings: dict[str, list[str]] = {}
        if self.prepare_state is not None:
            for key, value in _flatten(self.prepare_state):
                arr = np.asarray(value)
                if arr.dtype.kind in "USO":
                    strings[key] = [str(v) for v in arr.ravel()] if arr.ndim else [str(arr)]
                else:
                    tensors[f"prepare.{key}"] = torch.as_tensor(
                        arr.astype(arr.dtype.newbyteorder("="))
                    )
        torch.save(tensors, path / MODEL_FILE)
        config = {
            "format": 1,
            "params": self.params,
            "setup": self.setup,
            "n_features": self.n_features,
            "train_params": self.train_params,
            "x_sq": self.x_sq,
            "prepare_strings": strings,
            "has_prepare": self.prepare_state is not None,
            "versions": _versions(),
        }
        (path / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=_json_default))
        if self.history is not None:
            self.history.to_csv(path / HISTORY_FILE, index=False)

    @classmethod
    def load(
        cls, path: str | Path, mdata: MuData | None = None, accelerator: str = "cpu"
    ) -> IndiSeek:
        """Load a model saved with :meth:`save`.

        The weights file is read with ``torch.load(weights_only=True)``: a file that would run
        code when unpickled is refused with a ``ValueError`` and nothing in it is executed.

        Parameters
        ----------
        path
            Directory written by :meth:`save`.
        mdata
            Optional MuData to attach (its inputs must match the model's features).
        accelerator
            Device to load onto.

        Returns
        -------
        The trained model.

        Examples
        --------
        >>> model = isk.IndiSeek.load("my_model", mdata)  # doctest: +SKIP
        """
        path = Path(path)
        if not (path / MODEL_FILE).exists() or not (path / CONFIG_FILE).exists():
            raise FileNotFoundError(
                f"{path} is not a saved IndiSeek model (needs {MODEL_FILE} and {CONFIG_FILE})."
            )
        config = json.loads((path / CONFIG_FILE).read_text())
        device = resolve_device(accelerator)
        try:
            tensors = torch.load(path / MODEL_FILE, map_location=device, weights_only=True)
        except pickle.UnpicklingError as err:
            raise ValueError(
                f"Refusing to load {path / MODEL_FILE}: it holds objects other than plain tensors "
                f"(it may have been tampered with), and loading it could run code. ({err})"
            ) from err
        if not isinstance(tensors, dict) or not all(
            isinstance(v, torch.Tensor) for v in tensors.values()
        ):
            raise ValueError(f"{path / MODEL_FILE} does not hold a dictionary of tensors.")
        model = cls.__new__(cls)
        model.objective = get_objective(config["params"]["objective"])
        model.params = config["params"]
        model.setup = config["setup"]
        model.n_features = config["n_features"]
        model.train_params = config.get("train_params", {})
        model.x_sq = config.get("x_sq", {})
        model._build(seed=0)
        state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
        model._modules().load_state_dict(state)
        model._modules().to(device).eval()
        model.device = device
        model.prepare_state = None
        if config.get("has_prepare"):
            flat = {
                k[len("prepare.") :]: v.cpu().numpy()
                for k, v in tensors.items()
                if k.startswith("prepare.")
            }
            flat.update({k: np.asarray(v) for k, v in config.get("prepare_strings", {}).items()})
            model.prepare_state = _unflatten(flat)
        hist = path / HISTORY_FILE
        model.history = pd.read_csv(hist) if hist.exists() else None
        model.is_trained = True
        model._train_inputs = None
        model._train_cells = None
        if mdata is not None:
            model._capture_for_inference(mdata)
        return model

    def _capture_for_inference(self, mdata: MuData) -> None:
        inputs = self._new_inputs(mdata)
        self._train_inputs = inputs
        self._train_cells = np.zeros(len(inputs["rna"]), dtype=bool)

    def __repr__(self) -> str:
        p = self.params
        state = "trained" if self.is_trained else "not trained"
        return (
            f"IndiSeek(objective={p['objective']!r}, lam={p['lam']}, n_shared={p['n_shared']}, "
            f"n_specific={p['n_specific']}, n_hidden={p['n_hidden']}, n_layers={p['n_layers']}; "
            f"inputs rna={self.n_features['rna']}, adt={self.n_features['adt']}; {state})"
        )


def concatenate_blocks(blocks: list[np.ndarray]) -> np.ndarray:
    """Concatenate embeddings after scaling each to unit total variance."""
    scaled = []
    for b in blocks:
        total = float(np.var(b, axis=0).sum())
        scaled.append(b / np.sqrt(total) if total > 0 else b)
    return np.concatenate(scaled, axis=1).astype(np.float32)


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


def _same_fit(a: dict, b: dict) -> bool:
    try:
        la, lb = np.asarray(a["rna"]["loadings"]), np.asarray(b["rna"]["loadings"])
        ga, gb = (
            np.asarray(a["rna"]["genes"]).astype(str),
            np.asarray(b["rna"]["genes"]).astype(str),
        )
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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)
