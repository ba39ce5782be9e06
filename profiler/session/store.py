"""The results store: one versioned, self-describing JSON Lines file per bench session.

Layout (format ``profiler-results``, version 1)::

    {"format": "profiler-results", "version": 1, "created": ISO-8601, "meta": {...}}   # header
    {"type": "result", "uid": ..., "runtime": ..., "status": "ok", "samples": {...}, ...}
    {"type": "session", "meta": {...}}        # each later --resume appends its own facts
    {"type": "result", ...}

Every record is appended as one complete line with a single ``write`` on a file opened
with ``O_APPEND`` and then ``fsync``-ed, so a crash or Ctrl-C can at worst leave a torn
last line. Readers ignore (and the next writer truncates) such a torn tail; any other
unreadable line is corruption and is reported with its line number. A writer holds an
exclusive lock on the file; a failed (e.g. disk full) append is truncated away again. Samples are raw
per-run latencies in microseconds, keyed by LatencyKey.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from profiler.errors import ResultsError, StoreFullError
from profiler.session.record import now_iso

FORMAT = "profiler-results"
VERSION = 1


@dataclass
class StoreContents:
    """Everything read from a store: header meta, session metas and result records."""

    path: Path
    meta: Dict[str, Any]
    sessions: List[Dict[str, Any]] = field(default_factory=list)
    records: List[Dict[str, Any]] = field(default_factory=list)
    torn_tail: bool = False

    def latest(self) -> Dict[Tuple[str, str], Dict[str, Any]]:
        """The last record per (uid, runtime); an ok record is never replaced by a failure."""
        out: Dict[Tuple[str, str], Dict[str, Any]] = {}
        for r in self.records:
            key = (r["uid"], r["runtime"])
            if key in out and out[key]["status"] == "ok" and r["status"] != "ok":
                continue
            out[key] = r
        return out

    def ok_records(self) -> List[Dict[str, Any]]:
        return [r for r in self.latest().values() if r["status"] == "ok"]

    def done(self) -> set:
        return {k for k, r in self.latest().items() if r["status"] == "ok"}

    def merged_meta(self) -> Dict[str, Any]:
        """Header meta updated by each resumed session's meta (later values win)."""
        meta = dict(self.meta)
        for s in self.sessions:
            meta.update(s)
        return meta


def read_store(path: Path) -> StoreContents:
    """Read a store; raise :class:`ResultsError` for a missing, corrupt or newer file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results store (create it with 'profiler bench')") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a directory, not a results store (pass the file "
                           "'profiler bench --out' wrote)") from None
    except PermissionError:
        raise ResultsError(f"{path}: permission denied; cannot read the results store") from None
    return parse_store(path, data)


def _not_a_store(path: Path) -> ResultsError:
    return ResultsError(f"{path}: not a profiler results store (format {FORMAT!r} expected; pass the "
                        "file 'profiler bench --out' wrote)")


def parse_store(path: Path, data: bytes) -> StoreContents:
    """Parse the bytes of a store read from ``path`` (see :func:`read_store`)."""
    lines = data.split(b"\n")
    torn = False
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        torn = True  # last line has no newline: a write was cut short
    if not lines:
        raise ResultsError(f"{path}: empty file, not a results store")
    try:
        header = json.loads(lines[0].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _not_a_store(path) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _not_a_store(path)
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultsError(f"{path}: results format version {version!r} is not valid (an integer "
                           f"1..{VERSION} expected); the header is corrupt: restore the file")
    if version > VERSION:
        raise ResultsError(f"{path}: results format version {version} is newer than this profiler "
                           f"reads ({VERSION}); upgrade profiler")
    contents = StoreContents(path, header.get("meta", {}))
    for i, raw in enumerate(lines[1:], start=2):
        is_last = i == len(lines)
        rec = _parse(path, i, raw, last=is_last and torn)
        if rec is None:
            contents.torn_tail = True
            continue
        kind = rec.get("type")
        if kind == "result":
            for key in ("uid", "runtime", "status"):
                if key not in rec:
                    raise ResultsError(f"{path}:{i}: result record without {key!r}; the file is corrupt")
            contents.records.append(rec)
        elif kind == "session":
            contents.sessions.append(rec.get("meta", {}))
        else:
            raise ResultsError(f"{path}:{i}: unknown record type {kind!r}; the file is corrupt")
    return contents


def _parse(path: Path, lineno: int, raw: bytes, last: bool) -> Optional[Dict[str, Any]]:
    try:
        rec = json.loads(raw.decode("utf-8"))
        if not isinstance(rec, dict):
            raise ValueError("not an object")
        return rec
    except (UnicodeDecodeError, ValueError):
        if last:
            return None
        raise ResultsError(f"{path}:{lineno}: corrupt record (not a JSON object); the store cannot "
                           "be read safely: move the file aside or restore it") from None


class ResultsStore:
    """Append-only writer for one store file (see the module docstring).

    A writer holds an exclusive ``flock`` on the store for its whole life, so two sessions
    never write (or measure) into one store; who holds it is written to ``STORE.lock``.
    Every append is checked: a short or failed write is cut off again (the file ends with
    the last complete record) and raises :class:`StoreFullError`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = None
        self._size = 0          # bytes of complete records: where a failed append is cut back to
        self.results = 0        # result records in the file (kept on a failure)

    @classmethod
    def create(cls, path: Path, meta: Dict[str, Any]) -> "ResultsStore":
        path = Path(path)
        exists = f"{path}: already exists; pass --resume to continue that session or choose another --out"
        if path.exists():
            if path.is_dir():
                raise ResultsError(f"{path}: is a directory; --out names the results store file to create")
            raise ResultsError(exists)
        _make_parent(path)
        store = cls(path)
        try:
            store._open(os.O_CREAT | os.O_EXCL)
        except FileExistsError:  # another session created it a moment ago
            raise ResultsError(exists) from None
        store._lock()
        store._append({"format": FORMAT, "version": VERSION, "created": now_iso(), "meta": meta})
        return store

    @classmethod
    def resume(cls, path: Path, meta: Dict[str, Any],
               check: Optional[Callable[[StoreContents], None]] = None) -> Tuple["ResultsStore", StoreContents]:
        """Lock an existing store and open it for appending; a torn last line is cut off first.

        ``check(contents)`` may raise to refuse the store before anything is written to it."""
        path = Path(path)
        if path.is_dir():
            raise ResultsError(f"{path}: is a directory; --out names the results store file")
        store = cls(path)
        try:
            store._open(0)
        except FileNotFoundError:
            raise ResultsError(f"{path}: no such results store (create it with 'profiler bench')") from None
        try:
            store._lock()
            data = _read_fd(store._fd)
            contents = parse_store(path, data)
            if check is not None:
                check(contents)
            if contents.torn_tail:
                os.ftruncate(store._fd, data.rfind(b"\n") + 1)
            store._size = os.fstat(store._fd).st_size
            store.results = len(contents.records)
            store._append({"type": "session", "meta": {**meta, "resumed": now_iso()}})
        except BaseException:
            store.close()
            raise
        return store, contents

    def _open(self, extra_flags: int) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | extra_flags, 0o644)
        except PermissionError:
            raise ResultsError(f"{self.path}: permission denied; choose a writable --out") from None
        except NotADirectoryError:
            raise ResultsError(f"{self.path}: a parent of it is a file, not a directory; "
                               "choose another --out") from None
        except (FileExistsError, FileNotFoundError):
            raise
        except OSError as e:
            raise ResultsError(f"{self.path}: cannot open the results store ({e.strerror}); "
                               "choose a writable --out") from None

    def _lock(self) -> None:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self.path)
            os.close(self._fd)
            self._fd = None
            raise ResultsError(f"{self.path}: in use by another bench session ({holder}); wait for it "
                               "to finish or choose another --out") from None
        try:
            with open(_lock_path(self.path), "w", encoding="utf-8") as f:
                f.write(f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}\n")
        except OSError:
            pass  # the note is informational only; the flock is what excludes

    def _append(self, rec: Dict[str, Any]) -> None:
        if self._fd is None:
            raise ValueError("store is closed")
        line = (json.dumps(rec, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
        view = memoryview(line)
        try:
            while view:
                n = os.write(self._fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
            os.fsync(self._fd)
        except OSError as e:
            self._cut_back()
            what = "disk full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else f"write failed ({e.strerror})"
            raise StoreFullError(f"{self.path}: {what}: {self.results} results kept, "
                                 "--resume after freeing space") from None
        self._size += len(line)
        if rec.get("type") == "result":
            self.results += 1

    def _cut_back(self) -> None:
        """Truncate to the last complete record after a failed append (never leave a fragment)."""
        try:
            os.ftruncate(self._fd, self._size)
            os.fsync(self._fd)
        except OSError:
            pass

    def add(self, record: Dict[str, Any]) -> None:
        """Append one result record (``uid``, ``runtime``, ``status`` and data)."""
        self._append({"type": "result", **record})

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(_lock_path(self.path))
            except OSError:
                pass
            os.close(self._fd)  # releases the flock
            self._fd = None

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _holder(path: Path) -> str:
    try:
        return _lock_path(path).read_text(encoding="utf-8").strip() or "unknown process"
    except OSError:
        return "unknown process"


def _read_fd(fd: int) -> bytes:
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ResultsError(f"{path}: a parent of it is a file, not a directory; choose another --out") from None
    except NotADirectoryError:
        raise ResultsError(f"{path}: a parent of it is a file, not a directory; choose another --out") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot create its directory ({e.strerror}); choose a writable --out") from None
