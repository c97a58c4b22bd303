"""The one measuring path: spec building, one runner per measurement, file hygiene."""

from __future__ import annotations

import numpy as np
import pytest

from profiler.build import with_protocol
from profiler.devices import load_device
from profiler.measure import Measurer, MeasurerConfig, check_device_space, measure_networks
from profiler.protocol import Measurement
from sgnas.errors import SgnasError
from sgnas.space import get_space

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
SPACE = get_space("tiny")


@pytest.fixture
def device():
    return with_protocol(load_device("cpu"), warmup_ms=1, warmup_min_iters=1, rounds=2,
                         min_iters_per_round=2, min_round_ms=1, canary_every=0)


def test_measurer_measures_entries_and_networks_keeping_one_graph(device, monkeypatch):
    import profiler.measure as pm

    timed = []  # (spec name, input shape, graph on disk while timed) of every runner opened
    real = pm.make_runner

    def spy(dev, spec, **kw):
        timed.append((spec.name, spec.input_shape, spec.onnx_path.exists()))
        return real(dev, spec, **kw)

    monkeypatch.setattr(pm, "make_runner", spy)
    arch = SPACE.sample(np.random.default_rng(0))
    with Measurer(device, SPACE, verify=True) as m:
        a = m.entry_spec(SPACE.stem_key)
        assert m.entry_spec(SPACE.stem_key) is a
        res = m.entry(SPACE.head_key)
        # the head's own graph was timed, with the device's protocol: 2 rounds pooled
        head = m.entry_spec(SPACE.head_key)
        assert timed == [(head.name, head.input_shape, True)] and SPACE.head_key in head.name
        assert isinstance(res, Measurement) and len(res.round_medians) == device.protocol.rounds
        assert res.median_ms == float(np.median(res.round_medians)) and res.n >= 2 * 2
        assert not a.onnx_path.exists()
        net = m.network_spec(arch, "net0")
        assert net.input_shape == (1, 3, SPACE.input_size, SPACE.input_size)
        whole = m.measure(net)
        assert timed[-1] == ("net0", net.input_shape, True)
        assert len(whole.round_medians) == device.protocol.rounds
        pinned = m.entry_spec(SPACE.stem_key, keep=True)
        m.entry_spec(SPACE.head_key)
        assert pinned.onnx_path.exists() and net.onnx_path.exists() is False
    assert not pinned.onnx_path.exists()


def test_measure_networks_checks_the_space(device):
    import dataclasses

    wrong = dataclasses.replace(device, input_size=SPACE.input_size * 2)
    with pytest.raises(SgnasError, match="profiles at input"):
        check_device_space(wrong, SPACE)
    out = measure_networks(device, SPACE, [SPACE.sample(np.random.default_rng(1))])
    assert len(out) == 1 and out[0].median_ms > 0


def test_measurer_takes_a_config_and_its_fields_as_keywords(device, tmp_path):
    cfg = MeasurerConfig(seed=3, verify=True, folder=tmp_path / "graphs")
    with Measurer(device, SPACE, cfg) as m:
        assert m.config is cfg and m.builder.seed == 3 and m.builder.verify
        assert m.entry_spec(SPACE.stem_key).onnx_path.parent == tmp_path / "graphs"
    with Measurer(device, SPACE, cfg, seed=5) as m:  # a keyword overrides the config's field
        assert m.config.seed == 5 and m.config.verify and cfg.seed == 3
    with pytest.raises(TypeError, match="unknown keyword.*colour"):
        Measurer(device, SPACE, colour="red")
