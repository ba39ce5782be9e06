"""The per-module latency table: built from results stores, saved as NAME.csv/.json/.meta.

Files (format ``profiler-table``, version 1; all values are microseconds):

* ``NAME.csv``: the original profiler's layout, no header, one row per value::

      <ModuleUID>,<Runtime>,<LatencyKey>,<Stats>,<Value>

  UIDs are quoted by the csv module because they contain commas. Rows are ordered by
  UID, then runtime (both sorted), then LatencyKey (Forward Propagate, Total Inference
  Time, Layers Time, then any other key sorted), then Stats (Min_Time, Avg_Time,
  Max_Time only). Values are written exactly: integral values without a fraction
  (``595``), others as Python's shortest round-tripping ``repr`` (``672.3333333333334``).
  Lines end with ``\\n``.
* ``NAME.json``: ``{uid: {runtime: {LatencyKey: {stat: value}}}}`` with all seven stats of
  :func:`profiler.session.stats.summarize` (``Count`` is an int).
* ``NAME.meta``: ``key:value`` lines written by ``csv.writer(delimiter=":")`` (a key or value
  containing ``:`` is quoted), starting with ``format:profiler-table``, ``version:1``,
  ``unit:us`` and ``sources`` (the stores the table was built from), followed by the merged
  facts of those stores (see :func:`merge_meta`).

Each file is written to a temporary file beside it and moved into place with
``os.replace``, so a reader never sees a half-written table.

The per-network constant is the reserved row ``@network``
(:data:`profiler.keys.NETWORK_CONSTANT_UID`): a row like any module's in all three files, so
it survives CSV/JSON/.meta round trips; tables without it (older ones, phones) read as a
constant of 0 (:meth:`LatencyTable.network_constant`).

Look-ups for NAS loops: :meth:`LatencyTable.lookup` for one value; for many, map UIDs to
row indices once with :meth:`LatencyTable.index_of` and sum with
:meth:`LatencyTable.sum_indices` (one numpy gather + sum for all architectures).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from profiler.errors import TableError
from profiler.keys import LATENCY_KEYS, NETWORK_CONSTANT_UID, UNIT
from profiler.session.stats import SEED_STATS, STAT_NAMES

FORMAT = "profiler-table"
VERSION = 1
RESERVED_META = ("format", "version", "unit", "sources")
DUPLICATE_POLICIES = ("error", "first", "last")
NON_US_POLICIES = ("error", "skip")
META_JOIN = "; "

PathLike = Union[str, "os.PathLike[str]"]
Data = Dict[str, Dict[str, Dict[str, Dict[str, Union[float, int]]]]]


# --- meta ---------------------------------------------------------------------------------

def _meta_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and not any(isinstance(v, (list, tuple, Mapping)) for v in value):
        return ",".join(_meta_str(v) for v in value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def flatten(meta: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested metadata as flat dotted keys (``{"config": {"warmup": 10}}`` -> ``config.warmup``);
    values are kept as they are (an empty mapping is a value)."""
    flat: Dict[str, Any] = {}
    for k, v in meta.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            flat.update(flatten(v, key + "."))
        else:
            flat[key] = v
    return flat


def merge_meta(metas: Iterable[Optional[Mapping[str, Any]]],
               sources: Optional[Sequence[PathLike]] = None) -> Dict[str, str]:
    """Merge the metas of several stores into one flat ``{str: str}`` dict.

    * ``format``, ``version``, ``unit`` come first, then ``sources`` (``sources`` joined by
      ``"; "``) when given.
    * Nested dicts are flattened to dotted keys (``{"config": {"warmup": 10}}`` ->
      ``config.warmup``). A flat list is joined by ``","`` (``ORT_CPU,NNABLA_CPU``); other
      non-string values are written as compact JSON (``10``, ``true``, ``null``, ``[[1,2]]``).
    * A key with the same value in every store that has it is kept once; differing values
      are joined by ``"; "`` in first-seen order (``"Pixel 4; SM-G991B"``). A key missing
      from some stores is not marked as missing.
    * A store key that collides with a reserved key above is kept as ``store.<key>``.
    """
    out: Dict[str, str] = {"format": FORMAT, "version": str(VERSION), "unit": UNIT}
    if sources:
        out["sources"] = META_JOIN.join(str(s) for s in sources)
    seen: Dict[str, List[str]] = {}
    for i, m in enumerate(metas):
        if m is None:
            continue
        if not isinstance(m, Mapping):
            raise TableError(f"meta #{i + 1} is a {type(m).__name__}, not a key/value mapping; "
                             "pass each store's meta dict")
        for k, v in flatten(m).items():
            v = _meta_str(v)
            if k in RESERVED_META:
                k = "store." + k
            vals = seen.setdefault(k, [])
            if v not in vals:
                vals.append(v)
    for k, vals in seen.items():
        out[k] = META_JOIN.join(vals)
    return out


def _meta_text(meta: Mapping[str, str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=":", lineterminator="\n")
    w.writerow(["format", FORMAT])
    w.writerow(["version", str(VERSION)])
    w.writerow(["unit", UNIT])
    for k, v in meta.items():
        if k not in ("format", "version", "unit"):
            w.writerow([k, v])
    return buf.getvalue()


def _read_meta(path: Path) -> Dict[str, str]:
    meta: Dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter=":")
            for row in reader:
                if not row:
                    continue
                if len(row) != 2:
                    raise TableError(f"{path}:{reader.line_num}: expected one 'key:value' pair, got "
                                     f"{len(row)} fields (quote a key or value that contains ':')")
                meta[row[0]] = row[1]
    except csv.Error as e:
        raise TableError(f"{path}: unreadable meta file ({e}); rebuild it with 'profiler table'") from None
    except UnicodeDecodeError:
        raise TableError(f"{path}: not UTF-8 text; the meta file is corrupt") from None
    except OSError as e:
        raise TableError(f"{path}: cannot read the meta file ({e.strerror})") from None
    fmt = meta.get("format")
    if fmt is not None and fmt != FORMAT:
        raise TableError(f"{path}: format {fmt!r} is not a latency table ({FORMAT!r} expected)")
    if "version" in meta:
        try:
            version = int(meta["version"])
        except ValueError:
            raise TableError(f"{path}: version {meta['version']!r} is not an integer; the meta file "
                             "is corrupt") from None
        if version > VERSION:
            raise TableError(f"{path}: table format version {version} is newer than this profiler "
                             f"reads ({VERSION}); upgrade profiler")
    unit = meta.get("unit")
    if unit is not None and unit != UNIT:
        raise TableError(f"{path}: values are in {unit!r}, not microseconds; this profiler only "
                         "reads µs tables")
    return meta


# --- value formatting ---------------------------------------------------------------------

def _fmt_value(v: float) -> str:
    """Exact text for ``v``: ``595`` for integral values, else the shortest round-trip repr."""
    v = float(v) + 0.0
    if v.is_integer() and abs(v) < 2.0 ** 53:
        return str(int(v))
    return repr(v)


def _key_order(keys: Iterable[str]) -> List[str]:
    ks = set(keys)
    return [k for k in LATENCY_KEYS if k in ks] + sorted(ks.difference(LATENCY_KEYS))


def _stat_order(stats: Iterable[str]) -> List[str]:
    ss = set(stats)
    return [s for s in STAT_NAMES if s in ss] + sorted(ss.difference(STAT_NAMES))


def _number(v: Any, stat: str) -> Union[float, int]:
    """A finite, non-negative stat value (``Count``: a non-negative int); ValueError otherwise."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{stat} is {v!r}, not a number")
    f = float(v)
    if not np.isfinite(f) or f < 0:
        raise ValueError(f"{stat} is {v!r}, not a finite non-negative number")
    if stat == "Count":
        if not f.is_integer():
            raise ValueError(f"Count is {v!r}, not an integer")
        return int(f)
    return f + 0.0


def _normalize(data: Any, where: str) -> Data:
    """Validate ``{uid: {runtime: {key: {stat: value}}}}`` and return a clean copy."""
    if not isinstance(data, Mapping):
        raise TableError(f"{where}: expected an object {{ModuleUID: {{Runtime: ...}}}}, "
                         f"got {type(data).__name__}")
    if not data:
        raise TableError(f"{where}: the table is empty (no modules)")
    out: Data = {}
    for uid, by_rt in data.items():
        if not isinstance(uid, str) or not uid:
            raise TableError(f"{where}: module UID {uid!r} is not a non-empty string")
        if not isinstance(by_rt, Mapping) or not by_rt:
            raise TableError(f"{where}: module {uid!r}: expected a non-empty object {{Runtime: ...}}")
        rts: Dict[str, Dict[str, Dict[str, Union[float, int]]]] = {}
        for rt, by_key in by_rt.items():
            if not isinstance(rt, str) or not rt:
                raise TableError(f"{where}: module {uid!r}: runtime {rt!r} is not a non-empty string")
            if not isinstance(by_key, Mapping) or not by_key:
                raise TableError(f"{where}: module {uid!r}, runtime {rt!r}: expected a non-empty "
                                 "object {LatencyKey: {Stats: value}}")
            keys: Dict[str, Dict[str, Union[float, int]]] = {}
            for key, by_stat in by_key.items():
                if not isinstance(key, str) or not key:
                    raise TableError(f"{where}: module {uid!r}, runtime {rt!r}: latency key {key!r} "
                                     "is not a non-empty string")
                if not isinstance(by_stat, Mapping) or not by_stat:
                    raise TableError(f"{where}: module {uid!r}, runtime {rt!r}, {key!r}: expected a "
                                     "non-empty object {Stats: value}")
                stats: Dict[str, Union[float, int]] = {}
                for stat, v in by_stat.items():
                    try:
                        stats[str(stat)] = _number(v, str(stat))
                    except ValueError as e:
                        raise TableError(f"{where}: module {uid!r}, runtime {rt!r}, {key!r}: {e}") from None
                keys[key] = stats
            rts[rt] = keys
        out[uid] = rts
    return out


# --- writing helpers ----------------------------------------------------------------------

def _base_name(name: PathLike) -> str:
    s = os.fspath(name)
    for ext in (".json", ".csv", ".meta"):
        if s.endswith(ext):
            return s[: -len(ext)]
    return s


def _pad(lengths: Sequence[int], flat: np.ndarray) -> np.ndarray:
    """Rows of ``flat`` split by ``lengths`` into a 2-D int64 array padded with -1."""
    lens = np.asarray(lengths, dtype=np.int64)
    width = int(lens.max()) if lens.size else 0
    out = np.full((lens.size, width), -1, dtype=np.int64)
    out[np.arange(width) < lens[:, None]] = flat
    return out


# --- the table ----------------------------------------------------------------------------

class LatencyTable:
    """Per-module latencies: ``{uid: {runtime: {LatencyKey: {stat: value}}}}`` in µs.

    Build one with :meth:`from_records` / :meth:`from_stores`, or :meth:`load` a saved one.
    The table is immutable; ``uids`` is sorted and defines the row order of
    :meth:`vector` and the indices of :meth:`index_of`.

    Attributes
    ----------
    source : str or None
        The file the table was loaded from (used in error messages).
    notes : list of str
        What building left out (failed records, duplicates replaced, skipped non-µs keys);
        empty for a loaded table. Not saved.
    """

    def __init__(self, data: Mapping[str, Any], meta: Optional[Mapping[str, Any]] = None,
                 source: Optional[PathLike] = None) -> None:
        self.source = os.fspath(source) if source is not None else None
        self._data = _normalize(data, self.source or "latency table")
        self._meta: Dict[str, str] = {str(k): _meta_str(v) for k, v in (meta or {}).items()}
        self.notes: List[str] = []
        self._uids: Tuple[str, ...] = tuple(sorted(self._data))
        self._index: Dict[str, int] = {u: i for i, u in enumerate(self._uids)}
        self._runtimes = tuple(sorted({rt for by_rt in self._data.values() for rt in by_rt}))
        self._keys = tuple(_key_order({k for by_rt in self._data.values()
                                       for by_key in by_rt.values() for k in by_key}))
        self._vectors: Dict[Tuple[str, str, str], np.ndarray] = {}

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]],
                     metas: Iterable[Optional[Mapping[str, Any]]] = (), *,
                     sources: Optional[Sequence[PathLike]] = None, on_duplicate: str = "error",
                     non_us: str = "error") -> "LatencyTable":
        """Build a table from result records (see :mod:`profiler.session.store`) and store metas.

        Parameters
        ----------
        records
            Result dicts with ``uid``, ``runtime``, ``status``, ``samples`` ({LatencyKey: [µs]})
            and optionally ``unit`` (a string, or {LatencyKey: unit}; default ``"us"``) and
            ``source`` (a file name used in error messages). Records whose status is not
            ``"ok"`` are skipped (counted in :attr:`notes`). Each kept key's value is
            :func:`profiler.session.stats.summarize` of its samples.
        metas
            One meta dict per store, merged with :func:`merge_meta` (never only the last one).
        sources
            The stores' file names or session labels, recorded as meta ``sources``.
        on_duplicate
            What to do when the same (uid, runtime) appears in more than one ``"ok"`` record
            (e.g. measured in two stores): ``"error"`` (default) raises :class:`TableError`
            naming both sources; ``"last"`` keeps the later record, ``"first"`` the earlier
            one (input order). Re-measurements inside one store should be resolved first
            (``StoreContents.ok_records()`` keeps the latest); :meth:`from_stores` does that.
        non_us
            A key whose unit is not ``"us"`` (e.g. DSP ``"cycles"``): ``"error"`` (default)
            raises :class:`TableError`; ``"skip"`` leaves that key out (noted in :attr:`notes`).
            Values of different units are never mixed.
        """
        pairs = ((r, r.get("source") if isinstance(r, Mapping) else None) for r in records)
        return cls._build(pairs, metas, sources, on_duplicate, non_us)

    @classmethod
    def from_stores(cls, stores: Iterable[Any], *, on_duplicate: str = "error",
                    non_us: str = "error") -> "LatencyTable":
        """Build a table from results stores: paths, or ``StoreContents`` already read.

        Uses each store's ``ok_records()`` (latest successful record per module and runtime)
        and ``merged_meta()``; the store paths become meta ``sources`` and are named in errors.
        ``on_duplicate`` / ``non_us`` as in :meth:`from_records`.
        """
        from profiler.session.store import read_store
        from profiler.table.build import table_meta
        contents = [s if hasattr(s, "ok_records") else read_store(Path(s)) for s in stores]
        pairs = ((r, str(c.path)) for c in contents for r in c.latest().values())  # failures counted
        return cls._build(pairs, [table_meta(c.merged_meta(), c.path) for c in contents],
                          [str(c.path) for c in contents], on_duplicate, non_us)

    @classmethod
    def _build(cls, pairs: Iterable[Tuple[Any, Optional[str]]],
               metas: Iterable[Optional[Mapping[str, Any]]], sources: Optional[Sequence[PathLike]],
               on_duplicate: str, non_us: str) -> "LatencyTable":
        from profiler.session.stats import summarize
        if on_duplicate not in DUPLICATE_POLICIES:
            raise ValueError(f"on_duplicate must be one of {DUPLICATE_POLICIES}, not {on_duplicate!r}")
        if non_us not in NON_US_POLICIES:
            raise ValueError(f"non_us must be one of {NON_US_POLICIES}, not {non_us!r}")
        entries: Dict[Tuple[str, str], Tuple[Dict[str, Any], Optional[str]]] = {}
        notes: List[str] = []
        not_ok = replaced = 0
        for rec, src in pairs:
            at = f"{src}: " if src else ""
            if not isinstance(rec, Mapping):
                raise TableError(f"{at}a result record is a {type(rec).__name__}, not an object; "
                                 "the results are corrupt")
            uid, rt = rec.get("uid"), rec.get("runtime")
            if not isinstance(uid, str) or not uid or not isinstance(rt, str) or not rt:
                raise TableError(f"{at}a result record has no valid uid/runtime "
                                 f"(uid={uid!r}, runtime={rt!r}); the results are corrupt")
            if rec.get("status") != "ok":
                not_ok += 1
                continue
            samples = rec.get("samples")
            if not isinstance(samples, Mapping) or not samples:
                raise TableError(f"{at}module {uid!r} on runtime {rt!r} is 'ok' but has no samples; "
                                 "re-measure it")
            unit = rec.get("unit") or UNIT
            stats: Dict[str, Any] = {}
            for key, values in samples.items():
                key_unit = (unit.get(key) or UNIT) if isinstance(unit, Mapping) else unit
                if key_unit != UNIT:
                    if non_us == "error":
                        raise TableError(f"{at}module {uid!r} on runtime {rt!r}: {key!r} is in "
                                         f"{key_unit!r}, not microseconds; convert it first or leave "
                                         "such keys out (non_us='skip')")
                    notes.append(f"skipped {key!r} of {uid!r} on {rt!r}: unit {key_unit!r}, not µs")
                    continue
                try:
                    stats[key] = summarize(values)
                except ValueError as e:
                    raise TableError(f"{at}module {uid!r} on runtime {rt!r}, {key!r}: {e}") from None
            if not stats:
                continue
            k = (uid, rt)
            if k in entries:
                prev = entries[k][1]
                if on_duplicate == "error":
                    where = f" (in {prev} and {src})" if prev and src else ""
                    raise TableError(f"module {uid!r} on runtime {rt!r} is measured in two results"
                                     f"{where}; drop one input or choose --on-duplicate last")
                replaced += 1
                if on_duplicate == "first":
                    continue
            entries[k] = (stats, src)
        if not entries:
            where = f" in {META_JOIN.join(str(s) for s in sources)}" if sources else ""
            raise TableError(f"no successful measurements{where} ({not_ok} failed records); "
                             "nothing to tabulate: run 'profiler bench' first")
        data: Dict[str, Dict[str, Any]] = {}
        for (uid, rt), (stats, _) in entries.items():
            data.setdefault(uid, {})[rt] = stats
        table = cls(data, merge_meta(metas, sources))
        if not_ok:
            notes.insert(0, f"left out {not_ok} failed records")
        if replaced:
            notes.append(f"{replaced} duplicate module/runtime records resolved by on_duplicate="
                         f"{on_duplicate!r}")
        table.notes = notes
        return table

    # -- writing -------------------------------------------------------------------------

    def _csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for uid in self._uids:
            by_rt = self._data[uid]
            for rt in sorted(by_rt):
                by_key = by_rt[rt]
                for key in _key_order(by_key):
                    for stat in SEED_STATS:
                        if stat in by_key[key]:
                            w.writerow([uid, rt, key, stat, _fmt_value(by_key[key][stat])])
        return buf.getvalue()

    def _json_text(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"

    def save(self, name: PathLike) -> List[Path]:
        """Write ``NAME.csv``, ``NAME.json`` and ``NAME.meta`` (each atomically); return the paths.

        A trailing ``.csv``/``.json``/``.meta`` on ``name`` is ignored. Missing parent
        directories are created.
        """
        base = _base_name(name)
        paths = [Path(base + ext) for ext in (".csv", ".json", ".meta")]
        try:
            paths[0].parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TableError(f"{paths[0].parent}: cannot create the output directory ({e.strerror})") from None
        from profiler.files import write_all
        try:
            write_all([(paths[0], self._csv_text()), (paths[1], self._json_text()),
                       (paths[2], _meta_text(self._meta))])
        except OSError as e:
            raise TableError(f"{e.filename or paths[0]}: cannot write the table ({e.strerror}); "
                             "check the --out directory and free space") from None
        return paths

    # -- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike) -> "LatencyTable":
        """Load ``NAME.json``, ``NAME.csv`` or ``NAME`` (``NAME.json`` preferred, else ``NAME.csv``).

        ``NAME.meta`` is read when present (tables of the original profiler, without
        ``format``/``version``, are accepted). A table loaded from CSV holds only Min_Time,
        Avg_Time and Max_Time. Raises :class:`TableError` naming the file and the problem.
        """
        s = os.fspath(path)
        base = _base_name(s)
        if s.endswith(".json") or s.endswith(".csv"):
            data_path = Path(s)
        elif Path(base + ".json").is_file():
            data_path = Path(base + ".json")
        elif Path(base + ".csv").is_file():
            data_path = Path(base + ".csv")
        else:
            raise TableError(f"{s}: no latency table found (looked for {base}.json and {base}.csv); "
                             "build one with 'profiler table'")
        meta_path = Path(base + ".meta")
        meta = _read_meta(meta_path) if meta_path.is_file() else {}
        try:
            if data_path.suffix == ".json":
                data: Any = cls._read_json(data_path)
            else:
                data = cls._read_csv(data_path)
        except FileNotFoundError:
            raise TableError(f"{data_path}: no such table file") from None
        except UnicodeDecodeError:
            raise TableError(f"{data_path}: not UTF-8 text; the table is corrupt: rebuild it with "
                             "'profiler table'") from None
        except IsADirectoryError:
            raise TableError(f"{data_path}: is a directory, not a table file") from None
        except OSError as e:
            raise TableError(f"{data_path}: cannot read the table ({e.strerror})") from None
        return cls(data, meta, source=data_path)

    @staticmethod
    def _read_json(path: Path) -> Any:
        text = path.read_text(encoding="utf-8")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise TableError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                             "the table is corrupt: rebuild it with 'profiler table'") from None

    @staticmethod
    def _read_csv(path: Path) -> Data:
        data: Data = {}
        first_line: Dict[Tuple[str, str, str, str], int] = {}
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            try:
                for row in reader:
                    n = reader.line_num
                    if not row:
                        continue
                    if len(row) != 5:
                        raise TableError(f"{path}:{n}: bad row: expected 5 fields "
                                         f"ModuleUID,Runtime,LatencyKey,Stats,Value, got {len(row)} "
                                         "(a UID with commas must be quoted)")
                    uid, rt, key, stat, text = row
                    if not uid or not rt or not key or not stat:
                        raise TableError(f"{path}:{n}: bad row: empty ModuleUID, Runtime, LatencyKey "
                                         "or Stats field")
                    try:
                        value = _number(float(text), stat)
                    except ValueError:
                        raise TableError(f"{path}:{n}: bad row: value {text!r} is not a finite "
                                         "non-negative number of microseconds") from None
                    k = (uid, rt, key, stat)
                    if k in first_line:
                        raise TableError(f"{path}:{n}: bad row: {rt},{key},{stat} of this module "
                                         f"already given at line {first_line[k]}")
                    first_line[k] = n
                    data.setdefault(uid, {}).setdefault(rt, {}).setdefault(key, {})[stat] = value
            except csv.Error as e:
                raise TableError(f"{path}:{reader.line_num}: bad row: {e}") from None
        if not data:
            raise TableError(f"{path}: empty table (no rows)")
        return data

    # -- introspection -------------------------------------------------------------------

    @property
    def uids(self) -> Tuple[str, ...]:
        """Module UIDs, sorted; position ``i`` is row ``i`` of :meth:`vector`."""
        return self._uids

    @property
    def runtimes(self) -> Tuple[str, ...]:
        """Every runtime measured for at least one module, sorted."""
        return self._runtimes

    @property
    def keys(self) -> Tuple[str, ...]:
        """Every LatencyKey present (Forward Propagate, Total Inference Time, Layers Time first)."""
        return self._keys

    @property
    def meta(self) -> Dict[str, str]:
        """The merged meta (a copy): ``format``, ``version``, ``unit``, ``sources``, store facts."""
        return dict(self._meta)

    def __len__(self) -> int:
        return len(self._uids)

    def __contains__(self, uid: object) -> bool:
        return uid in self._index

    def __repr__(self) -> str:
        src = f", source={self.source!r}" if self.source else ""
        return f"<LatencyTable {len(self._uids)} modules x {', '.join(self._runtimes)}{src}>"

    def to_dict(self) -> Data:
        """A deep copy ``{uid: {runtime: {key: {stat: value}}}}`` in the saved (sorted) order."""
        out: Data = {}
        for uid in self._uids:
            by_rt = self._data[uid]
            out[uid] = {rt: {key: {s: by_rt[rt][key][s] for s in _stat_order(by_rt[rt][key])}
                             for key in _key_order(by_rt[rt])}
                        for rt in sorted(by_rt)}
        return out

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per (ModuleUID, Runtime, LatencyKey), one column per stat."""
        import pandas as pd
        rows = [{"ModuleUID": uid, "Runtime": rt, "LatencyKey": key, **stats}
                for uid, by_rt in self.to_dict().items() for rt, by_key in by_rt.items()
                for key, stats in by_key.items()]
        stat_cols = _stat_order({s for r in rows for s in r} - {"ModuleUID", "Runtime", "LatencyKey"})
        return pd.DataFrame(rows, columns=["ModuleUID", "Runtime", "LatencyKey", *stat_cols])

    # -- look-ups ------------------------------------------------------------------------

    def _in(self) -> str:
        return f" in {self.source}" if self.source else ""

    def lookup(self, uid: str, runtime: str, key: str = "Layers Time", stat: str = "Avg_Time") -> float:
        """One value (µs). Raises :class:`TableError` naming what is missing and what exists."""
        by_rt = self._data.get(uid)
        if by_rt is None:
            raise TableError(f"module {uid!r} (runtime {runtime!r}) is not in the latency table{self._in()}"
                             f" (table runtimes: {', '.join(self._runtimes)}); measure it, or check "
                             "that the table was built for this search space and granularity")
        by_key = by_rt.get(runtime)
        if by_key is None:
            raise TableError(f"module {uid!r} has no measurement for runtime {runtime!r}{self._in()}; "
                             f"it was measured on: {', '.join(sorted(by_rt))}")
        by_stat = by_key.get(key)
        if by_stat is None:
            raise TableError(f"module {uid!r} on runtime {runtime!r} has no {key!r}{self._in()}; "
                             f"it has: {', '.join(_key_order(by_key))}")
        value = by_stat.get(stat)
        if value is None:
            hint = (" (a .csv table holds only Min_Time, Avg_Time, Max_Time; load the .json)"
                    if self.source and self.source.endswith(".csv") else "")
            raise TableError(f"module {uid!r} on runtime {runtime!r}, {key!r} has no {stat!r}"
                             f"{self._in()}; it has: {', '.join(_stat_order(by_stat))}{hint}")
        return float(value)

    @property
    def module_uids(self) -> Tuple[str, ...]:
        """:attr:`uids` without the reserved per-network constant row."""
        return tuple(u for u in self._uids if u != NETWORK_CONSTANT_UID)

    def has_constant(self, runtime: str) -> bool:
        """True when the table holds a per-network constant measured on ``runtime``."""
        return runtime in self._data.get(NETWORK_CONSTANT_UID, {})

    def network_constant(self, runtime: str, key: str, stat: str = "Median_Time") -> float:
        """The per-network constant (µs) of ``runtime`` under ``key``/``stat``, added once per
        network on top of its modules' sum; 0.0 when the table has no such row (older tables,
        phones). A row that exists but lacks ``key``/``stat`` is a TableError."""
        if not self.has_constant(runtime):
            return 0.0
        return self.lookup(NETWORK_CONSTANT_UID, runtime, key, stat)

    def index_of(self, uids: Iterable[str]) -> np.ndarray:
        """Row indices (int64) of ``uids`` in :attr:`uids`; TableError naming an unknown UID."""
        if isinstance(uids, str):
            raise ValueError("index_of takes a sequence of UIDs, not one string; wrap it: [uid]")
        seq = uids if isinstance(uids, (list, tuple)) else list(uids)
        get = self._index.get
        idx = np.fromiter((get(u, -1) for u in seq), dtype=np.int64, count=len(seq))
        missing = np.flatnonzero(idx < 0)
        if missing.size:
            raise TableError(f"module {seq[int(missing[0])]!r} is not in the latency table{self._in()} "
                             f"({missing.size} of {len(seq)} UIDs unknown); measure it, or check that "
                             "the table was built for this search space and granularity")
        return idx

    def _extended(self, runtime: str, key: str, stat: str) -> np.ndarray:
        """The cached column plus a trailing 0.0 sentinel (so index -1 reads 0)."""
        ck = (runtime, key, stat)
        ext = self._vectors.get(ck)
        if ext is not None:
            return ext
        if runtime not in self._runtimes:
            raise TableError(f"runtime {runtime!r} is not in the latency table{self._in()}; "
                             f"it has: {', '.join(self._runtimes)}")
        ext = np.full(len(self._uids) + 1, np.nan, dtype=np.float64)
        for i, uid in enumerate(self._uids):
            v = self._data[uid].get(runtime, {}).get(key, {}).get(stat)
            if v is not None:
                ext[i] = v
        ext[-1] = 0.0
        if np.isnan(ext[:-1]).all():
            keys = sorted({k for by_rt in self._data.values() for k in by_rt.get(runtime, {})})
            stats = sorted({s for by_rt in self._data.values() for by_stat in by_rt.get(runtime, {}).values()
                            for s in by_stat})
            raise TableError(f"no module has {key!r} {stat!r} for runtime {runtime!r}{self._in()}; "
                             f"keys: {', '.join(_key_order(keys))}; stats: {', '.join(_stat_order(stats))}")
        ext.setflags(write=False)
        self._vectors[ck] = ext
        return ext

    def vector(self, runtime: str, key: str = "Layers Time", stat: str = "Avg_Time") -> np.ndarray:
        """Read-only float64 column aligned with :attr:`uids`; NaN where a module lacks the value.

        Cached per (runtime, key, stat). TableError if the runtime is unknown or no module has
        this key/stat on it.
        """
        return self._extended(runtime, key, stat)[:-1]

    def sum_indices(self, idx: Any, runtime: str, key: str = "Layers Time",
                    stat: str = "Avg_Time") -> np.ndarray:
        """Accumulated latency (µs) per architecture, as a float64 array of length ``n_arch``.

        ``idx`` is a 2-D integer array ``(n_arch, n_modules)`` of row indices from
        :meth:`index_of`, padded with -1 for shorter architectures (padding adds 0), or a
        list of 1-D index arrays (padded here). No Python loop runs per module: one gather
        from the cached column plus a trailing 0.0 (index -1) and one row sum. Raises
        TableError naming a module whose value is missing for this runtime/key/stat, and
        ValueError for a malformed ``idx`` (not 2-D, not integer, index < -1 or >= len(uids)).
        """
        ext = self._extended(runtime, key, stat)
        a = self._index_matrix(idx)
        n = len(self._uids)
        if a.size:
            lo, hi = int(a.min()), int(a.max())
            if lo < -1 or hi >= n:
                raise ValueError(f"index {lo if lo < -1 else hi} out of range: indices must be in "
                                 f"[0, {n}) or -1 for padding")
        vals = np.take(ext, a)  # -1 reads the trailing 0.0; np.take is ~7x faster than ext[a]
        sums = vals.sum(axis=1)
        bad = np.flatnonzero(np.isnan(sums))
        if bad.size:
            row = int(bad[0])
            col = int(np.flatnonzero(np.isnan(vals[row]))[0])
            uid = self._uids[int(a[row, col])]
            has = ", ".join(sorted(self._data[uid]))
            raise TableError(f"module {uid!r} has no {key!r} {stat!r} for runtime {runtime!r}"
                             f"{self._in()} (architecture {row}; {bad.size} of {sums.size} architectures "
                             f"affected); the module was measured on: {has}")
        return sums

    @staticmethod
    def _index_matrix(idx: Any) -> np.ndarray:
        if isinstance(idx, np.ndarray):
            if idx.ndim != 2:
                raise ValueError(f"idx must be 2-D (n_arch, n_modules), got shape {idx.shape}; "
                                 "wrap one architecture as [idx]")
            if idx.size and not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"idx must hold integers, not {idx.dtype}")
            return idx
        rows = []
        for i, r in enumerate(idx):
            a = np.asarray(r)
            if a.ndim != 1:
                raise ValueError(f"architecture {i}: expected a 1-D index array, got shape {a.shape}; "
                                 "pass a list of index arrays or a 2-D array")
            if a.size and not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"architecture {i}: indices must be integers, not {a.dtype}")
            rows.append(a.astype(np.int64, copy=False))
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        return _pad([r.size for r in rows], flat)

    def sum_uids(self, archs: Iterable[Sequence[str]], runtime: str, key: str = "Layers Time",
                 stat: str = "Avg_Time") -> np.ndarray:
        """Like :meth:`sum_indices` for architectures given as lists of UIDs (ragged allowed).

        For repeated queries, call :meth:`index_of` once and reuse the indices instead.
        """
        if isinstance(archs, str):
            raise ValueError("sum_uids takes a list of architectures (lists of UIDs); wrap one as [uids]")
        archs = list(archs)
        if any(isinstance(a, str) for a in archs):
            raise ValueError("sum_uids takes a list of architectures (lists of UIDs), not a list of "
                             "UIDs; wrap one architecture as [uids]")
        lengths = [len(a) for a in archs]
        flat = self.index_of([u for a in archs for u in a])
        return self.sum_indices(_pad(lengths, flat), runtime, key, stat)
