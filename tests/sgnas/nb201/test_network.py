import numpy as np
import pytest
import torch

from sgnas.nb201.network import NB201Network, count_flops, count_params
from sgnas.nb201.space import Cell, NB201Space, all_cells

from .conftest import bench_dir_or_skip

SP = NB201Space()
CELL0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def test_cell0_matches_benchmark_cost_info():
    assert count_flops(SP, CELL0) == pytest.approx(15.64737, abs=1e-9)
    assert count_params(SP, CELL0) == pytest.approx(0.129306, abs=1e-9)


@pytest.mark.parametrize("code", [0, 1234, 7812, 15624])
def test_params_match_module(code):
    cell = Cell.from_code(code)
    net = NB201Network(SP, cell)
    n = sum(p.numel() for p in net.parameters())
    assert n == round(count_params(SP, cell) * 1e6)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_flops_match_hooks():
    cell = Cell.parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    net = NB201Network(SP, cell)
    macs = []

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            macs.append(out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1])
        else:
            macs.append(m.in_features * m.out_features + m.out_features)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    net(torch.randn(1, 3, 32, 32))
    assert sum(macs) == round(count_flops(SP, cell) * 1e6)


def test_every_cell_against_benchmark_table():
    folder = bench_dir_or_skip()
    from sgnas.nb201.bench import GROUND_TRUTH, read_cell_table

    t = read_cell_table(folder / GROUND_TRUTH,
                        ["flops_cifar10_M", "params_cifar10_M", "cifar10_valid_acc"])
    t.check_complete()
    flops = np.array([count_flops(SP, c) for c in t.cells])
    params = np.array([count_params(SP, c) for c in t.cells])
    np.testing.assert_allclose(flops, t.columns["flops_cifar10_M"], atol=1e-6)
    np.testing.assert_allclose(params, t.columns["params_cifar10_M"], atol=1e-6)
    assert len({c.code for c in t.cells}) == len(list(all_cells()))
    # cells without a path to the output score chance level in the benchmark
    dead = np.array([not c.is_connected() for c in t.cells])
    assert dead.sum() == 341
    assert np.all(np.abs(t.columns["cifar10_valid_acc"][dead] - 10) < 1.0)
    assert t.columns["cifar10_valid_acc"][~dead].max() > 91
