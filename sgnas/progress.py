"""Progress bars on stderr: a tqdm bar when tqdm is installed and the bar is enabled, else nothing.

Progress is cosmetic, so a missing tqdm only removes the bar (no error); :func:`note` prints a line
without breaking an active bar.
"""

from __future__ import annotations

import sys
from typing import Any


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """A bar over ``total`` units; ``update(n, **postfix)``, ``set_postfix(**postfix)``, ``close()``.

    A no-op when ``enabled`` is false or tqdm is missing. Usable as a context manager.
    """

    def __init__(self, total: int, desc: str, unit: str = "step", enabled: bool = True,
                 initial: int = 0) -> None:
        self._bar: Any = None
        tqdm = _tqdm() if enabled else None
        if tqdm is not None:
            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit,
                             dynamic_ncols=True, file=sys.stderr, leave=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Advance by ``n``, showing ``postfix`` (e.g. ``loss=0.3``) next to the bar."""
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)

    def set_postfix(self, **postfix: Any) -> None:
        """Show ``postfix`` next to the bar without advancing it."""
        if self._bar is not None:
            self._bar.set_postfix(postfix)

    def close(self) -> None:
        """Remove the bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def note(line: str) -> None:
    """Print ``line`` to stderr without breaking an active progress bar."""
    tqdm = _tqdm()
    if tqdm is not None:
        tqdm.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)
