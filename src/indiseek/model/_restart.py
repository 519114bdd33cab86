"""Members whose Z collapsed in step 2: detected after training, step 2 trained again."""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from ..nn import MemberJob, MemberResult, get_objective, train_member
from ..nn._member import collapsed_branches, reinitialise_branches

#: Times step 2 is trained again for a member whose Z collapsed (:func:`restart_collapsed`).
MAX_RESTARTS = 2


def restart_seed(seed: int, attempt: int) -> int:
    """Seed of restart ``attempt`` (1, 2, …) of a member's step 2 whose own seed is ``seed``."""
    state = np.random.SeedSequence([int(seed), 104_729, int(attempt)]).generate_state(1)[0]
    return int(state % (2**31))


def _retrain_step2(member, job: MemberJob, result: MemberResult, seed: int) -> MemberResult:
    """Step 2 of ``member`` from fresh weights drawn from ``seed``; its step 1 is kept."""
    reinitialise_branches(member, seed)
    cfg = dataclasses.replace(job.cfg, seed=seed, progress_bar=False)
    clip = {"clip_state": member.clip.state_dict(), "clip_history": result.clip_history}
    res = train_member(dataclasses.replace(job, module=member, cfg=cfg, **clip))
    member.load_state_dict(res.state)
    member.eval()
    # the member's step times stay those of its first training (restarts are timed apart)
    return dataclasses.replace(
        res, time_clip_s=result.time_clip_s, time_specific_s=result.time_specific_s
    )


def restart_collapsed(
    members: Sequence[torch.nn.Module],
    jobs: Sequence[MemberJob],
    results: list[MemberResult],
    max_restarts: int = MAX_RESTARTS,
) -> tuple[list[int], float]:
    """Train step 2 again, from fresh weights and a derived seed (:func:`restart_seed`), for
    every trained member whose Z collapsed (``indiseek.nn._member.collapsed_branches``), at
    most ``max_restarts`` times (0: only warn).

    Only for objectives whose decoder shapes Z (``indiseek``, ``indiseek0``). Step 1 is kept;
    ``results`` is updated in place: the history keeps the last attempt only. Returns the restarts per
    member and the seconds the checks and restarts took. Rare (one dataset and seed of the θ suite),
    but a collapsed first member would leave ``X_indiseek_Z_*`` without information. On a GPU
    a restart trains one member eagerly, without the batched path's CUDA graphs.
    """
    restarts = []
    t0 = time.perf_counter()
    for j, (member, job) in enumerate(zip(members, jobs, strict=True)):
        # only where the decoder shapes Z (a probe decoder's use of Z says nothing about it)
        shaped = get_objective(job.objective).complement == "reconstruction"
        dead = collapsed_branches(member, job.x, job.train_idx) if shaped else []
        attempt = 0
        while dead and attempt < max_restarts:
            attempt += 1
            seed = restart_seed(job.cfg.seed, attempt)
            warnings.warn(
                f"Ensemble member {j}: Z of {', '.join(dead)} collapsed in step 2 (the decoder "
                "can no longer tell cells apart by it: typically every encoder unit switched "
                f"off); training step 2 again from fresh weights with seed {seed} (restart "
                f"{attempt} of {max_restarts}; restart_collapsed=False only warns).",
                RuntimeWarning,
                stacklevel=3,
            )
            results[j] = _retrain_step2(member, job, results[j], seed)
            dead = collapsed_branches(member, job.x, job.train_idx)
        if dead:
            after = (
                f"is still collapsed after {attempt} restarts of step 2"
                if attempt
                else "collapsed in step 2 (not restarted: restart_collapsed=False)"
            )
            warnings.warn(
                f"Ensemble member {j}: Z of {', '.join(dead)} {after} and carries no "
                "information; train with another seed or a smaller lr (with a small lam, a Z "
                "without information can also be the objective's own optimum).",
                RuntimeWarning,
                stacklevel=3,
            )
        restarts.append(attempt)
    return restarts, time.perf_counter() - t0
