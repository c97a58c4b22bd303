"""The import layers of pyproject.toml hold and no import cycle exists, lazy imports included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CYCLE_TOOL = next((p for p in (ROOT.parent / "shared" / "tools" / "import_cycles.py",
                               ROOT.parent.parent / "shared" / "tools" / "import_cycles.py")
                   if p.is_file()), ROOT / "missing")


def test_import_contracts_kept():
    pytest.importorskip("importlinter")
    exe = shutil.which("lint-imports")
    cmd = [exe] if exe else [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    proc = subprocess.run(cmd + ["--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "broken" in proc.stdout and " 0 broken" in proc.stdout


@pytest.mark.parametrize("module, line, broken", [
    ("sgnas/lut.py", "from .cli import main", "sgnas.lut -> sgnas.cli"),  # upward
    ("sgnas/space.py", "from .network import build_network", "sgnas.space -> sgnas.network"),
    ("profiler/lock.py", "from sgnas.train import run", "profiler.lock -> sgnas.train.run"),  # sibling
    ("sgnas/search/result.py", "from ..train import run", "sgnas.search.result -> sgnas.train.run"),
])
def test_contract_catches_a_forbidden_import(tmp_path, module, line, broken):
    """The contract is not vacuous: an upward import, or one between independent siblings, breaks it."""
    pytest.importorskip("importlinter")
    for pkg in ("sgnas", "profiler"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as f:
        f.write(f"\n\ndef _forbidden():\n    {line}  # noqa: F401\n")
    proc = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
                           "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode != 0
    assert broken in proc.stdout


@pytest.mark.skipif(not CYCLE_TOOL.is_file(), reason="import cycle tool not present")
def test_no_import_cycles():
    proc = subprocess.run([sys.executable, str(CYCLE_TOOL), str(ROOT)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 import cycles" in proc.stdout


def test_every_module_belongs_to_a_layer():
    """A new module must be placed in the contract, or the contract would not check it."""
    tomllib = pytest.importorskip("tomllib")
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    missing = []
    for pkg, contract in (("sgnas", contracts[0]), ("profiler", contracts[1])):
        layers = [m.strip() for layer in contract["layers"] for m in layer.replace("|", ":").split(":")]
        for path in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if name.endswith("__init__") or name == "sgnas.__main__":
                continue
            if not any(name == layer or name.startswith(layer + ".") for layer in layers):
                missing.append(name)
    assert not missing, f"modules in no layer of the import contract: {missing}"
