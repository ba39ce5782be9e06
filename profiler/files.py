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
import threading
import time
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


_DIGESTS: "dict[tuple, tuple]" = {}   # (path, algorithm) -> (stat key, digest)
_DIGESTS_LOCK = threading.Lock()
_DIGESTS_MAX = 1 << 16
_RACY_NS = 2_000_000_000   # a file changed this recently may change again within one clock tick
_clock_ns = time.time_ns


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def cached_digest(path: PathLike, algorithm: str = "sha256") -> str:
    """:func:`file_digest`, read again only when the file's inode, size, mtime or ctime changed.

    For files hashed over and over in one process (the SDK's libraries and a module's inputs
    compared with each phone's copy). The atomic writer replaces a file with a new inode, so a
    rewrite through :func:`replacing` is always seen; a file changed in the last two seconds is
    not remembered (file times are coarser than a quick same-size rewrite in place, as in git's
    "racy clean" rule).
    """
    key = (os.path.abspath(path), algorithm)
    st = os.stat(path)
    with _DIGESTS_LOCK:
        hit = _DIGESTS.get(key)
    if hit is not None and hit[0] == _stat_key(st):
        return hit[1]
    digest = file_digest(path, algorithm)
    after = _stat_key(os.stat(path))
    if after == _stat_key(st) and _clock_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        with _DIGESTS_LOCK:
            if len(_DIGESTS) >= _DIGESTS_MAX:
                _DIGESTS.pop(next(iter(_DIGESTS)))
            _DIGESTS[key] = (after, digest)
    return digest
