"""The registries of search spaces and backends: self-registration, duplicates, unknown names."""

from __future__ import annotations

import pytest

from profiler.backends.base import BACKENDS
from profiler.devices import DeviceDescriptor, register_backend
from sgnas.errors import SgnasError
from sgnas.registry import Registry
from sgnas.space import SPACES, SearchSpace, get_space


@pytest.mark.parametrize("registry, name", [(SPACES, "tiny"), (BACKENDS, "onnxruntime")])
def test_registries_reject_duplicates_and_list_known_names(registry, name):
    entry = registry.get(name)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(name, entry)
    with pytest.raises(SgnasError, match=rf"unknown {registry.kind} 'nope'; known: .*{name}"):
        registry.get("nope")


@pytest.mark.parametrize("name", SPACES.names())
def test_every_registered_space_builds(name):
    space = get_space(name)
    assert space.name == name and get_space(name) is space
    assert isinstance(space.fingerprint, str) and len(space.all_keys()) > 0
    assert isinstance(space, SearchSpace) or name == "nb201"  # the cell space has its own class


@pytest.mark.parametrize("name", BACKENDS.names())
def test_every_registered_backend_declares_its_kinds(name):
    backend = BACKENDS.get(name)
    assert backend.name == name and callable(backend.runner) and backend.extra
    assert backend.kinds and set(backend.kinds) <= {"cpu", "gpu"}


def test_descriptors_accept_exactly_the_registered_backends():
    """One list of backends: registering one makes it a valid descriptor backend for its kinds."""
    def make(backend, kind="cpu"):
        return DeviceDescriptor(name="x", description="", kind=kind, backend=backend,
                                precision="fp32", batch_size=1, threads=1)

    assert make("onnxruntime").backend == "onnxruntime"
    with pytest.raises(SgnasError, match="backend must be one of .*onnxruntime"):
        make("fake_rt")
    register_backend("fake_rt", "fake_rt", "fake", lambda *a, **k: None, kinds=("gpu",))
    try:
        with pytest.raises(SgnasError, match="does not run on kind cpu"):
            make("fake_rt")
        assert make("fake_rt", kind="gpu").backend == "fake_rt"
    finally:
        BACKENDS.unregister("fake_rt")
    with pytest.raises(ValueError, match="kinds must be among"):
        register_backend("bad_rt", "bad", "bad", lambda *a, **k: None, kinds=("tpu",))


def test_registry_discovers_the_modules_of_its_package(tmp_path, monkeypatch):
    pkg = tmp_path / "plugins_xyz"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "extra.py").write_text("from tests_registry_target import REG\nREG.register('b', 2)\n")
    (tmp_path / "tests_registry_target.py").write_text(
        "from sgnas.registry import Registry\nREG = Registry('thing', discover='plugins_xyz')\n"
        "REG.register('a', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_target as target

    assert target.REG.get("a") == 1 and "b" in target.REG and target.REG.names() == ["a", "b"]
    reg: Registry[int] = Registry("thing")
    with pytest.raises(SgnasError, match=r"known: \(none\)"):
        reg.get("x")
