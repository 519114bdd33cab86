"""A member whose Z collapsed to a constant in step 2 is detected and its step 2 trained again."""

import dataclasses
import warnings

import numpy as np
import pytest
import torch

import indiseek as isk
from indiseek.model import _restart
from indiseek.nn import IndiSeekModule, MemberJob, TrainConfig
from indiseek.nn._member import collapsed_branches, critic_at_bound, reinitialise_branches


def _module(seed=0):
    torch.manual_seed(seed)
    return IndiSeekModule({"rna": 12, "adt": 6}, 4, 3, 16, 3, normalize_z=False)


def _kill(branch):
    """Every unit of the encoder's last hidden layer off for all inputs: Z is the last bias."""
    hidden = [m for m in branch.encoder if isinstance(m, torch.nn.Linear)][-2]
    with torch.no_grad():
        hidden.weight.zero_()
        hidden.bias.fill_(-1.0)


def test_collapsed_branches_finds_a_constant_z_only():
    module = _module()
    x = {"rna": torch.randn(300, 12), "adt": torch.randn(300, 6)}
    idx = np.arange(300)
    assert collapsed_branches(module, x, idx) == []
    _kill(module.branches["adt"])
    assert collapsed_branches(module, x, idx) == ["adt"]
    _kill(module.branches["rna"])
    assert collapsed_branches(module, x, idx) == ["rna", "adt"]
    # a Z whose spread is small next to its mean, but read by the decoder, is alive: the check
    # is scale-free (the decoder absorbs Z's scale)
    module = _module()
    branch = module.branches["rna"]
    with torch.no_grad():
        branch.encoder[-1].weight.mul_(1e-4)
        branch.encoder[-1].bias.add_(100.0)
        branch.decoder[0].weight[:, :3].mul_(1e4)
    z = branch.encoder(x["rna"]).detach()
    assert (z.std(0) < 1e-3 * z.mean(0).abs()).all()
    assert collapsed_branches(module, x, idx) == []
    with torch.no_grad():
        branch.decoder[0].weight[:, :3].mul_(1e-4)  # read 1e-4 as much as C: alive, if faint
    assert collapsed_branches(module, x, idx) == []
    with torch.no_grad():
        branch.decoder[0].weight[:, :3].mul_(1e-3)  # the decoder no longer reads it
    assert collapsed_branches(module, x, idx) == ["rna"]
    assert collapsed_branches(_module(), x, idx[:1]) == []  # one cell says nothing


def test_reinitialise_branches_is_seeded_and_keeps_step_1():
    a, b = _module(0), _module(1)
    clip_before = {k: v.clone() for k, v in a.clip.state_dict().items()}
    reinitialise_branches(a, 7)
    reinitialise_branches(b, 7)
    for (name, pa), pb in zip(a.branches.named_parameters(), b.branches.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    assert all(torch.equal(v, a.clip.state_dict()[k]) for k, v in clip_before.items())
    x = {"rna": torch.randn(200, 12), "adt": torch.randn(200, 6)}
    assert collapsed_branches(a, x, np.arange(200)) == []


def test_critic_at_bound_counts_log_variances_on_the_bound():
    module = _module()
    x = {"rna": torch.randn(300, 12), "adt": torch.randn(300, 6)}
    job = MemberJob(
        module,
        x,
        np.arange(200),
        np.arange(200, 300),
        TrainConfig(),
        1,
        1,
        "indiseek",
        10.0,
        1.0,
        {"rna": 1.0, "adt": 1.0},
    )
    fresh = critic_at_bound(job)
    assert set(fresh) == {"rna", "adt"} and max(fresh.values()) < 0.05
    last = module.branches["rna"].q.logvar[-1]
    with torch.no_grad():
        last.bias[:2] = 1e4  # two of three dimensions pinned at +bound, for every cell
        last.weight[:2] = 0.0
    assert critic_at_bound(job)["rna"] == pytest.approx(2 / 3, abs=1e-3)
    assert critic_at_bound(job)["adt"] == fresh["adt"]
    with torch.no_grad():
        last.bias[:] = -1e4  # and at the lower bound
        last.weight[:] = 0.0
    assert critic_at_bound(job)["rna"] == 1.0
    clip_only = IndiSeekModule({"rna": 12, "adt": 6}, 4, 3, 16, 3, specific=False)
    assert critic_at_bound(dataclasses.replace(job, module=clip_only)) == {}


def _train(mdata, monkeypatch, collapses, objective="indiseek", **train_kwargs):
    """Train 2 members; the collapse check reports member 0's RNA Z dead ``collapses`` times."""
    calls = {"n": 0}
    real = _restart.collapsed_branches

    def fake(member, x, idx):
        dead = real(member, x, idx)
        if member is model.module[0] and calls["n"] < collapses:
            calls["n"] += 1
            return ["rna"]
        return dead

    monkeypatch.setattr(_restart, "collapsed_branches", fake)
    model = isk.IndiSeek(
        mdata, objective, n_shared=6, n_specific=4, n_hidden=16, n_layers=2, n_members=2
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        model.train(max_epochs=3, progress_bar=False, seed=0, n_jobs=1, **train_kwargs)
    ours = [w for w in caught if "Ensemble member" in str(w.message)]
    assert all(w.filename == __file__ for w in ours)  # points at the train() call
    return model, [str(w.message) for w in ours]


def test_a_collapsed_member_trains_step_2_again(small_mdata, monkeypatch):
    plain, messages = _train(small_mdata, monkeypatch, 0)
    rng = torch.random.get_rng_state()
    assert plain.train_params["step2_restarts"] == [0, 0]
    shares = plain.train_params["critic_at_bound"]  # per modality, one value per member
    assert set(shares) == {"rna", "adt"} and all(len(v) == 2 for v in shares.values())
    assert all(0.0 <= v <= 1.0 for values in shares.values() for v in values)
    assert not any("collapsed" in m for m in messages)
    model, messages = _train(small_mdata, monkeypatch, 1)
    assert torch.equal(torch.random.get_rng_state(), rng)  # the user's RNG is left alone
    assert model.train_params["step2_restarts"] == [1, 0]
    assert any("member 0: Z of rna collapsed" in m and "restart 1 of 2" in m for m in messages)
    # step 1 kept, step 2 new for member 0; member 1 untouched
    for key, value in plain.module[0].clip.state_dict().items():
        assert torch.equal(value, model.module[0].clip.state_dict()[key]), key
    w0 = [p for p in model.module[0].branches.parameters()]
    p0 = [p for p in plain.module[0].branches.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(w0, p0, strict=True))
    for a, b in zip(model.module[1].parameters(), plain.module[1].parameters(), strict=True):
        assert torch.equal(a, b)
    step2 = model.history[model.history["step"] == "specific"].reset_index(drop=True)
    before = plain.history[plain.history["step"] == "specific"].reset_index(drop=True)
    cols = ["train_rna_rel_rec_error", "train_adt_rel_rec_error"]
    assert not step2[step2["member"] == 0][cols].equals(before[before["member"] == 0][cols])
    assert step2[step2["member"] == 1][cols].equals(before[before["member"] == 1][cols])
    params = model.train_params
    assert 0 <= params["time_restart_s"] <= params["time_wall_s"]  # the wall time includes it
    # the restart is seeded: the same seed gives the same member
    again, _ = _train(small_mdata, monkeypatch, 1)
    for a, b in zip(again.module[0].parameters(), model.module[0].parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_member_that_stays_collapsed_is_reported(small_mdata, monkeypatch):
    model, messages = _train(small_mdata, monkeypatch, 99)
    assert model.train_params["step2_restarts"] == [_restart.MAX_RESTARTS, 0]
    assert any("still collapsed after 2 restarts" in m for m in messages)


def test_restart_collapsed_false_only_warns(small_mdata, monkeypatch):
    plain, _ = _train(small_mdata, monkeypatch, 0)
    model, messages = _train(small_mdata, monkeypatch, 99, restart_collapsed=False)
    assert model.train_params["step2_restarts"] == [0, 0]
    assert model.train_params["restart_collapsed"] is False
    assert len(messages) == 1 and "not restarted: restart_collapsed=False" in messages[0]
    for a, b in zip(model.module.parameters(), plain.module.parameters(), strict=True):
        assert torch.equal(a, b)  # nothing trained again
    with pytest.raises(ValueError, match="restart_collapsed must be True or False"):
        isk.IndiSeek(small_mdata, n_members=2).train(max_epochs=1, restart_collapsed="no")


def test_no_restart_where_the_decoder_is_only_a_probe(small_mdata, monkeypatch):
    # FactorizedCL's decoder reads detached Z: how little it uses Z says nothing about Z
    model, messages = _train(small_mdata, monkeypatch, 99, objective="factorized_cl")
    assert model.train_params["step2_restarts"] == [0, 0] and messages == []


def test_restarts_survive_save_and_load(small_mdata, monkeypatch, tmp_path):
    model, _ = _train(small_mdata, monkeypatch, 1)
    model.save(tmp_path / "model")
    loaded = isk.IndiSeek.load(tmp_path / "model", small_mdata)
    assert loaded.train_params["step2_restarts"] == [1, 0]
    assert loaded.train_params["critic_at_bound"] == model.train_params["critic_at_bound"]
    model.write_obsm(small_mdata)  # train_params go to .uns: must be writable
    small_mdata.write(tmp_path / "out.h5mu")
