import numpy as np
import pytest

from sgnas.errors import ArchitectureError
from sgnas.nb201.space import NUM_CELLS, OPS, Cell, NB201Space, all_cells
from sgnas.space import get_space

CELL0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def test_registered():
    sp = get_space("nb201")
    assert isinstance(sp, NB201Space) and sp.num_cells == NUM_CELLS == 15625
    assert sp.ops == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    assert len(sp.fingerprint) == 16


def test_round_trip_string_and_code():
    c = Cell.parse(CELL0)
    assert str(c) == CELL0
    assert c.op_names[0] == "avg_pool_3x3" and c.op_names[5] == "skip_connect"
    assert Cell.from_code(c.code) == c
    cells = list(all_cells())
    assert [x.code for x in cells] == list(range(NUM_CELLS))
    rng = np.random.default_rng(0)
    for code in rng.integers(0, NUM_CELLS, 50):
        x = Cell.from_code(int(code))
        assert Cell.parse(str(x)) == x


@pytest.mark.parametrize("text, msg", [
    ("|avg_pool_3x3~0|+|nor_conv_1x1~0|conv_5x5~1|+|none~0|none~1|none~2|", "edge 2 (node 2 <- node 1): unknown op 'conv_5x5'"),
    ("|none~0|+|none~0|none~1|+|none~0|none~2|none~2|", "edge 4 (node 3 <- node 1)"),
    ("|none~0|+|none~0|none~1|", "want 3 nodes"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2: needs 2 input edge(s)"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 0 (node 1 <- node 0)"),
])
def test_parse_errors_name_edge_and_op(text, msg):
    with pytest.raises(ArchitectureError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        Cell.parse(text)


def test_cell_validation():
    with pytest.raises(ArchitectureError, match="edge 3"):
        Cell((0, 0, 0, 7, 0, 0))
    with pytest.raises(ArchitectureError, match="6 edges"):
        Cell((0, 0))


def test_sampling_uniform_and_connectivity():
    sp = NB201Space()
    rng = np.random.default_rng(0)
    draws = np.stack([sp.sample_choices(rng) for _ in range(2000)])
    assert draws.shape == (2000, 6)
    counts = np.stack([np.bincount(draws[:, e], minlength=5) for e in range(6)])
    assert counts.min() > 300
    assert not Cell.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|").is_connected()
    assert not Cell.parse("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|skip_connect~1|skip_connect~2|").is_connected()
    assert Cell.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|").is_connected()
    assert Cell.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|").is_connected()
    assert sum(not c.is_connected() for c in all_cells()) == 341  # 15,625 - 15,284 connected
    assert set(OPS) == set(sp.ops)
