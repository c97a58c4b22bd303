"""Seeds derived from several integers (run seed, epoch, rank) for independent random streams."""

from __future__ import annotations

import numpy as np


def mix_seed(*values: int) -> int:
    """A 63-bit seed from a tuple of non-negative ints (e.g. ``(seed, epoch, rank)``)."""
    return int(np.random.SeedSequence(list(values)).generate_state(1, np.uint64)[0] >> 1)
