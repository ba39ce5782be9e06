"""File digests shared by the model cache and the device push (checksum comparison)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union


def file_digest(path: Union[str, Path], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
