import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from sgnas.cli.main import main
from sgnas.lut import EntryStats, Lut, save_lut
from sgnas.space import get_space

SPACE = get_space("tiny")


def fast_device(tmp_path, name="cpu", threads=1):
    """A CPU descriptor named ``name`` with a short protocol, so real measurements stay quick."""
    data = {"name": name, "description": "test", "kind": "cpu", "backend": "onnxruntime",
            "precision": "fp32", "batch_size": 1, "threads": threads, "pin_threads": False,
            "protocol": {"warmup_ms": 2, "warmup_min_iters": 2, "rounds": 3, "min_iters_per_round": 5,
                         "min_round_ms": 2, "remeasure": 0, "canary_every": 0}}
    folder = tmp_path / "devices"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def write_lut(path, device_yaml, ms, space=SPACE, environment=None):
    """A LUT of ``ms`` per entry, recorded on this host unless ``environment`` is given."""
    from profiler.devices import load_device
    from profiler.environment import collect_environment

    device = load_device(device_yaml).to_dict() if isinstance(device_yaml, str) else device_yaml
    entries = {k: EntryStats(ms, ms, ms, 10, 0.01) for k in space.all_keys()}
    lut = Lut(space=space.name, space_fingerprint=space.fingerprint, device=device, entries=entries,
              complete=True, input_size=space.input_size,
              environment=collect_environment() if environment is None else environment)
    save_lut(lut, path)
    return str(path)


def conv_onnx(path, widths=(4,)):
    """A chain of 3x3 convs on a 1x3x8x8 input; wider chains are much slower."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x, c_in = [], [], "x", 3
    for i, c in enumerate(widths):
        w = numpy_helper.from_array(np.full((c, c_in, 3, 3), 0.01, np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"y{i}"], pads=[1, 1, 1, 1]))
        x, c_in = f"y{i}", c
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    Path(path).write_bytes(model.SerializeToString())
    return str(path)


def snapshot(path):
    st = os.stat(path)
    return Path(path).read_bytes(), st.st_mtime_ns


#: Small checks; the machine's other load is not judged (these test the mechanics on a shared
#: machine, not its noise).
QUICK = ["--sample", "3", "--networks", "1", "--remeasure", "0", "--max-neighbour-load", "999",
         "--state-limit", "900%"]


# ------------------------------------------------------------------- LUT mode
def test_lut_check_within_tolerance_exits_0_and_writes_reports(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1000.0)  # far slower than anything measured
    rc = main(["check", "--lut", lut, "--device", dev, *QUICK, "--json", str(tmp_path / "r.json"),
               "--junit", str(tmp_path / "r.xml")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "improved" in out and out.rstrip().splitlines()[-1].startswith("PASS")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] and len(data["results"]) == 4
    assert data["noise"]["canary_drift"] is not None
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert root.get("failures") == "0" and root.get("tests") == "5"


def test_lut_check_regression_exits_1(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1e-6)  # far faster than anything measured
    rc = main(["check", "--lut", lut, "--device", dev, *QUICK, "--no-canary",
               "--junit", str(tmp_path / "r.xml")])
    captured = capsys.readouterr()
    assert rc == 1
    assert "latency regression" in captured.err
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    failed = [c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None]
    # 3 entries and the global shift fail; the network of an unvalidated LUT is reported only
    assert len(failed) == 4 and "global-shift" in failed and "network-0" not in failed
    assert suite.get("failures") == "4"


def test_lut_of_another_device_exits_2(tmp_path, capsys):
    lut = write_lut(tmp_path / "lut.json", fast_device(tmp_path, "cpu"), ms=1.0)
    other = fast_device(tmp_path, "cpu-2t", threads=2)
    rc = main(["check", "--lut", lut, "--device", other, *QUICK, "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "recorded on device 'cpu'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.json").exists()


def test_lut_of_another_space_exits_2(tmp_path, capsys):
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1.0)
    data = json.loads(Path(lut).read_text())
    data["space_fingerprint"] = "0" * 16
    Path(lut).write_text(json.dumps(data))
    assert main(["check", "--lut", lut, "--device", dev]) == 2
    assert "space" in capsys.readouterr().err


def test_missing_runtime_exits_2(tmp_path, capsys, monkeypatch):
    from profiler.backends import base

    import dataclasses

    entry = dataclasses.replace(base.BACKENDS.get("onnxruntime"), runtime="no_such_runtime_xyz")
    monkeypatch.setitem(base.BACKENDS._entries, "onnxruntime", entry)
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1.0)
    assert main(["check", "--lut", lut, "--device", dev, *QUICK]) == 2
    assert "pip install 'sgnas[onnxruntime]'" in capsys.readouterr().err


def test_gpu_device_without_gpu_or_tensorrt_exits_2(tmp_path, capsys):
    from profiler.devices import load_device

    lut = write_lut(tmp_path / "lut.json", load_device("h100").to_dict(), ms=1.0)
    assert main(["check", "--lut", lut, "--device", "h100", *QUICK]) == 2
    err = capsys.readouterr().err
    assert "GPU" in err or "tensorrt" in err


@pytest.mark.parametrize("tol", ["abc", "-5%", "1000%", "0.1"])
def test_bad_tolerance_exits_2(tmp_path, capsys, tol):
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1.0)
    assert main(["check", "--lut", lut, "--device", dev, f"--tolerance={tol}"]) == 2
    assert "tolerance" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path, capsys):
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1.0)
    assert main(["check", "--lut", lut, "--device", dev, "--update"]) == 2
    assert main(["check", "--lut", str(tmp_path / "none.json"), "--device", dev]) == 2
    assert main(["check", "--onnx", conv_onnx(tmp_path / "m.onnx"), "--device", dev]) == 2
    assert main(["check", "--lut", lut, "--device", "no-such-device"]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["check", "--device", dev])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "applies to --onnx" in err and "not found" in err and "--baseline" in err


# ------------------------------------------------------------------ ONNX mode
def test_onnx_update_unchanged_and_slowdown(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    dev = fast_device(tmp_path)
    small = conv_onnx(tmp_path / "small.onnx", widths=(4,))
    heavy = conv_onnx(tmp_path / "heavy.onnx", widths=(256, 256, 256))
    base = str(tmp_path / "latency.json")
    assert main(["check", "--onnx", small, "--device", dev, "--baseline", base, "--update"]) == 0
    data = json.loads(Path(base).read_text())
    assert data["model"]["input_shape"] == [1, 3, 8, 8] and data["measurement"]["median_ms"] > 0
    assert data["device"]["name"] == "cpu" and data["environment"]
    # unchanged: a generous floor and no neighbour limit, so a busy shared machine cannot fail
    # (or abstain on) the mechanics under test
    assert main(["check", "--onnx", small, "--device", dev, "--baseline", base,
                 "--tolerance", "300%", "--max-tolerance", "300%", "--max-neighbour-load", "999",
                 "--runtime-tolerance", "300%", "--state-limit", "900%"]) == 0
    # a model ~1000x heavier with the same input is a regression at any sane tolerance
    rc = main(["check", "--onnx", heavy, "--device", dev, "--baseline", base, "--allow-model-change",
               "--tolerance", "300%", "--max-tolerance", "300%", "--remeasure", "1",
               "--runtime-tolerance", "300%", "--max-neighbour-load", "999", "--state-limit", "900%",
               "--junit", str(tmp_path / "r.xml")])
    assert rc == 1
    assert ET.parse(tmp_path / "r.xml").getroot().get("failures") == "1"
    assert "model changed" in capsys.readouterr().out


def test_onnx_errors_exit_2_and_leave_the_baseline_untouched(tmp_path, capsys):
    from profiler.baseline import write_baseline
    from profiler.devices import load_device
    from profiler.protocol import Measurement

    dev = fast_device(tmp_path)
    model = conv_onnx(tmp_path / "m.onnx")
    other = conv_onnx(tmp_path / "o.onnx", widths=(8,))
    base = tmp_path / "latency.json"
    m = Measurement(1.0, 0.9, 1.1, 30, 0.02, [1.0, 1.0, 1.0], False)
    write_baseline(base, model, load_device(dev), m, (1, 3, 8, 8))
    before = snapshot(base)
    other_dev = fast_device(tmp_path, "cpu-2t", threads=2)
    out_json = tmp_path / "r.json"
    runs = {
        "other model": ["--onnx", other, "--device", dev, "--baseline", str(base)],
        "other device": ["--onnx", model, "--device", other_dev, "--baseline", str(base)],
        "update other device": ["--onnx", model, "--device", other_dev, "--baseline", str(base), "--update"],
        "bad tolerance": ["--onnx", model, "--device", dev, "--baseline", str(base), "--update",
                          "--tolerance", "abc"],
        "missing model": ["--onnx", str(tmp_path / "none.onnx"), "--device", dev, "--baseline",
                          str(base), "--update"],
        "bad shape": ["--onnx", model, "--device", dev, "--baseline", str(base), "--update",
                      "--input-shape", "1xax3"],
        "report over baseline": ["--onnx", model, "--device", dev, "--baseline", str(base),
                                 "--json", str(base)],
    }
    for what, argv in runs.items():
        assert main(["check", *argv, "--json", str(out_json)] if "--json" not in argv else
                    ["check", *argv]) == 2, what
        assert snapshot(base) == before, what
        assert not out_json.exists(), what
    err = capsys.readouterr().err
    assert "another model" in err and "--allow-model-change" in err
    assert "recorded on device 'cpu'" in err and "not found" in err


def test_onnx_missing_or_corrupt_baseline_exits_2(tmp_path, capsys):
    dev = fast_device(tmp_path)
    model = conv_onnx(tmp_path / "m.onnx")
    assert main(["check", "--onnx", model, "--device", dev, "--baseline", str(tmp_path / "b.json")]) == 2
    assert "--update" in capsys.readouterr().err
    corrupt = tmp_path / "c.json"
    corrupt.write_text('{"schema_version": 1, "kind": "sgnas-latency-')
    before = snapshot(corrupt)
    assert main(["check", "--onnx", model, "--device", dev, "--baseline", str(corrupt)]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert snapshot(corrupt) == before


def test_a_baseline_copy_that_is_not_its_model_exits_2_and_writes_nothing(tmp_path, capsys):
    from profiler.check import CheckConfig, update_baseline
    from profiler.devices import load_device
    from profiler.protocol import Measurement

    dev = fast_device(tmp_path)
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "latency.json"
    update_baseline(model, load_device(dev), base, CheckConfig(baseline_runs=1),
                    measure_fn=lambda t: Measurement(1.0, 0.9, 1.1, 30, 0.02, [1.0] * 3, False))
    conv_onnx(tmp_path / "latency.model" / "m.onnx", widths=(8,))  # the copy no longer matches
    before = snapshot(base)
    report = tmp_path / "r.xml"
    assert main(["check", "--onnx", model, "--device", dev, "--baseline", str(base),
                 "--junit", str(report)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sha256 differs" in err[0] and "--update" in err[0]
    assert snapshot(base) == before and not report.exists()
    assert main(["check", "--lut", str(base), "--device", dev, "--no-model-copy"]) == 2
    assert "--no-model-copy applies to --onnx" in capsys.readouterr().err


# ------------------------------------------------------- another host, bad report paths
def test_lut_of_another_host_is_inconclusive_exit_3(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from profiler.environment import collect_environment

    dev = fast_device(tmp_path)
    env = {**collect_environment(), "machine_id": "another-machine"}
    lut = write_lut(tmp_path / "lut.json", dev, ms=1e-6, environment=env)  # would "regress"
    rc = main(["check", "--lut", lut, "--device", dev, *QUICK, "--junit", str(tmp_path / "r.xml")])
    captured = capsys.readouterr()
    assert rc == 3
    [line] = captured.err.strip().splitlines()
    assert line.startswith("inconclusive:") and "another host" in line and "sgnas-profile" in line
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("skipped") == "1" and suite.get("failures") == "0"
    # the shipped kind of LUT, which records no machine id, is no baseline either
    old = write_lut(tmp_path / "old.json", dev, ms=1.0,
                    environment={k: v for k, v in env.items() if k != "machine_id"})
    assert main(["check", "--lut", old, "--device", dev, *QUICK]) == 3
    assert "does not record which machine" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--junit", "--json"])
def test_report_in_a_missing_folder_exits_2_before_measuring(tmp_path, capsys, flag):
    dev = fast_device(tmp_path)
    lut = write_lut(tmp_path / "lut.json", dev, ms=1.0)
    target = tmp_path / "no" / "such" / "r.xml"
    assert main(["check", "--lut", lut, "--device", dev, flag, str(target)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "does not exist" in line and str(target.parent) in line
    assert not target.parent.exists()
    model = conv_onnx(tmp_path / "m.onnx")
    base = tmp_path / "b.json"
    assert main(["check", "--onnx", model, "--device", dev, "--baseline", str(base), "--update",
                 flag, str(target)]) == 2
    assert not base.exists()  # nothing measured, nothing written


def test_update_into_a_missing_folder_or_over_a_corrupt_baseline_exits_2(tmp_path, capsys):
    dev = fast_device(tmp_path)
    model = conv_onnx(tmp_path / "m.onnx")
    assert main(["check", "--onnx", model, "--device", dev, "--update", "--baseline",
                 str(tmp_path / "none" / "b.json")]) == 2
    corrupt = tmp_path / "c.json"
    corrupt.write_text('{"schema_version": 1, "kind": "sgnas-latency-')
    before = snapshot(corrupt)
    assert main(["check", "--onnx", model, "--device", dev, "--update", "--baseline",
                 str(corrupt)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "does not exist" in err[0] and "not overwritten" in err[1]
    assert snapshot(corrupt) == before


def test_corrupt_lut_exits_2_and_reports_are_not_written(tmp_path, capsys):
    dev = fast_device(tmp_path)
    lut = tmp_path / "lut.json"
    lut.write_text('{"schema_version": 1, "space": "tiny", "entr')
    out = tmp_path / "r.xml"
    out.write_text("previous report")
    assert main(["check", "--lut", str(lut), "--device", dev, "--junit", str(out)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(lut) in line
    assert out.read_text() == "previous report"
