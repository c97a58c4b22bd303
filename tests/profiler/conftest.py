import pytest

from profiler.build import with_protocol
from profiler.devices import load_device

#: A timing protocol that measures each model once, briefly: for tests of the mechanics.
QUICK = dict(warmup_ms=0.0, warmup_min_iters=1, rounds=1, min_iters_per_round=2, min_round_ms=0.0,
             remeasure=0, canary_every=100)


@pytest.fixture
def quick_cpu():
    """The ``cpu`` device with the :data:`QUICK` protocol."""
    return with_protocol(load_device("cpu"), **QUICK)
