"""Import results written by the SDK's own ``snpe_bench.py`` (``benchmark_stats_<Name>.csv/.json``).

CSV (``csv.writer``, rows end in ``\\r\\n``): a ``SNPE SDK version:`` row, a ``Configuration
used:`` block, a ``Device Info:`` block, then one table per measurement type::

    "", "", " ", "<flavor>_timing(<N> runs)", " ", " ", " ", <next benchmark>...
    "", "", " ", "avg (us)", "max (us)", "min (us)", "runtime", ...
    "", "", <row name>, avg, max, min, runtime, ...

SNPE 1.17-era files have no ``runtime`` column (3 columns per benchmark); both are read.

JSON (``-json``): a flat object with ``"SNPE SDK version:"``, device and config keys, ``"Units"``
and ``"Execution_Data": {flavor: {row name: {"Avg_Time", "Max_Time", "Min_Time"[, "Runtime"]}}}``.

Per flavor (``CPU``, ``GPU_FP16``, ``DSP_ub_tf8``, ...) we return the rows and the three
LatencyKeys, where ``Layers Time`` sums the ``layer_NNN (...)`` rows except ``Type:data`` ones,
Min/Avg/Max each summed separately (as sony/nnabla-nas did). Times are µs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from profiler.errors import ResultsError

STAT_KEYS = ("Min_Time", "Avg_Time", "Max_Time")
SDK_VERSION_KEY = "SNPE SDK version:"
_HEADER_RE = re.compile(r"^(?P<flavor>.+)_(?P<measure>timing|mem|power)\((?P<runs>\d+) runs?(?:, (?P<sleep>\d+)s sleep)?\)$")
_LAYER_RE = re.compile(r"^layer_(?P<idx>\d+) \((?:Name:(?P<name>.*) Type:(?P<type>.*)|unknown)\)$")


@dataclass
class BenchFlavor:
    """One benchmarked flavor (runtime + buffer mode) with its rows, in µs."""

    flavor: str
    runs: Optional[int] = None
    rows: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def runtime(self) -> str:
        """The runtime part of the flavor: ``DSP_ub_tf8`` -> ``DSP``, ``GPU_FP16`` -> ``GPU_FP16``."""
        return re.sub(r"_ub_(float|tf8|tf16)$", "", self.flavor)

    def layer_rows(self) -> List[Tuple[int, Optional[str], Optional[str], Dict[str, Any]]]:
        """``[(index, name, type, row), ...]`` for the ``layer_NNN`` rows, in index order."""
        out = []
        for key, row in self.rows.items():
            m = _LAYER_RE.match(key)
            if m:
                out.append((int(m.group("idx")), m.group("name"), m.group("type"), row))
        return sorted(out, key=lambda t: t[0])

    def layers_time(self) -> Optional[Dict[str, float]]:
        """Min/Avg/Max summed over layer rows except ``Type:data``; None without layer rows."""
        layers = [row for _, _, typ, row in self.layer_rows() if typ != "data"]
        if not layers:
            return None
        return {k: float(sum(row[k] for row in layers)) for k in STAT_KEYS}

    def latencies(self) -> Dict[str, Dict[str, float]]:
        """``{LatencyKey: {"Min_Time", "Avg_Time", "Max_Time"}}`` for the keys present."""
        out = {}
        for key in ("Forward Propagate", "Total Inference Time"):
            if key in self.rows:
                out[key] = {k: float(self.rows[key][k]) for k in STAT_KEYS}
        lt = self.layers_time()
        if lt is not None:
            out["Layers Time"] = lt
        return out


@dataclass
class BenchImport:
    """A whole snpe_bench result file."""

    source: str
    sdk_version: Optional[str]
    config: Dict[str, str] = field(default_factory=dict)
    device: Dict[str, str] = field(default_factory=dict)
    flavors: Dict[str, BenchFlavor] = field(default_factory=dict)


def parse_bench_csv(text: str, source: str = "<benchmark_stats csv>") -> BenchImport:
    """Parse a ``benchmark_stats_<Name>.csv``; timing tables only (mem tables are skipped)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = BenchImport(source, None)
    block: Optional[str] = None
    i = 0
    while i < len(rows):
        row = rows[i]
        cells = [c.strip() for c in row]
        i += 1
        if not any(cells):
            block = None
            continue
        if cells[0] == SDK_VERSION_KEY:
            out.sdk_version = cells[1] if len(cells) > 1 else None
            continue
        if cells[0] in ("Configuration used:", "Device Info:"):
            block = "config" if cells[0].startswith("Config") else "device"
            continue
        if block is not None and cells[0]:
            target = out.config if block == "config" else out.device
            target.setdefault(cells[0], ",".join(row[1:]))
            continue
        # a measurement table: header row A (flavors) then row B (avg/max/min[/runtime])
        if i < len(rows) and any(c.strip().startswith("avg (") for c in rows[i]):
            i = _read_table(rows, i - 1, out, source)
            continue
    if not out.flavors:
        raise ResultsError(f"{source}: no timing table found (expected a row like "
                           f"',, ,CPU_timing(N runs), ...' followed by 'avg (us),max (us),min (us)')")
    return out


def _read_table(rows: List[List[str]], start: int, out: BenchImport, source: str) -> int:
    head, sub = rows[start], rows[start + 1]
    avg_cols = [j for j, c in enumerate(sub) if c.strip().startswith("avg (")]
    unit = sub[avg_cols[0]].strip()[len("avg ("):-1]
    width = avg_cols[1] - avg_cols[0] if len(avg_cols) > 1 else (4 if len(sub) > avg_cols[0] + 3 and sub[avg_cols[0] + 3].strip() == "runtime" else 3)
    benches = []
    for j in avg_cols:
        m = _HEADER_RE.match(head[j].strip()) if j < len(head) else None
        if not m:
            raise ResultsError(f"{source}: row {start + 1}: cannot read benchmark header "
                               f"{head[j] if j < len(head) else ''!r} (expected '<flavor>_timing(N runs)')")
        if [sub[j + k].strip() for k in range(3)] != [f"avg ({unit})", f"max ({unit})", f"min ({unit})"]:
            raise ResultsError(f"{source}: row {start + 2}: expected avg/max/min columns at column {j + 1}")
        benches.append((j, m))
    timing = unit == "us" and all(m.group("measure") == "timing" for _, m in benches)
    flavors = {}
    if timing:
        for j, m in benches:
            flavors[j] = out.flavors.setdefault(m.group("flavor"), BenchFlavor(m.group("flavor"), int(m.group("runs"))))
    i = start + 2
    while i < len(rows) and any(c.strip() for c in rows[i]):
        row = rows[i]
        i += 1
        if not timing:
            continue
        name = row[2].strip() if len(row) > 2 else ""
        if not name:
            raise ResultsError(f"{source}: row {i}: data row without a name in column 3")
        for j, _ in benches:
            cells = [row[j + k].strip() if j + k < len(row) else "" for k in range(width)]
            if not any(cells[:3]):
                continue  # this benchmark has no such row (1.x pads with spaces)
            try:
                avg, mx, mn = (_number(c) for c in cells[:3])
            except ValueError:
                raise ResultsError(f"{source}: row {i}: non-numeric time in {cells[:3]} for {name!r}") from None
            rec: Dict[str, Any] = {"Min_Time": mn, "Avg_Time": avg, "Max_Time": mx}
            if width == 4 and cells[3]:
                rec["Runtime"] = cells[3]
            flavors[j].rows[name] = rec
    return i


def parse_bench_json(data: Any, source: str = "<benchmark_stats json>") -> BenchImport:
    """Parse a decoded ``benchmark_stats_<Name>.json`` object."""
    if not isinstance(data, dict) or "Execution_Data" not in data:
        raise ResultsError(f"{source}: not a snpe_bench JSON result (no Execution_Data)")
    units = data.get("Units", "us")
    if units != "us":
        raise ResultsError(f"{source}: Units is {units!r}, not 'us': snpe_bench overwrote the timing "
                           f"results with the memory ones; rerun with Measurements [\"timing\"] only")
    out = BenchImport(source, data.get(SDK_VERSION_KEY))
    for key, value in data.items():
        if key in ("Execution_Data", "Units", SDK_VERSION_KEY):
            continue
        target = out.device if key.startswith("ro.") or key in ("Meta_Build_ID", "OS_Type") else out.config
        target[key] = value if isinstance(value, str) else json.dumps(value)
    execution = data["Execution_Data"]
    if not isinstance(execution, dict):
        raise ResultsError(f"{source}: Execution_Data must be an object of flavors")
    for flavor, rows in execution.items():
        if flavor.endswith("_mem"):
            continue
        if not isinstance(rows, dict):
            raise ResultsError(f"{source}: Execution_Data[{flavor!r}] must be an object of rows")
        bf = BenchFlavor(flavor, _int_or_none(data.get("Runs")))
        for name, rec in rows.items():
            try:
                clean = {k: _number(rec[k]) for k in STAT_KEYS}
            except (KeyError, TypeError, ValueError):
                raise ResultsError(f"{source}: Execution_Data[{flavor!r}][{name!r}] needs numeric "
                                   f"Min_Time, Avg_Time and Max_Time") from None
            if "Runtime" in rec:
                clean["Runtime"] = str(rec["Runtime"])
            bf.rows[name] = clean
        out.flavors[flavor] = bf
    if not out.flavors:
        raise ResultsError(f"{source}: Execution_Data has no timing results")
    return out


def load_bench_results(path: Union[str, Path]) -> BenchImport:
    """Read a ``benchmark_stats_<Name>.csv`` or ``.json`` file (chosen by extension)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ResultsError(f"{path}: cannot read snpe_bench results ({e.strerror})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ResultsError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
        return parse_bench_json(data, str(path))
    if path.suffix.lower() == ".csv":
        return parse_bench_csv(text, str(path))
    raise ResultsError(f"{path}: expected a benchmark_stats_<Name>.csv or .json file")


def _number(text: Any) -> float:
    if isinstance(text, bool):
        raise ValueError(text)
    return float(text)


def _int_or_none(v: Any) -> Optional[int]:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


__all__ = ["BenchFlavor", "BenchImport", "load_bench_results", "parse_bench_csv", "parse_bench_json"]


def bench_profiles(bench: BenchImport) -> List["ImportedProfile"]:
    """One :class:`~profiler.phone.snpe.results.ImportedProfile` per flavor with a latency row.

    Only Min/Avg/Max are known (``summary``, exactly as written); ``runs`` is the header's run
    count, else the config's ``Runs``.
    """
    from profiler.phone.snpe.results import ImportedLayer, ImportedProfile

    runs_cfg = _int_or_none(bench.config.get("Runs"))
    out = []
    for flavor in bench.flavors.values():
        lat = flavor.latencies()
        if not lat:
            continue
        layers = [ImportedLayer(idx, name or "", typ, float(row["Avg_Time"]), "us", row.get("Runtime"))
                  for idx, name, typ, row in flavor.layer_rows()]
        stats = {k: float(v["Avg_Time"]) for k, v in flavor.rows.items()
                 if not _LAYER_RE.match(k) and k not in ("Forward Propagate", "Total Inference Time")}
        out.append(ImportedProfile("snpe-bench", bench.source, flavor.flavor, summary=lat,
                                   runs=flavor.runs or runs_cfg, layers=layers, stats=stats,
                                   device=dict(bench.device), sdk_version=bench.sdk_version))
    return out


__all__ += ["bench_profiles"]
