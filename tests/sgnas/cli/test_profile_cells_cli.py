"""``sgnas-profile --space nb201``: build + validation, quick mode, bad input."""

import importlib.util
import json

import pytest

from sgnas.cli.main import profile_main
from sgnas.lut import load_lut
from sgnas.nb201.space import Cell
from sgnas.space import get_space

CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"



def _error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1
    return err


def test_quick_mode_from_file_and_bad_lists(tmp_path, quick, capsys):
    refs = tmp_path / "refs.txt"
    refs.write_text(f"# reference cells\n{CELL}\n{Cell((2,) * 6)}\n")
    out = tmp_path / "part.json"
    base = ["--device", str(quick), "--space", "nb201", "--out", str(out)]
    assert profile_main(base + ["--cells", str(refs), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["entries"] == 2 and result["partial"] and not result["complete"]
    lut = load_lut(out, space="nb201", allow_incomplete=True)
    assert lut.build["measured_cells"] == [CELL, str(Cell((2,) * 6))]
    before = out.read_bytes()

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([CELL.replace("nor_conv_1x1~1", "sep_conv~1")]))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# none\n")
    cases = [(["--cells", str(bad), "--force"], "edge 2 (node 2 <- node 1): unknown op 'sep_conv'"),
             (["--cells", str(empty), "--force"], "no cells listed"),
             (["--cells", "0", "--force"], "N >= 1"),
             (["--cells", str(tmp_path / "missing.txt"), "--force"], "neither a number nor a file"),
             (["--cells", "2"], "exists")]
    for extra, msg in cases:
        assert profile_main(base + extra) == 2
        assert msg in _error(capsys)
    assert out.read_bytes() == before


def test_bad_validate_count_refused_before_building(tmp_path, quick, capsys):
    out = tmp_path / "quick-nb201.json"
    assert profile_main(["--device", str(quick), "--space", "nb201", "--out", str(out),
                         "--validate", "3"]) == 2
    assert "too small for a held-out split" in _error(capsys)
    assert not out.exists()


def test_cells_on_a_layer_space_refused(tmp_path, quick, capsys):
    out = tmp_path / "x.json"
    assert profile_main(["--device", str(quick), "--space", "tiny", "--cells", "2",
                         "--out", str(out)]) == 2
    assert "not a cell space" in _error(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_build_validate_and_revalidate(tmp_path, quick, capsys):
    out = tmp_path / "quick-nb201.json"
    base = ["--device", str(quick), "--space", "nb201", "--out", str(out), "--json"]
    assert profile_main(base + ["--validate", "4"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["entries"] == 15625 and result["validation"]["n"] == 4
    lut = load_lut(out, space="nb201")
    assert lut.build["provenance"] == "profiled" and lut.calibration is not None
    # an existing LUT with --validate is validated again, not rebuilt
    created = lut.created
    assert profile_main(base + ["--validate", "4", "--seed", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "entries" not in result and result["validation"]["n"] == 4
    assert load_lut(out).created == created
    if importlib.util.find_spec("matplotlib") is not None:  # the fidelity plot beside the LUT
        assert (tmp_path / "quick-nb201.fidelity.png").stat().st_size > 0
        assert result["validation"]["plot_path"] == str(tmp_path / "quick-nb201.fidelity.png")


@pytest.mark.slow
def test_validating_a_shipped_cell_lut_writes_a_copy(tmp_path, quick, capsys, monkeypatch,
                                                     sgnas_home):
    import sgnas.shipped as shipped

    root = tmp_path / "shipped"
    monkeypatch.setattr(shipped, "shipped_dir", lambda folder: root / folder)
    ship = root / "lut" / "quick-nb201.json"
    assert profile_main(["--device", str(quick), "--space", "nb201", "--out", str(ship),
                         "--validate", "0"]) == 0  # built, not validated (docs/nb201.md)
    capsys.readouterr()
    before = ship.read_bytes()
    assert profile_main(["--device", str(quick), "--space", "nb201", "--validate", "4",
                         "--lut", str(ship)]) == 0
    copy = sgnas_home / "lut" / "quick-nb201.json"
    assert f"wrote {copy}" in capsys.readouterr().out
    assert ship.read_bytes() == before and load_lut(copy).calibration is not None


def test_validate_lut_of_another_space_refused(tmp_path, quick, capsys):
    from sgnas.lut import Lut, save_lut
    from sgnas.space import get_space

    tiny = get_space("tiny")
    other = tmp_path / "tiny.json"
    save_lut(Lut(space="tiny", space_fingerprint=tiny.fingerprint, device={"name": "quick"},
                 complete=False), other)
    before = other.read_bytes()
    assert profile_main(["--device", str(quick), "--space", "nb201", "--validate", "4",
                         "--lut", str(other)]) == 2
    assert "is for space 'tiny', not 'nb201'" in _error(capsys)
    assert other.read_bytes() == before


def test_reference_cells_are_those_of_the_shipped_shared_generator():
    from profiler.pipeline import resolve_cells
    from sgnas.generator import default_generator_dirs
    from sgnas.shared_generator import find_shared_generator, load_shared

    space = get_space("nb201")
    cells = resolve_cells("reference", space)
    shared = load_shared(find_shared_generator(space, default_generator_dirs()))
    assert [str(c) for c in cells] == [str(c) for c in shared.references]
    assert 2 <= len(cells) <= 50 and len({str(c) for c in cells}) == len(cells)


def test_an_existing_cell_lut_is_revalidated_only_when_networks_are_asked_for(tmp_path, quick,
                                                                             capsys):
    """``--validate N`` of an existing --out validates it again; ``--validate 0`` (nothing to
    validate) is a build, which an existing file refuses without --force."""
    out = tmp_path / "quick-nb201.json"
    out.write_text("precious")
    for extra in (["--validate", "0"], ["--no-validate"]):
        assert profile_main(["--device", str(quick), "--space", "nb201", "--out", str(out),
                             *extra]) == 2
        assert "exists; use --resume to continue or --force to overwrite" in _error(capsys)
    assert profile_main(["--device", str(quick), "--space", "nb201", "--out", str(out),
                         "--validate", "4"]) == 2
    assert "corrupt" in _error(capsys)  # read as the LUT to validate, not rebuilt
    assert out.read_text() == "precious"
