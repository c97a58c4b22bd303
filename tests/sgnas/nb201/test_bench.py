import pytest

from sgnas.errors import SgnasError
from sgnas.nb201.bench import BenchmarkIndex, read_cell_table
from sgnas.nb201.space import Cell, all_cells

from .conftest import bench_dir_or_skip

CELL0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


def write_table(path, cells, values, column="dev_ms", index=True):
    lines = [("index," if index else "") + f"arch_str,{column}"]
    for i, (c, v) in enumerate(zip(cells, values)):
        lines.append((f"{i}," if index else "") + f"{c},{v}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_benchmark_index_official_order():
    idx = BenchmarkIndex.load(bench_dir_or_skip())
    assert len(idx) == 15625
    assert str(idx.cell(0)) == CELL0 and idx.index(CELL0) == 0
    assert idx.index(BEST) == 6111
    for i in (1, 777, 15624):
        assert idx.index(idx.cell(i)) == i
    # not the enumeration order of the ops
    assert [idx.cell(i).code for i in range(5)] != list(range(5))


def test_small_table_round_trip(tmp_path):
    cells = list(all_cells())
    path = write_table(tmp_path / "t.csv", cells, [c.code * 0.5 for c in cells])
    t = read_cell_table(path, ["dev_ms"])
    t.check_complete()
    grid = t.by_code("dev_ms")
    c = Cell.parse(BEST)
    assert grid[tuple(c.ops)] == pytest.approx(c.code * 0.5)


def test_table_errors(tmp_path):
    cells = list(all_cells())[:3]
    path = write_table(tmp_path / "t.csv", cells, [1.0, "abc", 2.0])
    with pytest.raises(SgnasError, match=r"line 3 .*'abc' in column 'dev_ms' is not a finite"):
        read_cell_table(path, ["dev_ms"])
    with pytest.raises(SgnasError, match="no column 'other'"):
        read_cell_table(path, ["other"])
    with pytest.raises(SgnasError, match="table not found"):
        read_cell_table(tmp_path / "nope.csv", ["dev_ms"])
    bad = tmp_path / "b.csv"
    bad.write_text("arch_str,dev_ms\ncifar10:357-33,1.0\n")
    with pytest.raises(SgnasError, match="a table of space 'cifar10', not 'nb201'"):
        read_cell_table(bad, ["dev_ms"])
    bad.write_text("arch_str,dev_ms\n|none~0|+|none~0|conv~1|+|none~0|none~1|none~2|,1.0\n")
    with pytest.raises(SgnasError, match="line 2: .* edge 2 .* unknown op 'conv'"):
        read_cell_table(bad, ["dev_ms"])
    dup = write_table(tmp_path / "d.csv", [cells[0], cells[1], cells[0]], [1, 2, 3])
    with pytest.raises(SgnasError, match="appears twice \\(rows 2 and 4\\)"):
        read_cell_table(dup, ["dev_ms"]).check_complete()
    with pytest.raises(SgnasError, match="15622 of 15625 cells missing"):
        read_cell_table(path.with_name("t.csv"), []).check_complete()
