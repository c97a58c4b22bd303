"""Per-cell LUTs of the NB201 space: piece graphs, composition, build, validation, quick mode."""

import json

import numpy as np
import pytest

from profiler import cell_graphs, cells, graphs
from profiler.build import with_protocol
from profiler.devices import load_device
from sgnas.errors import SgnasError
from sgnas.lut import load_lut
from sgnas.nb201.cost import TABLE_SHAPE, lut_table
from sgnas.nb201.space import OPS, Cell, NB201Space

SPACE = NB201Space()
QUICK = dict(warmup_ms=0.0, warmup_min_iters=1, rounds=1, min_iters_per_round=2, min_round_ms=0.0,
             remeasure=0, canary_every=100)
#: Node 2 has only ``none`` inputs (the zero op), node 3 sums three edges.
ZERO_NODE = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"


@pytest.fixture
def device():
    return with_protocol(load_device("cpu"), **QUICK)


def test_piece_graphs_match_torch():
    specs = cell_graphs.piece_specs(SPACE)
    assert {"overhead", "stem", "reduce1", "reduce2", "head", "s2_add"} <= set(specs)
    assert sum(p.kind == "op" for p in specs.values()) == 3 * len(OPS)
    assert specs["s1_op_nor_conv_3x3"].input_shape == (1, 32, 16, 16)
    assert specs["reduce2"].input_shape == (1, 32, 16, 16)
    for p in specs.values():
        module = cell_graphs.piece_module(SPACE, p, seed=1)
        assert graphs.check_against_torch(module, cell_graphs.piece_graph(SPACE, p, module),
                                          p.input_shape) < 1e-4


@pytest.mark.slow
def test_network_graph_matches_torch():
    net = cell_graphs.network_module(SPACE, ZERO_NODE, seed=2)
    model = cell_graphs.network_graph(SPACE, net)
    assert graphs.check_against_torch(net, model, (1, 3, 32, 32)) < 1e-4


def _terms(value=1.0):
    return {name: value for name in cell_graphs.piece_specs(SPACE)}


def test_compose_table_counts_edges_adds_and_zero_nodes():
    terms = {name: 0.0 for name in cell_graphs.piece_specs(SPACE)}
    terms.update(overhead=0.5, stem=1.0, reduce1=2.0, reduce2=3.0, head=4.0)
    for s, w in enumerate((100.0, 10.0, 1.0)):
        terms.update({f"s{s}_op_nor_conv_3x3": 9 * w, f"s{s}_op_nor_conv_1x1": w,
                      f"s{s}_op_avg_pool_3x3": 0.5 * w, f"s{s}_add": 0.25 * w,
                      f"s{s}_op_none": 0.125 * w})
    table = cells.compose_table(SPACE, terms).reshape(TABLE_SHAPE)
    fixed = 10.5
    # conv3x3 + conv1x1 + pool, two adds at node 3, one zero node (node 2)
    per = 9 + 1 + 0.5 + 2 * 0.25 + 0.125
    want = fixed + 5 * 111.0 * per
    assert table[tuple(Cell.parse(ZERO_NODE).ops)] == pytest.approx(want)
    assert table[(0,) * 6] == pytest.approx(fixed + 5 * 111.0 * 0.125)  # zero op merged: once
    assert table[(1,) * 6] == pytest.approx(fixed + 5 * 111.0 * 3 * 0.25)  # skips: adds only
    # pools of one source node are merged: 3 pools from node 0, 2 from node 1, 1 from node 2
    assert table[(4,) * 6] == pytest.approx(fixed + 5 * 111.0 * (3 * 0.5 + 3 * 0.25))


def test_net_terms_subtract_identity_of_the_same_shape():
    raw = _terms(1.0)
    raw.update(overhead=0.2, s0_op_skip_connect=0.3, s0_op_nor_conv_3x3=1.3, stem=0.1)
    t = cells.net_terms(SPACE, raw)
    assert t["overhead"] == 0.2 and t["s0_op_nor_conv_3x3"] == pytest.approx(1.0)
    assert t["stem"] == 0.0  # clipped at zero
    assert t["s0_op_skip_connect"] == 0.0


def test_spread_cells():
    table = np.arange(15625.0)[::-1]
    picked = cells.spread_cells(table, 5)
    assert [table[c.code] for c in picked] == [0.0, 3906.0, 7812.0, 11718.0, 15624.0]


def test_read_cell_list_formats_and_errors():
    two = [ZERO_NODE, str(Cell((3,) * 6))]
    assert cells.read_cell_list("\n".join(["# refs", two[0], "", two[1]]), SPACE) == \
        [Cell.parse(s) for s in two]
    assert cells.read_cell_list(json.dumps(two), SPACE)[1] == Cell((3,) * 6)
    bad = ZERO_NODE.replace("avg_pool_3x3~2", "conv_5x5~2")
    with pytest.raises(SgnasError, match=r"item 2: edge 5 \(node 3 <- node 2\): unknown op 'conv_5x5'"):
        cells.read_cell_list(f"{two[0]}\n{bad}\n", SPACE, where="refs.txt")
    with pytest.raises(SgnasError, match="no cells"):
        cells.read_cell_list("# nothing\n", SPACE)
    with pytest.raises(SgnasError, match="no cells"):
        cells.read_cell_list("[]", SPACE)


def test_other_space_refused(tmp_path, device):
    from sgnas.space import get_space

    with pytest.raises(SgnasError, match="not a cell space"):
        cells.build_cell_lut(device, get_space("tiny"), tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_build_and_quick_mode(tmp_path, device):
    out = tmp_path / "cpu-nb201.json"
    lut = cells.build_cell_lut(device, SPACE, out, verify=False)
    assert lut.complete and len(lut.entries) == SPACE.num_cells
    assert lut.build["provenance"] == "profiled" and lut.build["granularity"] == "cell"
    terms = lut.build["decomposition"]["terms_ms"]
    assert set(terms) == set(cell_graphs.piece_specs(SPACE))
    table = lut_table(load_lut(out, space="nb201"))
    assert table.shape == TABLE_SHAPE and np.all(table > 0)
    # three 3x3 convs per node cost more than skips everywhere
    assert table[(3,) * 6] > table[(1,) * 6]
    with pytest.raises(SgnasError, match="exists"):
        cells.build_cell_lut(device, SPACE, out)

    part = tmp_path / "part.json"
    with pytest.raises(SgnasError, match="empty"):
        cells.measure_cells(device, SPACE, [], part)
    with pytest.raises(SgnasError, match="more than once"):
        cells.measure_cells(device, SPACE, [Cell((1,) * 6)] * 2, part)
    assert not part.exists()
    lut = cells.measure_cells(device, SPACE, [Cell((3,) * 6), Cell((1,) * 6)], part)
    assert not lut.complete and lut.build["partial"]
    assert lut.build["measured_cells"] == [str(Cell((3,) * 6)), str(Cell((1,) * 6))]
    loaded = load_lut(part, space="nb201", allow_incomplete=True)
    assert loaded.latency_ms(str(Cell((3,) * 6))) > loaded.latency_ms(str(Cell((1,) * 6)))
    with pytest.raises(SgnasError, match="no entry"):
        lut_table(loaded)


@pytest.mark.slow
def test_validate_sets_calibration(tmp_path, device):
    out = tmp_path / "cpu-nb201.json"
    lut = cells.build_cell_lut(device, SPACE, out, verify=False)
    report = cells.validate_cell_lut(lut, device, SPACE, 4)
    assert report.n == 4 and report.n_fit == 2 and len(report.measured_ms) == 4
    assert lut.calibration is not None and lut.calibration.n_fit == 2
    assert report.predicted_raw_ms == sorted(report.predicted_raw_ms)
    assert {"mape", "within_5pct", "within_10pct", "kendall_tau", "spearman"} <= set(report.raw)
    # the one set of metric keys, as a layer LUT's validation writes them
    assert {"heldout_calibrated_mape", "heldout_kendall_tau", "heldout_thirds", "networks",
            "range_ms"} <= set(lut.calibration.metrics)


def test_build_is_state_normalized_and_resumable(tmp_path, device):
    """Pieces are timed against the reference piece (each keeps its ratio; the table is stated in
    the build's reference state), checkpointed one by one, and a stopped build resumes where it
    stopped: the pieces already measured are not measured again."""
    out = tmp_path / "cpu-nb201.json"
    names = list(cell_graphs.piece_specs(SPACE))
    seen = []

    def stop_after_three(name, done, total):
        seen.append(name)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cells.build_cell_lut(device, SPACE, out, verify=False, on_piece=stop_after_three)
    partial = load_lut(out, space="nb201", allow_incomplete=True)
    assert not partial.complete and list(partial.build["pieces"]) == names[:3]
    assert partial.reference["model"] == cells.cell_reference(SPACE).name
    with pytest.raises(SgnasError, match="--resume"):
        cells.build_cell_lut(device, SPACE, out, verify=False)
    rest = []
    lut = cells.build_cell_lut(device, SPACE, out, resume=True, verify=False,
                               on_piece=lambda name, done, total: rest.append(name))
    assert rest == names[3:]
    assert lut.complete and len(lut.entries) == SPACE.num_cells and lut.normalized
    pieces = lut.build["decomposition"]["pieces"]
    assert set(pieces) == set(names) and all(p["ratio"] > 0 for p in pieces.values())
    # every piece stated in the one final reference state: median = ratio x state
    state = lut.reference["state_ms"]
    raw = {n: pieces[n]["ratio"] * state for n in names}
    assert lut.build["decomposition"]["terms_ms"] == pytest.approx(cells.net_terms(SPACE, raw))
    assert len(lut.build["runs"]) == 1 and "pieces" not in lut.build


def test_absolute_build_records_the_canary(tmp_path, device):
    lut = cells.build_cell_lut(device, SPACE, tmp_path / "abs.json", verify=False, normalize=False)
    assert not lut.normalized and lut.build["protocol"] == "absolute"
    assert lut.drift["canary_key"] == cells.CANARY_PIECE and len(lut.drift["canary_medians_ms"]) == 2
