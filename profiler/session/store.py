"""The results store: one versioned, self-describing JSON Lines file per bench session.

Layout (format ``profiler-results``, version 1)::

    {"format": "profiler-results", "version": 1, "created": ISO-8601, "meta": {...}}   # header
    {"type": "result", "uid": ..., "runtime": ..., "status": "ok", "samples": {...}, ...}
    {"type": "session", "meta": {...}}        # each later --resume appends its own facts
    {"type": "result", ...}

Every record is appended as one complete line with a single ``write`` on a file opened
with ``O_APPEND`` and then ``fsync``-ed, so a crash or Ctrl-C can at worst leave a torn
last line. Readers ignore (and the next writer truncates) such a torn tail; any other
unreadable line is corruption and is reported with its line number. Samples are raw
per-run latencies in microseconds, keyed by LatencyKey.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from profiler.errors import ResultsError
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
    lines = data.split(b"\n")
    torn = False
    if lines and lines[-1] == b"":
        lines.pop()
    elif lines:
        torn = True  # last line has no newline: a write was cut short
    if not lines:
        raise ResultsError(f"{path}: empty file, not a results store")
    header = _parse(path, 1, lines[0], last=False)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ResultsError(f"{path}: not a profiler results store (format {FORMAT!r} expected)")
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
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
    """Append-only writer for one store file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = None

    @classmethod
    def create(cls, path: Path, meta: Dict[str, Any]) -> "ResultsStore":
        path = Path(path)
        if path.exists():
            raise ResultsError(f"{path}: already exists; pass --resume to continue that session "
                               "or choose another --out")
        path.parent.mkdir(parents=True, exist_ok=True)
        store = cls(path)
        store._open(os.O_CREAT | os.O_EXCL)
        store._append({"format": FORMAT, "version": VERSION, "created": now_iso(), "meta": meta})
        return store

    @classmethod
    def resume(cls, path: Path, meta: Dict[str, Any]) -> Tuple["ResultsStore", StoreContents]:
        """Open an existing store for appending; a torn last line is cut off first."""
        contents = read_store(path)
        if contents.torn_tail:
            data = Path(path).read_bytes()
            keep = data[: data.rfind(b"\n") + 1]
            with open(path, "r+b") as f:
                f.truncate(len(keep))
        store = cls(path)
        store._open(0)
        store._append({"type": "session", "meta": {**meta, "resumed": now_iso()}})
        return store, contents

    def _open(self, extra_flags: int) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | extra_flags, 0o644)

    def _append(self, rec: Dict[str, Any]) -> None:
        if self._fd is None:
            raise ValueError("store is closed")
        line = (json.dumps(rec, separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")
        os.write(self._fd, line)
        os.fsync(self._fd)

    def add(self, record: Dict[str, Any]) -> None:
        """Append one result record (``uid``, ``runtime``, ``status`` and data)."""
        self._append({"type": "result", **record})

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
