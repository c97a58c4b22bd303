"""The shipped NB201 generators on the real benchmark tables (skipped where they are absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sgnas.nb201.bench import LATENCY, read_cell_table
from sgnas.shared_generator import generate_cell, load_shared

from .conftest import bench_dir_or_skip

GENERATORS = Path(__file__).resolve().parents[3] / "generators"


@pytest.mark.slow
def test_shipped_generators_meet_constraints_on_real_tables():
    folder = bench_dir_or_skip()
    table = read_cell_table(folder / LATENCY, ["pixel3_ms", "gold_6226_ms"])
    shared = GENERATORS / "nb201-shared-latency.pt"
    flops = next(GENERATORS.glob("nb201-flops-*.pt"))
    assert "pixel3" not in [d["name"] for d in load_shared(shared).devices]
    for col in ("pixel3_ms", "gold_6226_ms"):
        lat = table.by_code(col)
        for gen in (shared, flops):
            for t in (5.0, 6.0, 7.0):
                cell = generate_cell(gen, lat, t)
                assert 0.99 * t <= lat[cell.ops] <= t
    assert np.isfinite(lat).all()
