import numpy as np
import pytest

from sgnas.errors import SgnasError
from sgnas.nb201.constraint import CellCost, Constraint, oracle, regret
from sgnas.nb201.device_study import device_study
from sgnas.nb201.groundtruth import (CIFAR10_TEST, GroundTruth, connected_mask, latency_devices,
                                     spread_targets)
from sgnas.nb201.space import Cell, all_cells

from .conftest import bench_dir_or_skip
from .synthetic_bench import DEVICES, write_bench


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = write_bench(tmp_path_factory.mktemp("nb201"))
    return folder, GroundTruth.load(folder)


def test_load_synthetic_tables(synth):
    folder, gt = synth
    assert latency_devices(folder) == list(DEVICES) == gt.devices
    assert gt.acc(CIFAR10_TEST).shape == (5,) * 6
    cell = Cell.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert gt.latency["cpu_a"][cell.ops] == pytest.approx(1 + 1.5 * 2 + 0.1, abs=0.011)
    assert gt.flops[cell.ops] > gt.flops[Cell((1,) * 6).ops]
    assert set(gt.scores(cell)) == set(gt.accuracy)
    with pytest.raises(SgnasError, match="no latency for device 'nope'"):
        gt.cost_table("nope")
    with pytest.raises(SgnasError, match="not loaded"):
        GroundTruth.load(folder, [CIFAR10_TEST], devices=()).acc("cifar100_test_acc")


def test_oracle_is_the_best_cell_meeting_the_constraint(synth):
    _, gt = synth
    acc = gt.acc(CIFAR10_TEST)
    con = Constraint(CellCost(gt.latency["gpu_1"], "gpu_1"), 3.0)
    best, value = oracle(acc, con)
    assert con.holds(best) and value == acc[best.ops]
    brute = max((acc[c.ops], c.code) for c in all_cells() if gt.latency["gpu_1"][c.ops] <= 3.0)
    assert (value, best.code) == (brute[0], brute[1])
    assert regret(acc, con, best) == 0.0
    worse = Cell((1,) * 6)
    assert con.holds(worse) and regret(acc, con, worse) > 0
    top, top_value = oracle(acc)  # unconstrained
    assert top_value == acc.max() >= value
    assert not Constraint(CellCost(gt.latency["gpu_1"]), 0.5).mask().any()
    with pytest.raises(SgnasError, match="no cell meets gpu_1 <= 0.5"):
        oracle(acc, Constraint(CellCost(gt.latency["gpu_1"], "gpu_1"), 0.5))
    with pytest.raises(SgnasError, match="shape"):
        CellCost(np.zeros(5))


def test_spread_targets_are_quantiles_of_connected_cells(synth):
    _, gt = synth
    table = gt.latency["phone"]
    targets = spread_targets(table)
    assert len(targets) == 5 and targets == sorted(targets) and targets[0] < targets[-1]
    conn = table[connected_mask()]
    for q, t in zip((0.1, 0.3, 0.5, 0.7, 0.9), targets):
        assert t in conn  # an actual cell's cost
        assert abs(np.mean(conn <= t) - q) < 0.01
    assert connected_mask().sum() == 15625 - 341
    with pytest.raises(SgnasError, match="quantile"):
        spread_targets(table, [1.5])


def test_device_study_matrices(synth):
    _, gt = synth
    study = device_study(gt, list(DEVICES), 0.3)
    for d in DEVICES:
        assert study["regret"][d][d] == 0.0 and not study["violates"][d][d]
        assert study["oracle"][d]["latency_ms"] <= study["budget"][d]
        assert sum(study["oracle"][d]["ops"].values()) == 6
    for a in DEVICES:
        for b in DEVICES:
            if not study["violates"][a][b]:
                assert study["regret"][a][b] >= 0
            assert study["violates"][a][b] == (study["latency_ratio"][a][b] > 1)
    with pytest.raises(SgnasError, match="at least two"):
        device_study(gt, ["gpu_1"])


def test_bad_tables_are_one_line_errors(tmp_path, synth):
    folder, _ = synth
    with pytest.raises(SgnasError, match="not found"):
        GroundTruth.load(tmp_path / "absent")
    with pytest.raises(SgnasError, match="no column .bogus."):
        GroundTruth.load(folder, ["bogus"], devices=())
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "nb201.csv").write_text((folder / "nb201.csv").read_text())
    lines = (folder / "latency.csv").read_text().splitlines()
    fields = lines[5].split(",")
    fields[2] = "n/a"
    lines[5] = ",".join(fields)
    (bad / "latency.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SgnasError, match=r"line 6 .*'n/a' in column 'gpu_1_ms'"):
        GroundTruth.load(bad)
    (bad / "latency.csv").write_text("\n".join(lines[:100]) + "\n")
    with pytest.raises(SgnasError, match="cells missing"):
        GroundTruth.load(bad, devices=["cpu_a"])


def test_real_ground_truth():
    folder = bench_dir_or_skip()
    gt = GroundTruth.load(folder)
    assert len(gt.devices) == 23 and "raspi4" in gt.devices and "eyeriss" in gt.devices
    best, value = oracle(gt.acc(CIFAR10_TEST))
    # two cells (benchmark indices 6111 and 13714) tie at the optimum; ties go to the lower code
    assert value == pytest.approx(94.3733, abs=1e-4)
    assert str(best) == ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                         "nor_conv_1x1~1|nor_conv_3x3~2|")
    for d in gt.devices:
        t = spread_targets(gt.latency[d])
        assert t == sorted(t) and t[0] < t[-1], d
    con = Constraint(CellCost(gt.latency["raspi4"], "raspi4"), spread_targets(gt.latency["raspi4"])[0])
    cell, acc = oracle(gt.acc(CIFAR10_TEST), con)
    assert con.holds(cell) and acc < value
