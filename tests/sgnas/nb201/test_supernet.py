import numpy as np
import pytest
import torch

from sgnas.errors import ArchitectureError
from sgnas.nb201.space import Cell, NB201Space
from sgnas.nb201.supernet import NB201Supernet, sample_cells

CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


@pytest.fixture(scope="module")
def model(randomize_bn_module):
    torch.manual_seed(0)
    return randomize_bn_module(NB201Supernet()).eval()


@pytest.fixture(scope="module")
def randomize_bn_module():
    from tests.sgnas.conftest import _randomize_bn

    return _randomize_bn


def test_single_path_equals_exported_network(model):
    x = torch.randn(2, 3, 32, 32)
    cell = Cell.parse(CELL)
    net = model.export(cell).eval()
    with torch.no_grad():
        a, b = model(x, cell), net(x)
        c = model(x, CELL)
        d = model(x, np.array(cell.ops))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    torch.testing.assert_close(a, d)


def test_weighted_forward_one_hot_is_single_path_and_differentiable(model):
    x = torch.randn(2, 3, 32, 32)
    cell = Cell.parse(CELL)
    probs = torch.nn.functional.one_hot(torch.tensor(cell.ops), 5).float()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_weighted(x, probs), model(x, cell))
    logits = torch.randn(6, 5, requires_grad=True)
    out = model.forward_weighted(x, logits.softmax(-1))
    out.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    per_cell = probs.expand(15, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_weighted(x, per_cell), model(x, cell))
    with pytest.raises(ArchitectureError, match="shape"):
        model.forward_weighted(x, torch.ones(6, 4))


def test_all_none_cell_outputs_bias_only(model):
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        out = model(x, (0,) * 6)
    torch.testing.assert_close(out, out[:1].expand_as(out))


def test_only_sampled_ops_get_gradients():
    m = NB201Supernet()
    # every edge on a path to the output (node 2 feeds node 3)
    cell = Cell.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|"
                      "nor_conv_3x3~1|nor_conv_1x1~2|")
    m(torch.randn(2, 3, 32, 32), cell).sum().backward()
    cell0 = m.cells[0]
    for e, op in enumerate(cell.ops):
        for slot, mod in enumerate(cell0.edges[e]):
            grads = [p.grad for p in mod.parameters()]
            if slot == op:
                assert all(g is not None for g in grads)
            else:
                assert all(g is None for g in grads)


def test_sample_cells_distinct():
    cells = sample_cells(NB201Space(), 300, np.random.default_rng(0))
    assert len({c.code for c in cells}) == 300
