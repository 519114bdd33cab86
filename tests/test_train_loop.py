"""The training loop's fast paths are the plain ones: same cells, same updates, same sums."""

import pytest
import torch

from indiseek.model import _ensemble
from indiseek.nn._loops import gathered_batches
from indiseek.nn._train_utils import Accumulator, TrainConfig, batches


@pytest.mark.parametrize("n", [1000, 100, 128 * 40 + 7])
def test_gathered_batches_are_the_drawn_cells(n):
    cfg = TrainConfig(batch_size=128)
    x = torch.randn(3 * n, 5)
    y = torch.randn(3 * n, 2)
    train_idx = torch.randperm(3 * n)[:n]
    plain = [train_idx[b] for b in batches(n, 128, torch.Generator().manual_seed(4), "cpu")]
    gen = torch.Generator().manual_seed(4)
    fast = list(gathered_batches([x, y, x], train_idx, cfg, gen, chunk_rows=8 * 128))
    assert len(fast) == len(plain) == max(n // 128, 1)
    for idx, (bx, by, bx2) in zip(plain, fast, strict=True):
        assert torch.equal(bx, x[idx]) and torch.equal(by, y[idx]) and torch.equal(bx2, x[idx])


def test_accumulator_means_per_key():
    acc = Accumulator()
    acc.add({"a": torch.tensor(1.0), "b": torch.tensor(2.0, dtype=torch.float64)})
    acc.add({"a": torch.tensor(3.0), "b": torch.tensor(4.0)})
    acc.add({"q": torch.tensor(5.0)})
    assert acc.means("train_") == {"train_a": 2.0, "train_b": 3.0, "train_q": 5.0}
    assert Accumulator().means("x") == {}
    acc.add({})  # nothing to add: no change
    assert acc.means("train_")["train_a"] == 2.0


def _plain_batches(tensors, train_idx, cfg, gen):
    for b in batches(len(train_idx), cfg.batch_size, gen, train_idx.device):
        yield [t[train_idx[b]] for t in tensors]


def _plain_branch_batches(data, train_idx, cfg, gen):
    from indiseek.nn._loops import BranchData

    for b in batches(len(train_idx), cfg.batch_size, gen, train_idx.device):
        idx = train_idx[b]
        yield {
            k: BranchData(d.x[idx], d.c_own[idx], d.c_club[idx], d.x_sq) for k, d in data.items()
        }


def test_step2_loop_is_the_plain_loop(monkeypatch):
    """Both training loops as shipped against batches indexed one tensor at a time."""
    from indiseek.nn import _loops
    from indiseek.nn._modules import IndiSeekModule
    from indiseek.nn._objectives import get_objective

    def run(plain: bool):
        torch.manual_seed(0)
        m = IndiSeekModule({"a": 12, "b": 5}, 4, 3, 16, 3, normalize_z=False)
        x = {"a": torch.randn(700, 12), "b": torch.randn(700, 5)}
        with torch.no_grad():
            c = m.shared(x)
        data = {
            k: _loops.BranchData(x[k], c[k], c[m.other(k)], float((x[k] ** 2).sum(1).mean()))
            for k in x
        }
        cfg = TrainConfig(batch_size=64, progress_bar=False, q_steps=2)
        with monkeypatch.context() as mp:
            if plain:  # index every tensor for every batch, nothing shared with the fast path
                mp.setattr(_loops, "_branch_batches", _plain_branch_batches)
                mp.setattr(_loops, "gathered_batches", _plain_batches)
            clip_hist = _loops.fit_clip(
                m.clip, x["a"], x["b"], torch.arange(600), torch.arange(600, 700), cfg, 3
            )
            hist = _loops.fit_specific_branches(
                m.branches,
                data,
                get_objective("indiseek"),
                10.0,
                torch.arange(600),
                torch.arange(600, 700),
                cfg,
                4,
            )
        return m.state_dict(), hist, clip_hist

    (s1, h1, c1), (s2, h2, c2) = run(False), run(True)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1.equals(h2) and len(h1) == 4 and c1.equals(c2) and len(c1) == 3


def test_workers_share_cores_when_members_do_not_divide_them(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(_ensemble, "available_cores", lambda: 2)
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7) == 3
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**9) == 2  # large inputs: one per core
    assert _ensemble.n_workers(None, cpu, 3, 10_000) == 2  # input size unknown: one per core
    assert _ensemble.n_workers(None, cpu, 5, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 2, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 3, 500, 10**7) == 1  # too short to start workers
    assert _ensemble.n_workers(2, cpu, 3, 10_000, 10**7) == 2
    assert _ensemble.n_workers(-1, cpu, 3, 10_000, 10**7) == 2  # -1: one per core
    assert _ensemble.n_workers(None, cpu, 4, 10_000, 10**7) == 2  # two rounds either way
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7, threads=2) == 2
    monkeypatch.setattr(_ensemble, "available_cores", lambda: 1)
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7) == 1
