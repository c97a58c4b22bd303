"""The wheel serves its own headline commands: built from the sources, installed into a fresh
environment outside the checkout, it finds its device descriptors, LUTs, generators and supernets
as package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the build reads: configuration, the packages and the shipped folders (only the shipped
#: kinds of files, so nothing a user measured into the checkout travels along).
SOURCES = {"pyproject.toml": None, "setup.py": None, "MANIFEST.in": None, "README.md": None,
           "sgnas": "*", "profiler": "*", "devices": "*.yaml", "lut": "*.json",
           "generators": "*.pt", "supernets": "*.pt"}


def _copy_sources(dest: Path) -> None:
    from sgnas.shipped import shipped_names

    for name, pattern in SOURCES.items():
        src = ROOT / name
        if pattern is None:
            shutil.copy2(src, dest / name)
        elif pattern == "*":
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (dest / name).mkdir()
            for file in shipped_names(name, pattern):
                shutil.copy2(src / file, dest / name / file)


def _site_dirs() -> list[str]:
    """This interpreter's site-packages folders (those of its virtual environment, if any)."""
    import site
    import sysconfig

    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
            *site.getsitepackages()]
    out: list[str] = []
    for d in dirs:
        if os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def _run(cmd: list[str], cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_serves_the_headline_commands(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("yaml")
    if not (ROOT / "setup.py").is_file():
        pytest.skip("not a source checkout")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(SGNAS_HOME=str(tmp_path / "home"), PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               OMP_NUM_THREADS="1")
    src = tmp_path / "src"
    src.mkdir()
    _copy_sources(src)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "--wheel-dir", dist, src], tmp_path, env)
    wheel = next(dist.glob("sgnas-*.whl"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bindir / "python"
    # the fresh environment sees this one's torch, numpy, runtimes and pip (after its own
    # site-packages, and without this environment's .pth files, so not an editable checkout)
    own = _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path,
               env).stdout.strip()
    Path(own, "_outer_environment.pth").write_text("\n".join(_site_dirs()) + "\n")
    _run([py, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", wheel], tmp_path,
         env)
    work = tmp_path / "work"  # outside the checkout, no devices/ or lut/ folders here
    work.mkdir()
    env["PATH"] = str(bindir) + os.pathsep + env.get("PATH", "")

    where = _run([py, "-c", "import sgnas, sgnas.shipped as s; print(sgnas.__file__); "
                            "print(s.shipped_file('lut', 'cpu-cifar10.json'))"], work, env)
    module, lut = where.stdout.split()
    assert Path(module).resolve().is_relative_to(venv.resolve()), module
    assert Path(lut).resolve().is_relative_to(venv.resolve()) and "_shipped" in lut, lut

    out = _run([bindir / "sgnas-profile", "--device", "cpu", "--space", "tiny"], work, env)
    built = tmp_path / "home" / "lut" / "cpu-tiny.json"
    assert built.is_file() and f"wrote {built}" in out.stdout
    out = _run([bindir / "sgnas-generate", "--flops-m", "100", "--space", "cifar10"], work, env)
    assert "target 100 MFLOPs: cifar10:" in out.stdout and "_shipped" in out.stdout
    before = Path(lut).read_bytes()
    for name in (lut, "cpu-cifar10"):
        out = _run([bindir / "sgnas-generate", "--latency-ms", "3", "--lut", name], work, env)
        assert "target 3 ms: cifar10:" in out.stdout
    assert f"note: --lut cpu-cifar10 is {lut}" in out.stderr
    assert Path(lut).read_bytes() == before
    assert sorted(p.name for p in work.iterdir()) == []
