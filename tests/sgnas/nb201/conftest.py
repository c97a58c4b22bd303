import os
from pathlib import Path

import pytest

from sgnas.nb201.bench import DEFAULT_DIR, ENV_DIR

REPO = Path(__file__).resolve().parents[3]


def bench_dir_or_skip() -> Path:
    """The NAS-Bench-201 tables: ``$SGNAS_NB201_DIR`` or ``../shared/data/nasbench201`` beside the
    repository; skip the test where they are absent."""
    folder = Path(os.environ.get(ENV_DIR) or REPO / DEFAULT_DIR)
    if not (folder / "nb201.csv").is_file():
        pytest.skip(f"NAS-Bench-201 tables not found under {folder}")
    return folder
