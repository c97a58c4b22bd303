import itertools

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError
from sgnas.nb201.cost import cell_cost, expected_cost, flops_table, params_table
from sgnas.nb201.network import count_flops, count_params
from sgnas.nb201.space import Cell, NB201Space, all_cells

SP = NB201Space()


def _hooked_macs(net: torch.nn.Module) -> int:
    macs = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            macs.append(out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1])
        else:
            macs.append(m.in_features * m.out_features + m.out_features)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.randn(1, 3, 32, 32))
    return sum(macs)


def test_tables_match_the_built_networks():
    """Each table entry is the cost of the network actually built for that cell (counted on the
    module: parameters by numel, multiply-adds by forward hooks), at the cell's own position."""
    from sgnas.nb201.network import NB201Network

    f, p = flops_table(SP), params_table(SP)
    assert f.shape == p.shape == (5,) * 6
    rng = np.random.default_rng(0)
    for code in rng.integers(0, 15625, 6):
        c = Cell.from_code(int(code))
        net = NB201Network(SP, c)
        assert cell_cost(p, c) * 1e6 == pytest.approx(sum(x.numel() for x in net.parameters()), abs=0.5)
        assert cell_cost(f, c) * 1e6 == pytest.approx(_hooked_macs(net), abs=0.5)
        assert cell_cost(f, c) == pytest.approx(count_flops(SP, c))
        assert cell_cost(p, c) == pytest.approx(count_params(SP, c))
    assert f.min() == pytest.approx(7.78305) and f.max() == pytest.approx(220.11969)


def test_expected_cost_is_exact_sum_over_cells():
    rng = np.random.default_rng(1)
    table = rng.random((5,) * 6) * 10  # not additive over edges
    probs = torch.tensor(rng.dirichlet(np.ones(5), size=6), dtype=torch.float64)
    brute = 0.0
    for ops in itertools.product(range(5), repeat=6):
        pr = np.prod([probs[e, o].item() for e, o in enumerate(ops)])
        brute += pr * table[ops]
    assert expected_cost(table, probs).item() == pytest.approx(brute, rel=1e-10)
    one_hot = torch.nn.functional.one_hot(torch.tensor([3, 1, 0, 4, 2, 2]), 5).double()
    assert expected_cost(table, one_hot).item() == pytest.approx(table[3, 1, 0, 4, 2, 2])
    batch = torch.stack([probs, one_hot])
    out = expected_cost(table, batch)
    assert out.shape == (2,) and out[1].item() == pytest.approx(table[3, 1, 0, 4, 2, 2])


def test_expected_cost_gradient():
    table = torch.as_tensor(flops_table(SP))
    logits = torch.zeros(6, 5, dtype=torch.float64, requires_grad=True)
    expected_cost(table, logits.softmax(-1)).backward()
    # raising the conv3x3 probability of any edge raises the expected FLOPs most
    assert torch.all(logits.grad.argmax(1) == 3)


def test_expected_cost_shape_errors():
    with pytest.raises(SgnasError, match="shape"):
        expected_cost(np.zeros((5,) * 5), torch.ones(6, 5))
    with pytest.raises(SgnasError, match="shape"):
        expected_cost(np.zeros((5,) * 6), torch.ones(5, 5))


def test_all_cells_cover_table():
    assert sum(1 for _ in all_cells()) == flops_table(SP).size
