"""The core imports with numpy and torch alone, and every ``--help`` works without the extras."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

OPTIONAL = (
    "onnx", "onnxruntime", "openvino", "tensorrt", "cuda", "pycuda", "torchvision", "tqdm",
    "yaml", "scipy", "sklearn", "matplotlib", "onnxscript", "PIL",
)

_BLOCKER = textwrap.dedent(
    f"""
    import sys, importlib.abc
    BLOCKED = {OPTIONAL!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked optional dependency: " + name)
            return None
    sys.meta_path.insert(0, Block())
    """
)


def _run_bare(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120,
    )


def test_core_modules_import_without_extras():
    proc = _run_bare(
        """
        import importlib, pkgutil, sgnas
        core = ["sgnas", "sgnas.space", "sgnas.errors", "sgnas.fileio", "sgnas.cli.main"]
        for name in ("blocks", "supernet", "network", "lut", "costs", "generator"):
            if importlib.util.find_spec("sgnas." + name) is not None:
                core.append("sgnas." + name)
        for name in core:
            importlib.import_module(name)
        print("ok", len(core))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok")


def test_every_help_works_without_extras():
    proc = _run_bare(
        """
        import contextlib, io
        from sgnas.cli.main import build_parser, main
        parser = build_parser()
        names = list(parser._subparsers._group_actions[0].choices)
        assert names, "no subcommands registered"
        for argv in [["--help"]] + [[n, "--help"] for n in names]:
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf):
                try:
                    main(argv)
                except SystemExit as exc:
                    assert exc.code == 0, (argv, exc.code)
            assert "usage:" in buf.getvalue(), argv
        print(" ".join(names))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "export" in proc.stdout.split() or proc.stdout.strip(), proc.stdout


@pytest.mark.parametrize("script", ["sgnas", "sgnas-profile", "sgnas-generate"])
def test_console_scripts_are_installed(script):
    import shutil

    if shutil.which(script) is None:
        pytest.skip(f"{script} not on PATH (package not installed with pip)")
    proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_every_module_imports_without_extras():
    proc = _run_bare(
        """
        import importlib, pkgutil, sgnas, profiler
        names = []
        for pkg in (sgnas, profiler):
            names.append(pkg.__name__)
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                if not info.name.endswith(".__main__"):
                    names.append(info.name)
        for name in names:
            importlib.import_module(name)
        print("ok", len(names))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    count = int(proc.stdout.split()[1])
    assert count >= 60, proc.stdout


_ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[1])


@pytest.mark.parametrize("argv, extra", [
    (["profile", "--device", "cpu", "--space", "tiny"], "tools"),
    (["check", "--lut", f"{_ROOT}/lut/cpu.json", "--device", "cpu"], "tools"),
    (["generate", "--latency-ms", "3", "--lut", f"{_ROOT}/lut/cpu-cifar10.json", "--measure"], "tools"),
])
def test_command_needing_an_extra_names_it(tmp_path, argv, extra):
    proc = _run_bare(
        f"""
        import os, sys
        sys.path.insert(0, os.getcwd())
        os.chdir({str(tmp_path)!r})
        from sgnas.cli.main import main
        sys.exit(main({argv!r}))
        """
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert f"sgnas[{extra}]" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_profiling_and_generating_need_no_torchvision(tmp_path):
    """What the README's CPU-only note promises: without torchvision (and Pillow) a device is
    profiled, a cost computed, and architectures generated for FLOPs and for a shipped LUT, and
    measured."""
    blocker = _BLOCKER.replace(repr(OPTIONAL), repr(("torchvision", "PIL")))
    code = blocker + textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, os.getcwd())
        os.environ["SGNAS_HOME"] = {str(tmp_path / "home")!r}
        os.chdir({str(tmp_path)!r})
        from sgnas.cli.main import main
        out = {str(tmp_path / "cpu-tiny.json")!r}
        for argv in (["profile", "--device", "cpu", "--space", "tiny", "--out", out, "--limit",
                      "3", "--no-validate"],
                     ["cost", "--arch", "cifar10:" + "-".join(["35"] * 19), "--lut",
                      "cpu-cifar10"],
                     ["generate", "--flops-m", "100", "--space", "cifar10"],
                     ["generate", "--latency-ms", "3", "--lut", "cpu-cifar10", "--measure"]):
            assert main(argv) == 0, argv
        assert "torchvision" not in sys.modules
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
    assert "now on this machine" in proc.stdout and "reference state" in proc.stdout
    assert (tmp_path / "cpu-tiny.json").is_file()
