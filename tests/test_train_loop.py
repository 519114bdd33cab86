"""The training loop's fast paths are the plain ones: same cells, same updates, same sums."""

import pytest
import torch

from indiseek.model import _ensemble
from indiseek.nn._loops import gathered_batches
from indiseek.nn._train_utils import Accumulator, AdamStep, TrainConfig, adam, batches


@pytest.mark.parametrize("n", [1000, 100, 128 * 40 + 7])
def test_gathered_batches_are_the_drawn_cells(n):
    cfg = TrainConfig(batch_size=128)
    x = torch.randn(3 * n, 5)
    y = torch.randn(3 * n, 2)
    train_idx = torch.randperm(3 * n)[:n]
    plain = [train_idx[b] for b in batches(n, 128, torch.Generator().manual_seed(4), "cpu")]
    fast = list(gathered_batches([x, y, x], train_idx, cfg, torch.Generator().manual_seed(4), 8))
    assert len(fast) == len(plain) == max(n // 128, 1)
    for idx, (bx, by, bx2) in zip(plain, fast, strict=True):
        assert torch.equal(bx, x[idx]) and torch.equal(by, y[idx]) and torch.equal(bx2, x[idx])


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_step_is_torch_adam_bit_for_bit(dtype):
    nets = [_net().to(dtype), _net().to(dtype)]
    cfg = TrainConfig(lr=1e-2, weight_decay=1e-3)
    opts = [adam(list(n.parameters()), cfg) for n in nets]
    steps = [opts[0].step, AdamStep(opts[1])]
    gen = torch.Generator().manual_seed(1)
    for i in range(6):
        x = torch.randn(16, 6, generator=gen, dtype=dtype)
        for net, opt, step in zip(nets, opts, steps, strict=True):
            opt.zero_grad(set_to_none=True)
            # step 2: only the last layer has a gradient (as q-only steps leave the rest)
            out = net[2](net[1](net[0](x)).detach()) if i == 2 else net(x)
            out.pow(2).mean().backward()
            step()
    assert steps[1]._lists is not None  # the direct path ran
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(opts[0].state.values(), opts[1].state.values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_accumulator_means_per_key():
    acc = Accumulator()
    acc.add({"a": torch.tensor(1.0), "b": torch.tensor(2.0, dtype=torch.float64)})
    acc.add({"a": torch.tensor(3.0), "b": torch.tensor(4.0)})
    acc.add({"q": torch.tensor(5.0)})
    assert acc.means("train_") == {"train_a": 2.0, "train_b": 3.0, "train_q": 5.0}
    assert Accumulator().means("x") == {}


def test_workers_share_cores_when_members_do_not_divide_them(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(_ensemble, "available_cores", lambda: 2)
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7) == 3
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**9) == 2  # large inputs: one per core
    assert _ensemble.n_workers(None, cpu, 5, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 2, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 3, 500, 10**7) == 1  # too short to start workers
    assert _ensemble.n_workers(2, cpu, 3, 10_000, 10**7) == 2
    monkeypatch.setattr(_ensemble, "available_cores", lambda: 1)
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7) == 1
