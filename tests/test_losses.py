import math

import pytest
import torch

from indiseek.nn import club_bound, club_sampled, gaussian_loglik, info_nce, mlp, orthogonality
from indiseek.nn._modules import GaussianCLUB


def test_mlp_layers():
    net = mlp(6, 4, n_hidden=50, n_layers=5)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 5
    assert linears[0].in_features == 6 and linears[-1].out_features == 4
    assert not isinstance(net[-1], torch.nn.ReLU)
    with pytest.raises(ValueError):
        mlp(3, 3, n_layers=0)


def test_info_nce_known_values():
    torch.manual_seed(0)
    b = 64
    # identical, well-separated pairs at a low temperature: loss near 0
    a = torch.eye(b)
    assert info_nce(a, a, 0.05).item() < 1e-3
    # independent pairs: about log(batch)
    vals = [info_nce(torch.randn(b, 32), torch.randn(b, 32), 1.0).item() for _ in range(20)]
    assert abs(sum(vals) / len(vals) - math.log(b)) < 0.1


def _brute_club(z, mu, logvar):
    pos = gaussian_loglik(z, mu, logvar).mean()
    neg = torch.stack(
        [gaussian_loglik(z[j].expand_as(z), mu, logvar) for j in range(len(z))]
    ).mean()
    return pos - neg


def test_club_all_pairs_matches_brute_force():
    torch.manual_seed(1)
    z, mu, logvar = torch.randn(40, 5), torch.randn(40, 5), 0.3 * torch.randn(40, 5)
    assert torch.allclose(club_bound(z, mu, logvar), _brute_club(z, mu, logvar), atol=1e-4)


def _held_out_club(z, c, steps=300):
    """Fit q on one half by maximum likelihood, estimate CLUB on the other half."""
    torch.manual_seed(0)
    n = len(z) // 2
    q = GaussianCLUB(c.shape[1], z.shape[1], 32, 3)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    for _ in range(steps):
        mu, logvar = q(c[:n])
        loss = -gaussian_loglik(z[:n], mu, logvar).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mu, logvar = q(c[n:])
    return (
        club_bound(z[n:], mu, logvar).item(),
        club_sampled(z[n:], mu, logvar, torch.Generator().manual_seed(0)).item(),
    )


def test_club_independent_vs_dependent():
    g = torch.Generator().manual_seed(0)
    c = torch.randn(4000, 2, generator=g)
    z_ind = torch.randn(4000, 2, generator=g)
    z_dep = torch.stack([c[:, 0] ** 2, torch.sin(2 * c[:, 1])], 1) + 0.1 * torch.randn(
        4000, 2, generator=g
    )
    est_ind, _ = _held_out_club(z_ind, c)
    est_dep, sampled = _held_out_club(z_dep, c)
    assert abs(est_ind) < 0.1
    assert est_dep > 1.0
    assert sampled > 1.0


def test_logvar_is_bounded():
    q = GaussianCLUB(2, 3, 8, 2, logvar_bound=4.0)
    with torch.no_grad():
        for p in q.logvar.parameters():
            p.fill_(100.0)
        _, lv = q(torch.ones(5, 2))
    assert torch.all(lv <= 4.0) and torch.all(torch.isfinite(lv))


def test_orthogonality():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert orthogonality(z, torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])).item() > 0
    assert orthogonality(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0]])).item() == pytest.approx(
        1.0
    )
    assert orthogonality(z, c).item() == pytest.approx(math.sqrt(2))
