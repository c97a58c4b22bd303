"""How a runner actually ran (its ``info``) is recorded in the LUT's environment."""

import dataclasses

import numpy as np

from profiler import measure as measure_mod
from profiler.backends import base
from profiler.build import BuildConfig, build_lut, with_protocol
from profiler.devices import load_device
from sgnas.lut import load_lut
from sgnas.space import get_space

QUICK = dict(warmup_ms=0.0, warmup_min_iters=1, rounds=1, min_iters_per_round=2, min_round_ms=0.0,
             remeasure=0, canary_every=100)


class BuiltRunner(base.Runner):
    backend = "tensorrt"

    def activate_impl(self):
        self.info.update(onnx=str(self.model.onnx_path), precision="fp32",
                         precision_built="fp32 (strongly typed, TF32 off)", tf32=False)

    def deactivate_impl(self):
        pass

    def time_impl(self, n):
        return np.full(n, 0.1)

    def run_impl(self):
        return np.zeros(1)


def test_precision_built_reaches_the_lut_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(measure_mod, "make_runner", lambda device, spec, cache_dir=None:
                        BuiltRunner(device, spec))
    device = with_protocol(dataclasses.replace(load_device("a100"), precision="fp32"), **QUICK)
    space = get_space("tiny")
    out = tmp_path / "lut.json"
    build_lut(BuildConfig(device, space, out, limit=2, verify=False, canary=False), progress=False)
    runner = load_lut(out, allow_incomplete=True, device=device, space=space).environment["runner"]
    assert runner == {"backend": "tensorrt", "precision": "fp32",
                      "precision_built": "fp32 (strongly typed, TF32 off)", "tf32": False}


def test_per_entry_files_are_left_out():
    from profiler.measure import runner_provenance

    assert runner_provenance({"backend": "x", "onnx": "/tmp/k.onnx"}) == {"backend": "x"}
