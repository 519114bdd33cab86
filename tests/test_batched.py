"""Members trained at once as one batched model: the same maths as one after another."""

import numpy as np
import pytest
import torch

import indiseek as isk
from indiseek.model._ensemble import build_members, make_jobs
from indiseek.nn import TrainConfig, can_batch, to_tensor, train_member, train_members_batched
from indiseek.nn._batched import why_not_batched
from indiseek.nn._graphs import GraphedStep

SMALL = dict(n_shared=8, n_specific=6, n_hidden=32, n_layers=3, n_members=3)


def _jobs(mdata, dtype, device="cpu", member_cells=None, **cfg_kw):
    model = isk.IndiSeek(mdata, **SMALL)
    members = build_members(model.params, model.n_features, model.objective, 5)
    model.module = members.to(dtype).to(device)
    x = {m: to_tensor(v, torch.device(device)).to(dtype) for m, v in model._train_inputs.items()}
    cfg = TrainConfig(progress_bar=False, seed=5, **cfg_kw)
    cells = np.flatnonzero(model._train_cells)
    return make_jobs(model, x, cells, cfg, 0.1, None, None, member_cells)


def test_batched_members_are_the_sequential_maths(small_mdata):
    """In float64 the batched members end where the sequential ones do, to rounding level,
    including per-member early stopping (members stop at different epochs)."""
    kw = dict(max_epochs=25, batch_size=32, clip_patience=2, early_stopping=True, patience=3)
    seq = [train_member(j) for j in _jobs(small_mdata, torch.float64, **kw)]
    jobs = _jobs(small_mdata, torch.float64, **kw)
    assert can_batch(jobs)
    bat = train_members_batched(jobs)
    lengths = {len(r.clip_history) for r in seq}
    assert len(lengths) > 1, "members should stop step 1 at different epochs here"
    for a, b in zip(seq, bat, strict=True):
        assert len(a.clip_history) == len(b.clip_history)
        assert len(a.specific_history) == len(b.specific_history)
        for key in a.state:
            np.testing.assert_allclose(b.state[key], a.state[key], rtol=0, atol=1e-9)
        cols = list(a.specific_history.columns)
        assert cols == list(b.specific_history.columns)
        np.testing.assert_allclose(
            b.specific_history[cols].to_numpy(),
            a.specific_history[cols].to_numpy(),
            rtol=1e-5,
            atol=1e-6,
        )


def test_members_with_a_few_cells_more_train_batched(small_mdata):
    """Cross-fit folds differ by a few cells: as long as every member has as many full
    batches per epoch, they train batched with the sequential maths (float64), their own
    validation cells and early stopping included."""
    cells = np.flatnonzero(small_mdata.obs["indiseek_split"].to_numpy() == "train")
    own = [cells[:-6], cells[1:], cells[3:]]  # validation 47 / 48 / 48, 13 batches of 32 each
    kw = dict(max_epochs=25, batch_size=32, clip_patience=2, early_stopping=True, patience=3)
    seq = [train_member(j) for j in _jobs(small_mdata, torch.float64, member_cells=own, **kw)]
    jobs = _jobs(small_mdata, torch.float64, member_cells=own, **kw)
    assert len({len(j.train_idx) for j in jobs}) > 1 and len({len(j.val_idx) for j in jobs}) > 1
    assert can_batch(jobs)
    bat = train_members_batched(jobs)
    assert len({len(r.clip_history) for r in seq}) > 1, "members should stop at different epochs"
    for a, b in zip(seq, bat, strict=True):
        for step in ("clip_history", "specific_history"):
            ha, hb = getattr(a, step), getattr(b, step)
            assert list(ha.columns) == list(hb.columns) and len(ha) == len(hb)
            np.testing.assert_allclose(hb.to_numpy(), ha.to_numpy(), rtol=1e-5, atol=1e-6)
        for key in a.state:
            np.testing.assert_allclose(b.state[key], a.state[key], rtol=0, atol=1e-9)
    uneven = _jobs(small_mdata, torch.float64, member_cells=[cells[:-40], cells, cells], **kw)
    assert "batches per epoch" in why_not_batched(uneven)
    with pytest.raises(ValueError, match="batches per epoch"):
        train_members_batched(uneven)


def test_graphed_step_is_a_plain_call_off_cuda():
    calls = []

    def step(idx):
        calls.append(idx)
        return idx * 2

    run = GraphedStep(step, torch.device("cpu"), enabled=True)
    for i in range(5):
        assert torch.equal(run(torch.tensor([i])), torch.tensor([2 * i]))
    assert len(calls) == 5 and not run.captured
    with pytest.raises(ValueError, match="warmup"):
        GraphedStep(step, torch.device("cpu"), warmup=0)
    with pytest.raises(ValueError, match="cuda_graphs must be True or False"):
        TrainConfig(cuda_graphs="no")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "kw",
    [  # members stop both steps at different epochs; one batch per epoch (capture at epoch 4)
        dict(max_epochs=12, batch_size=32, clip_patience=2, early_stopping=True, patience=1),
        dict(max_epochs=6, batch_size=512),
    ],
)
def test_cuda_graphs_are_the_eager_maths(small_mdata, kw, monkeypatch):
    """Replayed from CUDA graphs, the batched members take the eager path's steps (float64)."""
    import indiseek.nn._batched as batched

    made = []

    class Recorded(GraphedStep):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(batched, "GraphedStep", Recorded)
    runs = {}
    for graphs in (False, True):
        jobs = _jobs(small_mdata, torch.float64, "cuda", cuda_graphs=graphs, **kw)
        runs[graphs] = train_members_batched(jobs)
    assert made[-2:] and all(g.captured for g in made[-2:]), "no graph was captured"
    for a, b in zip(runs[False], runs[True], strict=True):
        assert len(a.clip_history) == len(b.clip_history)
        assert len(a.specific_history) == len(b.specific_history)
        for key in a.state:
            np.testing.assert_allclose(
                b.state[key].cpu(), a.state[key].cpu(), rtol=0, atol=1e-8, err_msg=key
            )
    model = isk.IndiSeek(small_mdata, **SMALL)
    model.train(max_epochs=3, progress_bar=False, accelerator="cuda")
    assert model.train_params["batched"] and np.isfinite(model.get_representations()["Z_rna"]).all()


def test_batch_members_through_train(small_mdata):
    reps = {}
    for flag in (False, True):
        model = isk.IndiSeek(small_mdata, **SMALL)
        model.train(max_epochs=3, progress_bar=False, seed=2, batch_members=flag)
        assert model.train_params["batched"] is flag
        assert len(model.history.query("step == 'specific'")) == 3 * 3
        reps[flag] = model.get_representations()
    for key in reps[False]:  # float32: summation order only
        np.testing.assert_allclose(reps[True][key], reps[False][key], rtol=0, atol=5e-3)
    again = isk.IndiSeek(small_mdata, **SMALL)
    again.train(max_epochs=3, progress_bar=False, seed=2, batch_members=True)
    for key, value in again.get_representations().items():
        np.testing.assert_array_equal(value, reps[True][key])


def test_settings_the_batched_path_does_not_cover_fall_back(small_mdata, caplog):
    model = isk.IndiSeek(small_mdata, normalize_z=True, **SMALL)
    with caplog.at_level("WARNING", logger="indiseek"):
        model.train(max_epochs=1, progress_bar=False, batch_members=True)
    assert model.train_params["batched"] is False
    assert "normalize_z" in caplog.text
    model = isk.IndiSeek(small_mdata, **SMALL)
    model.train(max_epochs=1, progress_bar=False, batch_members=True, q_schedule="epoch")
    assert model.train_params["batched"] is False
    with pytest.raises(ValueError, match="batch_members"):
        model.train(max_epochs=1, progress_bar=False, batch_members="yes")


def test_default_schedule_stops_growing_on_atlases():
    from indiseek.nn import default_epochs

    assert default_epochs(15_000, 128) == 103  # the suite's sizes are unchanged
    assert default_epochs(150_000, 128) == 20  # the floor holds up to ~160,000 cells
    assert default_epochs(162_000, 128) == 19
    for n in (200_000, 500_000, 1_000_000):  # about twice the target, at most
        steps = n // 128
        assert 12_000 <= default_epochs(n, 128) * steps <= 24_000 + steps
