"""What every command prints through: messages to stderr, results to stdout."""

from __future__ import annotations

import sys
from typing import List, Optional


def info(msg: str) -> None:
    """A progress or summary line (stderr, so stdout stays parseable)."""
    print(msg, file=sys.stderr, flush=True)


def error(msg: str) -> None:
    print(f"profiler: error: {msg}", file=sys.stderr, flush=True)


def csv_list(text: Optional[str]) -> List[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]
