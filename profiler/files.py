"""The one atomic writer (temporary file beside the target, fsync, ``os.replace``) and file digests.

Every file the profiler writes for another step to read (manifests, tables, reports, the
generated estimator, cached DLCs and their keys, models) goes through :func:`replacing`, so a
reader sees either the old complete file or the new complete file, never a torn one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterator, List, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: PathLike) -> Path:
    """A unique hidden name beside ``path`` with the same suffix (tools that check it accept it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def replacing(path: PathLike, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds, fsync it and move it
    onto ``path`` atomically. Whatever happens, no temporary file is left behind."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, mode)
            _fsync(tmp)
        elif tmp.is_dir() and path.is_dir():
            import shutil
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends kept as given) to ``path`` atomically."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)


def write_json(path: PathLike, doc: Any, indent: Union[int, None] = 1) -> None:
    """Write ``doc`` as JSON (plus a final newline) to ``path`` atomically."""
    write_text(path, json.dumps(doc, indent=indent, sort_keys=False) + "\n")


def write_all(files: Sequence[Tuple[PathLike, str]]) -> None:
    """Write several text files so that each is replaced only once all are written."""
    with contextlib.ExitStack() as stack:
        temps: List[Path] = []
        for path, text in files:
            tmp = stack.enter_context(replacing(path))
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
            temps.append(tmp)
        # leaving the stack replaces the targets, last first; an error above replaces none


def file_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
