"""Atomic file replacement: write beside the target, then ``os.replace`` it into place."""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so tools that check it accept it).

    When the block succeeds the temporary file replaces ``path`` atomically; whatever happens,
    no temporary file is left behind and ``path`` is either the old or the new complete file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
