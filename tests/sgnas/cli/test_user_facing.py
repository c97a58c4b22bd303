"""What a new user meets: shipped files are read-only, LUT names resolve, misuse gets one line."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import sgnas.shipped as shipped
from sgnas.cli.main import main, profile_main
from sgnas.errors import SgnasError
from sgnas.lut import EntryStats, Lut, load_lut, save_lut
from sgnas.space import get_space

ROOT = Path(__file__).resolve().parents[3]
TINY = get_space("tiny")
TINY_ARCH = "tiny:" + "-".join(["35"] * TINY.num_layers)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err and "usage:" not in err
    return lines[0]


def tiny_lut(path: Path, device: str = "cpu", scale: float = 1.0, **build) -> Lut:
    rng = np.random.default_rng(0)
    entries = {}
    for k in TINY.all_keys():
        v = float(rng.uniform(0.05, 0.5)) * scale
        entries[k] = EntryStats(v, v, v, 5, 0.0)
    lut = Lut(TINY.name, TINY.fingerprint, {"name": device, "backend": "onnxruntime"}, entries,
              complete=True, build=dict(build))
    save_lut(lut, path)
    return lut


@pytest.fixture
def fake_shipped(tmp_path, monkeypatch):
    """The shipped folders moved to a temporary place (so a test may try to overwrite them)."""
    root = tmp_path / "shipped"
    for folder in shipped.FOLDERS:
        (root / folder).mkdir(parents=True)
    monkeypatch.setattr(shipped, "shipped_dir", lambda folder: root / folder)
    return root


# ------------------------------------------------------------------ shipped files
def test_the_wheel_layout_and_the_checkout_both_find_the_shipped_files():
    assert (shipped.shipped_dir("devices") / "cpu.yaml").is_file()
    assert shipped.shipped_file("lut", "cpu-cifar10.json") is not None
    assert "cifar10-spos.pt" in shipped.shipped_names("supernets", "*.pt")
    assert any(n.startswith("cifar10-latency-") for n in shipped.shipped_names("generators"))
    assert shipped.is_shipped(shipped.shipped_dir("lut") / "cpu-cifar10.json")
    assert not shipped.is_shipped(shipped.shipped_dir("lut") / "not-there.json")
    with pytest.raises(ValueError):
        shipped.shipped_dir("runs")


def test_lut_names_resolve_to_the_users_then_the_shipped_lut(tmp_path, monkeypatch, sgnas_home):
    monkeypatch.chdir(tmp_path)
    ship = shipped.shipped_dir("lut") / "cpu-cifar10.json"
    assert shipped.find_lut("cpu-cifar10") == ship
    assert shipped.find_lut("lut/cpu-cifar10.json") == ship  # outside the checkout
    assert shipped.find_lut("no-such-lut") is None
    mine = sgnas_home / "lut" / "cpu-cifar10.json"
    mine.parent.mkdir(parents=True)
    mine.write_text("{}")
    assert shipped.find_lut("cpu-cifar10") == mine
    assert shipped.find_lut("lut/cpu-cifar10.json") == ship
    (tmp_path / "here.json").write_text("{}")
    assert shipped.find_lut("here.json") == Path("here.json")


def test_profile_never_writes_a_shipped_lut(capsys, tmp_path):
    ship = shipped.shipped_dir("lut") / "cpu-cifar10.json"
    before = ship.read_bytes()
    for extra in (["--resume"], ["--force"], []):
        assert profile_main(["--device", "cpu", "--space", "cifar10", "--out", str(ship),
                             *extra]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert str(ship) in line and "shipped" in line
    assert ship.read_bytes() == before


def test_default_build_goes_to_the_per_user_folder_and_says_so(capsys, quick, sgnas_home,
                                                               tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert profile_main(["--device", str(quick), "--space", "tiny", "--limit", "2",
                         "--no-validate"]) == 0
    out = sgnas_home / "lut" / "quick-tiny.json"
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out
    assert not (tmp_path / "lut").exists()


def test_validating_a_shipped_lut_writes_a_calibrated_copy(capsys, quick, fake_shipped,
                                                           sgnas_home):
    from profiler.build import new_lut
    from profiler.devices import load_device

    ship = fake_shipped / "lut" / "quick-tiny.json"
    lut = new_lut(load_device(str(quick)), TINY, {})
    lut.entries = {k: EntryStats(0.01, 0.01, 0.01, 5, 0.0) for k in TINY.all_keys()}
    lut.complete = True
    save_lut(lut, ship)
    before = ship.read_bytes()
    assert profile_main(["--device", str(quick), "--space", "tiny", "--validate", "4",
                         "--lut", str(ship), "--json"]) == 0
    out = capsys.readouterr()
    copy = sgnas_home / "lut" / "quick-tiny.json"
    assert ship.read_bytes() == before
    assert json.loads(out.out)["lut"] == str(copy) and f"written to {copy}" in out.err
    assert load_lut(copy).calibration is not None
    # the copy exists now: replacing it needs --force
    assert profile_main(["--device", str(quick), "--space", "tiny", "--validate", "4",
                         "--lut", str(ship)]) == 2
    assert "--force" in one_error_line(capsys.readouterr().err)
    assert ship.read_bytes() == before


def test_resume_and_force_are_exclusive_and_resume_needs_its_file(capsys, quick, tmp_path):
    out = tmp_path / "lut.json"
    with pytest.raises(SystemExit) as exc:
        profile_main(["--device", str(quick), "--space", "tiny", "--out", str(out), "--resume",
                      "--force"])
    assert exc.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--force" in line and "--resume" in line and "sgnas-profile" in line
    assert profile_main(["--device", str(quick), "--space", "tiny", "--out", str(out),
                         "--resume"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(out) in line and "does not exist" in line
    assert not out.exists()


def test_profile_help_lists_nb201_and_the_output_folder(capsys):
    with pytest.raises(SystemExit):
        profile_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "nb201" in text and "SGNAS_HOME" in text and "created" in text


# ------------------------------------------------------------------ argument errors
@pytest.mark.parametrize("argv", [
    ["profile"],
    ["profile", "--device", "cpu", "--validate", "many"],
    ["generate", "--flops-m", "-3"],
    ["cost"],
    ["cost", "--arch", "x", "--bogus"],
    ["export", "--arch", "x"],
    ["no-such-command"],
])
def test_argument_errors_are_one_line_without_the_usage_block(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--help" in line


# ------------------------------------------------------------------ --arch
@pytest.fixture
def binary_file(tmp_path) -> Path:
    path = tmp_path / "weights.pt"
    path.write_bytes(bytes(range(256)) * 4)
    return path


@pytest.mark.parametrize("command", [
    ["cost"], ["export", "--out", "m.onnx"], ["train", "--data", "."],
])
def test_binary_arch_file_is_one_line(capsys, binary_file, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    assert main([command[0], "--arch", str(binary_file), *command[1:]]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(binary_file) in line and "binary" in line and "expected" in line
    assert not (tmp_path / "m.onnx").exists()


def test_a_text_file_that_is_no_architecture_names_the_file_and_the_form(capsys):
    readme = str(ROOT / "README.md")
    assert main(["cost", "--arch", readme]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert readme in line and "not an architecture file" in line and "space:357-33-" in line


@pytest.mark.parametrize("arch", ['{"space": "nb201", "layers": [[3, 3]]}', "nb201:33-33"])
def test_an_nb201_arch_in_the_unified_form_says_what_nb201_takes(capsys, arch, tmp_path):
    assert main(["train", "--arch", arch, "--data", str(tmp_path)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "got Architecture" not in line and "nb201" in line and "|op~0|" in line


# ------------------------------------------------------------------ LUT values
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.25])
def test_lut_with_a_non_finite_or_negative_entry_is_refused(capsys, tmp_path, value):
    path = tmp_path / "bad.json"
    lut = tiny_lut(path)
    key = sorted(lut.entries)[3]
    data = json.loads(path.read_text())
    data["entries"][key]["median_ms"] = value
    path.write_text(json.dumps(data))
    with pytest.raises(SgnasError) as err:
        load_lut(path)
    text = str(err.value)
    assert str(path) in text and key in text and "median_ms" in text
    assert (repr(value) in text) or (math.isnan(value) and "nan" in text)
    for argv in (["cost", "--arch", TINY_ARCH, "--lut", str(path)],
                 ["generate", "--latency-ms", "1", "--lut", str(path)]):
        assert main(argv) == 2
        assert key in one_error_line(capsys.readouterr().err)


def test_lut_with_a_non_finite_calibration_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    tiny_lut(path)
    data = json.loads(path.read_text())
    data["calibration"] = {"method": "linear", "slope": float("nan"), "intercept": 0.0}
    path.write_text(json.dumps(data))
    with pytest.raises(SgnasError, match="calibration: slope is nan"):
        load_lut(path)


# ------------------------------------------------------------------ generate
def _generator(path: Path, cost) -> Path:
    import torch

    from sgnas.generator import (ArchitectureGenerator, GeneratorBundle, GeneratorConfig,
                                 make_prior_pool, save_generator, target_interval)

    interval = target_interval(cost)
    pool = make_prior_pool(TINY, cost, 3, np.random.default_rng(0), interval, steps=50)
    gen = ArchitectureGenerator(TINY, GeneratorConfig(num_priors=3),
                                generator=torch.Generator().manual_seed(0))
    save_generator(path, GeneratorBundle(TINY, gen, pool, cost.describe(), interval))
    return path


def test_interval_follows_the_lut_served_not_the_one_trained_on(capsys, tmp_path, monkeypatch):
    """The same device profiled on a slower machine: same LUT fingerprint, other numbers."""
    from sgnas.costs import LatencyCost
    from sgnas.generator import load_generator, target_interval

    monkeypatch.chdir(tmp_path)
    here = tiny_lut(tmp_path / "here.json")
    there = tiny_lut(tmp_path / "there.json", scale=1.6)
    assert here.fingerprint == there.fingerprint
    gen = _generator(tmp_path / "gen.pt", LatencyCost(here, TINY))
    bundle = load_generator(gen)
    c_there = LatencyCost(load_lut(tmp_path / "there.json"), TINY)
    lo, hi = target_interval(c_there)
    assert bundle.interval_for(c_there) == pytest.approx((lo, hi))
    assert bundle.interval_for(LatencyCost(load_lut(tmp_path / "here.json"), TINY)) == \
        pytest.approx(bundle.interval)
    target = round(lo + 0.9 * (hi - lo), 4)
    assert target > bundle.interval[1]  # outside the interval of the LUT trained on
    assert main(["generate", "--latency-ms", str(target), "--lut", str(tmp_path / "there.json"),
                 "--generator", str(gen), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["results"][0]
    assert target * 0.99 <= r["cost"] <= target


def test_generate_out_prints_the_paths_it_wrote(capsys, tmp_path, monkeypatch):
    from sgnas.costs import FlopsCost
    from sgnas.generator import target_interval

    monkeypatch.chdir(tmp_path)
    cost = FlopsCost(TINY)
    gen = _generator(tmp_path / "flops.pt", cost)
    lo, hi = target_interval(cost)
    t = round((lo + hi) / 2, 2)
    assert main(["generate", "--flops-m", str(t), "--generator", str(gen), "--out",
                 str(tmp_path / "new" / "archs")]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "new" / "archs" / f"arch-{t:g}mflops.json"
    assert written.is_file() and f"wrote {written}" in out


def test_measure_on_an_imported_table_says_what_it_is(capsys, tmp_path, monkeypatch):
    from sgnas.costs import LatencyCost

    monkeypatch.chdir(tmp_path)
    lut = tiny_lut(tmp_path / "gold.json", device="gold_6226", provenance="imported")
    gen = _generator(tmp_path / "gen.pt", LatencyCost(lut, TINY))
    assert main(["generate", "--latency-ms", "1", "--lut", str(tmp_path / "gold.json"),
                 "--generator", str(gen), "--measure"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "imported" in line and "gold_6226" in line and "unknown device" not in line


def test_measure_reports_absolute_lut_state_and_speed_factor(capsys, tmp_path, monkeypatch):
    from sgnas.search import generation
    from sgnas.costs import LatencyCost
    from sgnas.generator import target_interval

    monkeypatch.chdir(tmp_path)
    lut = tiny_lut(tmp_path / "lut.json")
    cost = LatencyCost(lut, TINY)
    gen = _generator(tmp_path / "gen.pt", cost)
    lo, hi = target_interval(cost)
    t = round((lo + hi) / 2, 4)

    def fake(space, lut, archs, force=False, note=None):
        rows = [{"measured_ms": t, "absolute_ms": 1.3 * t, "speed_factor": 1.3} for _ in archs]
        return rows, {"speed_factor": 1.3, "probe_factor": 1.25}

    monkeypatch.setattr(generation, "measure_generated", fake)
    assert main(["generate", "--latency-ms", str(t), "--lut", str(tmp_path / "lut.json"),
                 "--generator", str(gen), "--measure"]) == 0
    out = capsys.readouterr().out
    assert f"measured {1.3 * t:.3f} ms now on this machine; {t:.3f} ms in the LUT's reference " \
           f"state" in out
    assert "1.30x" in out and "probe 1.25x" in out
    assert main(["generate", "--latency-ms", str(t), "--lut", str(tmp_path / "lut.json"),
                 "--generator", str(gen), "--measure", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["machine"] == {"speed_factor": 1.3, "probe_factor": 1.25}
    assert d["results"][0]["measured_absolute_ms"] == pytest.approx(1.3 * t)


def test_measure_generated_divides_the_absolute_time_by_the_lut_state(monkeypatch, tmp_path):
    """With a state-normalized LUT the speed factor is absolute now / LUT state; the measurement
    holds the device's profile lock."""
    import types

    import profiler.devices
    import profiler.measure as pm
    from profiler.protocol import Measurement
    from sgnas.search.generation import measure_generated

    class Last:
        entry_median_ms = 5.2

    class FakeMeasurer:
        def __init__(self, *a, **kw):
            self.normalized, self.last = True, Last()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def network(self, arch, name):
            held.append((tmp_path / "cpu.lock").read_text())  # the lock names its holder
            return Measurement(median_ms=4.0, p10_ms=4.0, p90_ms=4.0, n=3, spread=0.0,
                               round_medians=[4.0], noisy=False)

        def probe(self, chain=None):
            return {"ms": 0.2, "size": 160, "chain": chain}

    held: list[str] = []
    monkeypatch.setattr(pm, "Measurer", FakeMeasurer)
    monkeypatch.setattr(pm, "lut_device", lambda lut: types.SimpleNamespace(name="cpu"))
    monkeypatch.setenv("SGNAS_LOCK_DIR", str(tmp_path))
    monkeypatch.setattr(pm, "lut_measurer_args", lambda lut: {})
    monkeypatch.setattr(pm, "check_device_space", lambda d, s: None)
    monkeypatch.setattr(profiler.devices, "check_host", lambda d, force=False: None)
    lut = Lut("tiny", TINY.fingerprint, {"name": "cpu"},
              reference={"probe": {"ms": 0.16, "size": 160, "chain": 2}})
    rows, machine = measure_generated(TINY, lut, [TINY.sample(np.random.default_rng(0))])
    assert rows == [{"measured_ms": 4.0, "absolute_ms": 5.2, "speed_factor": pytest.approx(1.3)}]
    assert machine["speed_factor"] == pytest.approx(1.3)
    assert machine["probe_factor"] == pytest.approx(0.2 / 0.16)
    assert len(held) == 1 and "sgnas-generate --measure" in held[0]
    assert (tmp_path / "cpu.lock").read_text() == ""  # released cleanly


def test_lut_import_never_overwrites_a_shipped_lut(capsys):
    from sgnas.cli.main import main
    from sgnas.shipped import shipped_file

    shipped = shipped_file("lut", "cpu-nb201.json") or shipped_file("lut", "cpu-cifar10.json")
    before = shipped.read_bytes()
    code = main(["lut", "import", "--csv", "no-such.csv", "--column", "x_ms", "--space", "nb201",
                 "--device", "x", "--out", str(shipped), "--force"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "shipped with sgnas" in err[0]
    assert shipped.read_bytes() == before
