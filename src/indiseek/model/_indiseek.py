"""The IndiSeek model on a MuData: the user-facing class, in the shape of scvi-tools models.

The machinery has homes of its own: :mod:`._registry` (what ``setup_mudata`` records and how
inputs are read back), :mod:`._ensemble` (members, seeds, parallel training), :mod:`._io`
(the file format) and :mod:`indiseek.nn` (the torch modules and training loops).
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from .. import _keys as K
from ..nn import TrainConfig, get_objective, to_tensor
from ..nn._member import critic_at_bound
from ..nn._train_utils import check_int
from . import _restart
from ._device import resolve_device
from ._ensemble import (
    build_members,
    check_train_args,
    collect_history,
    crossfit_cells,
    make_jobs,
    n_workers,
    run_members,
    train_record,
    use_batched,
)
from ._inference import RepresentationMixin, apply_z_scale, encode, z_scales
from ._io import SaveLoadMixin
from ._registry import ROLES, Registry, SetupMixin

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger(__name__)


class IndiSeek(SetupMixin, RepresentationMixin, SaveLoadMixin):
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
        Dimensions of C and Z. The paper uses 50 for both; Z defaults to 10 here (chosen on
        indiseek 0.1's simulations; see the method page).
    n_hidden, n_layers
        Width and number of linear layers of every MLP (paper: 50 and 5).
    temperature
        Initial InfoNCE temperature.
    learn_temperature
        Learn the temperature in step 1 (else fixed).
    normalize_z
        End each h with a non-affine batch standardisation, fixing the scale of Z during
        training. Off by default: with it, θ lost most of its agreement with the truth on
        bone-marrow-like simulations (θ suite row ``v0.1`` vs ``default`` in
        ``benchmarks/README.md``). θ's neighbour search never sees the encoder's scale either
        way: Z is read with unit variance per dimension (``z_scale``).
    club_weight
        Weight of the independence (CLUB) term; 0 is the reconstruction-only ablation.
    n_members
        Models trained independently (each its own seed, step 1 and step 2). Their C and Z
        stand side by side in every output (:meth:`get_representations`, :meth:`write_obsm`),
        θ averages over them and the spread over members is reported (single models scatter
        widely: θ's ρ between seeds differed by up to 0.7 in the θ suite). Compute grows in
        proportion; on a CPU the members train in parallel worker processes (see
        ``train(n_jobs=...)``). ``n_members=1`` is the paper's single model.
    batch_covariate
        With a ``batch_key`` (:meth:`setup_mudata`): give step 2 each cell's batch (one-hot)
        beside C, in the decoder g(Z, C, b), so that reconstruction does not need the batch
        in Z, and in the CLUB critic q(z | C_other, b), so that Z is made independent of the
        batch as well as of the other modality's C. Ignored without batches. Chosen on the
        donor benchmark (``benchmarks/README.md``, "Donors and batches").

    Examples
    --------
    >>> import indiseek as isk
    >>> mdata = isk.datasets.synthetic_citeseq(n_cells=600, seed=0)
    >>> isk.pp.prepare(mdata, train_size=0.8)
    >>> isk.IndiSeek.setup_mudata(mdata)
    >>> model = isk.IndiSeek(mdata, lam=10.0)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> model.write_obsm(mdata)
    >>> mdata.obsm["X_indiseek"].shape  # three members × (50 + 50 + 10 + 10)
    (600, 360)
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
        normalize_z: bool = False,
        club_weight: float = 1.0,
        n_members: int = 3,
        batch_covariate: bool = True,
    ) -> None:
        self.objective = get_objective(objective)
        sizes = dict(n_shared=n_shared, n_specific=n_specific, n_hidden=n_hidden)
        for name, value in {**sizes, "n_layers": n_layers, "n_members": n_members}.items():
            check_int(name, value, 1)
        for name, value, low, high in (
            ("lam", lam, 0, math.inf),
            ("temperature", temperature, 1e-12, 1),
            ("club_weight", club_weight, 0, math.inf),
        ):
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not (ok and low <= value <= high and value == value):
                span = f">= {low}" if high == math.inf else "in (0, 1]"
                raise ValueError(f"{name} must be a number {span}, got {value!r}.")
        self.registry = Registry.from_mudata(mdata)
        # The MuData is not kept on the model (it is the user's and may be large): what
        # training needs is captured here.
        self._train_inputs = self.registry.inputs(mdata)
        self._train_cells = self.registry.train_mask(mdata, len(self._train_inputs["rna"]))
        self.batch_names, self._batches, n_covariates = self.registry.training_batches(
            mdata, self._train_cells, batch_covariate
        )
        if self._train_cells.sum() < 2:
            raise ValueError(
                f"{int(self._train_cells.sum())} training cells (mdata.obs"
                f"[{self.registry.split_key!r}] == 'train'); at least 2 are needed."
            )
        self.n_features = {m: int(self._train_inputs[m].shape[1]) for m in ROLES}
        self.params = {
            "objective": self.objective.name,
            "lam": float(lam),
            **{k: int(v) for k, v in sizes.items()},
            "n_layers": int(n_layers),
            "temperature": float(temperature),
            "learn_temperature": bool(learn_temperature),
            "normalize_z": bool(normalize_z),
            "club_weight": float(club_weight),
            "n_members": int(n_members),
            "n_covariates": n_covariates,
        }
        self.prepare_state = mdata.uns.get(K.UNS, {}).get("prepare")
        self.module = build_members(self.params, self.n_features, self.objective, seed=0)
        self.device = torch.device("cpu")
        self.is_trained = False
        self.history: pd.DataFrame | None = None
        self.train_params: dict[str, Any] = {}
        self.x_sq: dict[str, float] = {}
        self.z_scale: dict[str, list[float]] | None = None
        self.block_scale: list[float] | None = None
        self.obs_names = np.asarray(mdata.obs_names, dtype=str)
        #: Cross-fitting fold of each cell of the training MuData (−1: trained on by no
        #: member); ``None`` unless trained with ``cross_fit=True``.
        self.folds: np.ndarray | None = None
        self._loaded = False

    @property
    def n_members(self) -> int:
        """Independently trained models in the ensemble (θ averages over them)."""
        return int(self.params["n_members"])

    @property
    def clip(self) -> torch.nn.Module:
        """Step-1 encoders of the first member."""
        return self.module[0].clip

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
        batch_members: bool | None = None,
        cuda_graphs: bool = True,
        cross_fit: bool = False,
        restart_collapsed: bool = True,
        progress_bar: bool = True,
        clip_from: IndiSeek | None = None,
    ) -> None:
        """Train step 1 (CLIP) and then step 2 (both modality-specific branches).

        Each call starts from a fresh initialisation drawn from ``seed``: the same seed on the
        same device gives the same representations.

        Parameters
        ----------
        max_epochs
            Epochs of each step (``None``: enough for about 12,000 updates, 20 to 500 epochs,
            fewer than 20 past ~160,000 training cells;
            about a minute per member on one CPU core).
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
            When members train one by one on a CPU, how many train at once, each in its own
            worker process (ignored on a GPU and when they train batched). ``None``: as many
            as there are members and cores when each member runs at least 1,000 updates
            (below that, starting workers costs more than it saves), or one per member when
            the cores do not divide the members (at most twice as many), ``n_threads=1`` and
            the inputs are under 1 GiB in all (3 members on 2 cores share the cores: ~1.5
            members' time instead of 2); 1: in this process; k > 1: k workers (at most one
            per member, whatever the cores); -1: one per core (at most one per member).
            Workers are joblib's ``loky`` processes, so a plain script needs no ``__main__``
            guard. Results are identical either way.
        batch_members
            Train all members at once as one batched model (stacked weights, one ``vmap``-ed
            step; the same maths per member, results equal up to float summation order).
            ``None``: on a CUDA GPU (where the members then run in parallel), not on a CPU
            or MPS (on a CPU it measured only 1.2x faster than one member after another on
            one core, and slower than two worker processes on two; ``benchmarks/README.md``).
            Settings it does not cover (``normalize_z=True``, objectives with InfoNCE
            critics, ``q_schedule="epoch"``, ``q_steps > 1``, ``clip_from``) train one member
            after another, with a warning when ``True`` was asked for.
        cuda_graphs
            When members train batched on a CUDA GPU, replay each step from a captured CUDA
            graph after 3 eager ones (one launch instead of hundreds: these small networks are
            launch-bound there); the same updates as eager (tested to 1e-8 in float64). Ignored
            elsewhere; pass ``False`` if a capture fails on your setup (it falls back, warning).
        cross_fit
            Cross-fitting, for θ on every cell: the training cells are dealt into
            ``n_members`` folds (evenly within each batch) and member ``j`` trains on every
            fold but ``j``. :func:`indiseek.tl.theta_score` then scores each cell with the
            member that never saw it (neighbours among all cells), so every cell gets an
            honest θ without a 50/50 split (prepare without ``train_size``; the unsupervised
            preprocessing is then fitted on every cell). Each member trains on
            (n_members − 1)/n_members of the cells. Needs ``n_members >= 2``; cannot reuse
            ``clip_from``. With a split, the folds divide the training cells. Folds differ in
            size by a cell or so; on a GPU (or with ``batch_members=True``) members still
            train batched while each has as many full batches per epoch. The folds
            are in ``model.folds`` and :meth:`write_obsm` writes them to
            ``mdata.obs["indiseek_fold"]``.
        restart_collapsed
            Train step 2 of a member whose Z collapsed again (see Warns); ``False`` only warns.
        progress_bar
            Show progress bars (silence with ``False``).
        clip_from
            A trained model on the same inputs whose step 1 (CLIP encoders) is reused instead of
            training step 1 again; with the same ``seed`` this gives exactly what retraining
            would (used by :func:`indiseek.tl.compare_methods`).

        Warns
        -----
        RuntimeWarning
            When a member's Z collapsed to a constant in step 2 (objectives ``indiseek`` and
            ``indiseek0``): that member's step 2 is trained again from fresh weights and a
            derived seed, at most twice, keeping its step 1 (``model.history`` keeps the
            last attempt).

        Notes
        -----
        Besides the settings, ``model.train_params`` records ``step2_restarts`` (restarts per
        member, a list of ``n_members`` ints), ``time_restart_s`` (seconds of the collapse
        checks and restarts, included in ``time_wall_s``) and ``critic_at_bound``
        (``{modality: [share per member]}``, ``{}`` without step 2): the share of training
        cells × dimensions where the CLUB critic's log-variance sits on its bound, where the
        CLUB term barely constrains Z (see the method docs, "Step 2"; for ``infodisen``, whose
        critic is only a probe, it describes the probe).

        Examples
        --------
        >>> model = isk.IndiSeek(mdata, lam=10.0)  # doctest: +SKIP
        >>> model.train()  # doctest: +SKIP
        >>> model.train(max_epochs=2000, lr=1e-4)  # the paper's schedule  # doctest: +SKIP
        >>> model.history.tail()  # doctest: +SKIP
        """
        if self._loaded:
            raise RuntimeError(
                "This model was loaded from disk; build a new isk.IndiSeek(mdata, ...) to "
                "train (a loaded model is for read-outs)."
            )
        cfg = TrainConfig.pick(locals(), cpu_threads=n_threads)  # validates every setting
        use_batched(batch_members)
        check_train_args(
            self, clip_epochs, n_jobs, validation_size, early_stopping, clip_from, restart_collapsed
        )
        device = resolve_device(accelerator)
        self.module = build_members(self.params, self.n_features, self.objective, seed).to(device)
        self.device = device
        cells = np.flatnonzero(self._train_cells)
        x = {m: to_tensor(v, device) for m, v in self._train_inputs.items()}
        self.folds, member_cells = crossfit_cells(
            cross_fit, clip_from, self._train_cells, self.n_members, seed, self._batches
        )
        jobs = make_jobs(self, x, cells, cfg, validation_size, clip_epochs, clip_from, member_cells)
        self.x_sq = jobs[0].x_sq
        updates = jobs[0].epochs * max(len(jobs[0].train_idx) // batch_size, 1)
        batched = use_batched(batch_members, device, jobs)
        size = sum(v.numel() * v.element_size() for v in x.values())
        workers = n_workers(n_jobs, device, self.n_members, updates, size, cfg.cpu_threads)
        workers = 1 if batched else workers
        t0 = time.perf_counter()
        results = run_members(jobs, workers, progress_bar, batched)
        for member, res in zip(self.module, results, strict=True):
            member.load_state_dict(res.state)
            member.eval()
        most = _restart.MAX_RESTARTS if restart_collapsed else 0
        restarts, restart_s = _restart.restart_collapsed(self.module, jobs, results, most)
        wall = time.perf_counter() - t0
        self.history = collect_history(results)
        train_x = {m: v[self._train_cells] for m, v in self._train_inputs.items()}
        every = encode(self.module, train_x, device)  # once, for both scales
        self.z_scale = z_scales(every, self.n_members) if self.objective.has_specific else None
        self.block_scale = self._measure_block_scale(
            apply_z_scale(every, self.z_scale, self.n_members)
        )
        self.train_params = train_record(cfg, jobs, results, self.history, batched)
        self.train_params.update(validation_size=validation_size, device=str(device))
        self.train_params.update(n_jobs=workers, batched=batched, cross_fit=self.folds is not None)
        self.train_params.update(step2_restarts=restarts, time_restart_s=round(restart_s, 3))
        self.train_params["restart_collapsed"] = bool(restart_collapsed)
        shares = [critic_at_bound(job) for job in jobs]  # per modality, a value per member
        self.train_params["critic_at_bound"] = {m: [s[m] for s in shares] for m in shares[0]}
        self.train_params["time_wall_s"] = round(wall, 3)
        self.is_trained = True
        logger.info("trained in %.1f s on %s (%d worker(s))", wall, device, workers)

    def _clip_history(self, member: int) -> pd.DataFrame:
        """Member ``member``'s step-1 history, without the step and member columns."""
        hist = self.history
        hist = hist[(hist["step"] == "clip") & (hist["member"] == member)]
        return hist.drop(columns=["step", "member"]).dropna(axis=1, how="all")

    def __repr__(self) -> str:
        p = self.params
        state = "trained" if self.is_trained else "not trained"
        return (
            f"IndiSeek(objective={p['objective']!r}, lam={p['lam']}, n_shared={p['n_shared']}, "
            f"n_specific={p['n_specific']}, n_hidden={p['n_hidden']}, n_layers={p['n_layers']}, "
            f"n_members={p['n_members']}; inputs rna={self.n_features['rna']}, "
            f"adt={self.n_features['adt']}; {state})"
        )
