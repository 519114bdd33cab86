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
    gen = torch.Generator().manual_seed(4)
    fast = list(gathered_batches([x, y, x], train_idx, cfg, gen, chunk_rows=8 * 128))
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


def _adam_pair(opt_class=torch.optim.Adam, **kw):
    nets = [_net(), _net()]
    opts = [opt_class(list(n.parameters()), lr=1e-2, fused=True, **kw) for n in nets]
    return nets, opts


def _loss_step(net, opt, step, x, last_only=False, extra=None):
    opt.zero_grad(set_to_none=True)
    out = net[2](net[1](net[0](x)).detach()) if last_only else net(x)
    out.pow(2).mean().backward()
    if extra is not None:
        extra.grad = torch.full((3,), 0.5)
    step()


def _same(nets, opts):
    return all(
        torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True)
    ) and all(
        torch.equal(a[k], b[k])
        for a, b in zip(opts[0].state.values(), opts[1].state.values(), strict=True)
        for k in a
    )


@pytest.mark.parametrize("case", ["adamw", "load_state", "param_group", "hook", "q_only"])
def test_adam_step_falls_back_or_follows_the_optimiser(case):
    """Whatever AdamStep does not cover, or state it did not create, still updates as Adam."""
    import copy

    cls = torch.optim.AdamW if case == "adamw" else torch.optim.Adam
    nets, opts = _adam_pair(cls, weight_decay=1e-2)
    steps = [opts[0].step, AdamStep(opts[1])]
    gen = torch.Generator().manual_seed(2)
    extra = [torch.nn.Parameter(torch.ones(3)) for _ in range(2)]
    calls: list[int] = []
    for i in range(6):
        x = torch.randn(16, 6, generator=gen)
        if i == 3 and case == "load_state":
            for o in opts:
                o.load_state_dict(copy.deepcopy(o.state_dict()))
        if i == 3 and case == "param_group":
            for o, p in zip(opts, extra, strict=True):
                o.add_param_group({"params": [p]})
        if i == 3 and case == "hook":
            opts[1].register_step_post_hook(lambda *a: calls.append(1))
        for net, opt, step, p in zip(nets, opts, steps, extra, strict=True):
            p = p if case == "param_group" and i >= 3 else None
            _loss_step(net, opt, step, x, last_only=case == "q_only" and i % 2 == 1, extra=p)
    assert _same(nets, opts)
    if case == "param_group":
        assert torch.equal(extra[0], extra[1]) and not torch.equal(extra[1], torch.ones(3))
    if case == "hook":
        assert len(calls) == 3
    if case in ("load_state", "q_only"):
        assert steps[1]._cache is not None  # the direct path ran


def test_step2_loop_is_the_plain_loop(monkeypatch):
    """The shipped step-2 loop against batches indexed one at a time and Adam's own step."""
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
            if plain:
                mp.setattr(_loops, "AdamStep", lambda opt: opt.step)
                orig = _loops.gathered_batches
                mp.setattr(
                    _loops, "gathered_batches", lambda *a, **k: orig(*a, **{**k, "chunk_rows": 1})
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
        return m.state_dict(), hist

    (s1, h1), (s2, h2) = run(False), run(True)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert h1.equals(h2) and len(h1) == 4


def test_workers_share_cores_when_members_do_not_divide_them(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(_ensemble, "available_cores", lambda: 2)
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7) == 3
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**9) == 2  # large inputs: one per core
    assert _ensemble.n_workers(None, cpu, 5, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 2, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 3, 500, 10**7) == 1  # too short to start workers
    assert _ensemble.n_workers(2, cpu, 3, 10_000, 10**7) == 2
    assert _ensemble.n_workers(None, cpu, 4, 10_000, 10**7) == 2  # two rounds either way
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7, threads=2) == 2
    monkeypatch.setattr(_ensemble, "available_cores", lambda: 1)
    assert _ensemble.n_workers(None, cpu, 3, 10_000, 10**7) == 1
