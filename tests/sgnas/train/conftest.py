"""Training tests run single-threaded from the start of each module.

The root conftest's per-test fixture is set up after module-scoped fixtures; this one, scoped to the
module, also covers them, so a run trained once in a module fixture and a run repeated inside a test
(compared by weight hash) use the same thread count.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
