"""Progress bar for the CLI (tqdm on stderr): items done, ETA and failures."""

from __future__ import annotations

from typing import Any, Optional


class Progress:
    """Context manager whose :meth:`update` matches the library's progress callbacks."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self._bar: Any = None
        self.failed = 0

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, done: int, total: int, current: str = "", failed: Optional[int] = None) -> None:
        if self.quiet:
            return
        if self._bar is None:
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=self.label, unit="mod", dynamic_ncols=True,
                             mininterval=0.5, leave=True, disable=None)  # None: off when not a TTY
        if failed is not None:
            self.failed = failed
        self._bar.total = total
        self._bar.set_postfix_str(f"failed={self.failed}", refresh=False)
        self._bar.update(done - self._bar.n)  # redraws at most every mininterval
