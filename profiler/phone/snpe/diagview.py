"""Pure parser of ``snpe-diagview --input_log SNPEDiag_0.log`` standard output.

Two text layouts exist (both end in the same data):

* **flat** (SNPE 1.x up to about 2.9): ``Dnn Runtime Load/Deserialize/Create/De-Init
  Statistics:``, ``Average SNPE Statistics:``, ``Layer Times:`` and layer lines
  ``<idx>: <value> <unit> : <RUNTIME>``;
* **indented** (newer 2.x, e.g. 2.37): ``SNPE Create Statistics:``, ``SNPE Execute Statistics
  (Averaged):``, ``Per-Subnet Execution Times:``, ``Per-Layer Execution Times:`` and layer
  lines ``<idx>: <name> : <value> <unit> : <RUNTIME>``.

Units are ``us`` or ``cycles`` (DSP/HTP layers since SNPE 1.63); a zero may print as ``0
NONE`` or ``0`` with no unit. Cycles are converted to microseconds only when the caller gives
the DSP clock; otherwise they stay cycles and the unit says so. Each diagview output is one
*run* (its statistics are already averages over the inferences of the input list); several
outputs concatenated (``Log File Created:`` repeated) give several runs.

``Layers Time`` is the sum of the per-layer values excluding input/data layers (a layer whose
dlc-info type is ``data``/``input``, or the HTP ``Input OpId_N`` op).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from profiler.errors import ResultsError
from profiler.keys import FORWARD_PROPAGATE, LATENCY_KEYS, LAYERS_TIME, TOTAL_INFERENCE

INPUT_TYPES = frozenset({"data", "input"})

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_CREATE_HEADERS = ("Dnn Runtime Load/Deserialize/Create/De-Init Statistics:", "SNPE Create Statistics:")
_LAYER_HEADERS = ("Layer Times:", "Per-Layer Execution Times:")
_EXECUTE_RE = re.compile(r"^(Average SNPE Statistics|SNPE Execute Statistics.*|.*Execute Statistics.*):$")
_STAT_RE = re.compile(rf"^(?P<key>[^:]+?):\s*(?P<value>{_NUM})?\s*(?P<unit>[A-Za-z]*)$")
_LAYER_RE = re.compile(
    rf"^(?P<idx>\d+):\s+(?:(?P<name>.*?)\s+:\s+)?(?P<value>{_NUM})\s*(?P<unit>[A-Za-z]*)"
    rf"(?:\s*:\s*(?P<runtime>[A-Za-z0-9_]+))?$")
_SUBNET_RE = re.compile(rf"^Subnet\s+(?P<idx>\d+)\s*\((?P<runtime>[^)]*)\)\s*:\s*(?P<value>{_NUM})\s*(?P<unit>[A-Za-z]*)$")
_OPID_RE = re.compile(r"^(?P<base>.*?)(?::OpId_\d+)?(?: \(cycles\))?$")
_HTP_IO_RE = re.compile(r"^(Input|Output) OpId_\d+")
_PREAMBLE_RE = re.compile(r"^(Interpreting file serialized with .*|[A-Z][A-Z ()]*[A-Z)]:\s*\d+)$")
_LAYER_UNITS = ("us", "cycles")
_CLOCK_RE = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(?P<unit>[kMG]?Hz)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Measure:
    """A printed value with its unit: ``us``, ``cycles`` or ``""`` (none printed / NONE)."""

    value: float
    unit: str

    def us(self, clock_hz: Optional[float] = None) -> Optional[float]:
        """The value in microseconds, or None if it is in cycles and no clock is known."""
        if self.unit == "us":
            return self.value
        if self.unit == "cycles":
            return None if clock_hz is None else self.value * 1e6 / clock_hz
        return 0.0 if self.value == 0 else None


@dataclass(frozen=True)
class LayerTime:
    """One per-layer line. ``value``/``unit`` are µs when a clock converted them, else as printed."""

    index: int
    name: Optional[str]
    type: Optional[str]
    value: float
    unit: str
    runtime: str
    label: Optional[str] = None  # the name exactly as printed (indented layout only)

    @property
    def is_input(self) -> bool:
        """An input/data layer: excluded from Layers Time."""
        if self.type is not None and self.type.lower() in INPUT_TYPES:
            return True
        return bool(self.label and self.label.startswith("Input OpId_"))


@dataclass
class DiagRun:
    """Everything one diagview output says. Latency values are per inference, in µs."""

    source: str
    layout: str  # "flat" | "indented"
    averaged: bool = True
    metadata: Dict[str, str] = field(default_factory=dict)
    stats: Dict[str, Measure] = field(default_factory=dict)
    subnets: List[Tuple[int, str, Measure]] = field(default_factory=list)
    layers: List[LayerTime] = field(default_factory=list)
    clock_hz: Optional[float] = None

    @property
    def sdk_version(self) -> Optional[str]:
        return self.metadata.get("Software library version")

    @property
    def total_inference_us(self) -> Optional[float]:
        m = self.stats.get("Total Inference Time")
        return None if m is None else m.us(self.clock_hz)

    @property
    def forward_propagate_us(self) -> Optional[float]:
        m = self.stats.get("Forward Propagate Time")
        return None if m is None else m.us(self.clock_hz)

    @property
    def counted_layers(self) -> List[LayerTime]:
        """The layers summed into Layers Time (all but input/data layers)."""
        return [lt for lt in self.layers if not lt.is_input]

    @property
    def layers_unit(self) -> Optional[str]:
        """``us``, ``cycles``, ``mixed`` (us and cycles, no clock) or None (no layer lines)."""
        units = {lt.unit for lt in self.counted_layers if not (lt.unit == "" and lt.value == 0)}
        if not self.counted_layers:
            return None
        if not units:
            return "us"
        return units.pop() if len(units) == 1 else "mixed"

    @property
    def layers_time(self) -> Optional[float]:
        """Sum of the counted layers in :attr:`layers_unit`; None if no layers or units mixed."""
        unit = self.layers_unit
        if unit is None or unit == "mixed":
            return None
        return float(sum(lt.value for lt in self.counted_layers))

    @property
    def layers_time_us(self) -> Optional[float]:
        return self.layers_time if self.layers_unit == "us" else None

    def latencies(self) -> Dict[str, float]:
        """``{LatencyKey: µs}`` for the keys this run has in microseconds."""
        out: Dict[str, float] = {}
        for key, v in ((FORWARD_PROPAGATE, self.forward_propagate_us),
                       (TOTAL_INFERENCE, self.total_inference_us), (LAYERS_TIME, self.layers_time_us)):
            if v is not None:
                out[key] = v
        return out


def parse_clock(clock: Union[str, float, int]) -> float:
    """A clock frequency in Hz from a number (Hz) or a string like ``"800 MHz"``/``"1.4GHz"``."""
    if isinstance(clock, (int, float)) and not isinstance(clock, bool):
        hz = float(clock)
    else:
        m = _CLOCK_RE.match(str(clock))
        if not m:
            raise ValueError(f"cannot read a clock frequency from {clock!r} (e.g. '800 MHz')")
        scale = {"": 1.0, "hz": 1.0, "khz": 1e3, "mhz": 1e6, "ghz": 1e9}[(m.group("unit") or "").lower()]
        hz = float(m.group("value")) * scale
    if hz <= 0:
        raise ValueError(f"clock frequency must be positive, not {clock!r}")
    return hz


def parse_diagview(text: str, source: str = "<snpe-diagview output>", *,
                   clock_hz: Optional[float] = None,
                   layer_types: Optional[Sequence[Tuple[str, str]]] = None) -> List[DiagRun]:
    """Parse diagview stdout into one :class:`DiagRun` per printed log.

    ``clock_hz`` converts ``cycles`` to µs. ``layer_types`` is the dlc-info op list ``[(name,
    type), ...]`` in DLC order: indented output is matched by layer name; flat output (no names)
    by index, and only when the layer count equals the op count (HTP adds Input/Output ops, so
    counts differ there and nothing is attached). Raises :class:`ResultsError` naming ``source``
    for corrupt or truncated text.
    """
    if "\x00" in text:
        raise ResultsError(f"{source}: binary data; this looks like the SNPEDiag log itself, "
                           f"run 'snpe-diagview --input_log <log>' and parse its output")
    parser = _Parser(source)
    for lineno, line in enumerate(text.splitlines(), 1):
        parser.feed(line, lineno)
    runs = parser.finish()
    if not runs:
        raise ResultsError(f"{source}: no SNPE statistics found; not snpe-diagview output, or the "
                           f"log was written with profiling level off")
    for i, run in enumerate(runs, 1):
        where = f"{source}" + (f" (run {i})" if len(runs) > 1 else "")
        if "Total Inference Time" not in run.stats:
            raise ResultsError(f"{where}: no 'Total Inference Time' line; the diagview output is "
                               f"truncated or the log is incomplete (rerun snpe-net-run)")
        for key in ("Total Inference Time", "Forward Propagate Time"):
            m = run.stats.get(key)
            if m is not None and m.unit not in _LAYER_UNITS and m.value != 0:
                raise ResultsError(f"{where}: '{key}: {m.value:g}' has no time unit (truncated output?)")
        run.clock_hz = clock_hz
        run.layers = _finish_layers(run, clock_hz, layer_types)
    return runs


def parse_diagview_file(path: Union[str, Path], **kwargs) -> List[DiagRun]:
    """Read a saved diagview output file and parse it (see :func:`parse_diagview`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ResultsError(f"{path}: cannot read diagview output ({e.strerror})") from None
    return parse_diagview(text, str(path), **kwargs)


def summarize(runs: Sequence[DiagRun]) -> Dict[str, Dict[str, float]]:
    """``{LatencyKey: {"Min_Time", "Avg_Time", "Max_Time"}}`` over runs (µs, like snpe_bench)."""
    values: Dict[str, List[float]] = {}
    for run in runs:
        for key, v in run.latencies().items():
            values.setdefault(key, []).append(v)
    return {k: {"Min_Time": min(v), "Avg_Time": sum(v) / len(v), "Max_Time": max(v)}
            for k, v in values.items()}


# ---------------------------------------------------------------------------- internals

class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.runs: List[DiagRun] = []
        self.run: Optional[DiagRun] = None
        self.section: Optional[str] = None
        self.pending_meta: Dict[str, str] = {}
        self.layer_lines: Dict[int, int] = {}
        self.layer_has_runtime: Optional[bool] = None

    def _error(self, lineno: int, what: str, line: str) -> ResultsError:
        shown = line.strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        return ResultsError(f"{self.source}: line {lineno}: {what}: {shown!r} (corrupt or truncated "
                            f"snpe-diagview output)")

    def _new_run(self, layout: str) -> DiagRun:
        if self.run is not None and self._has_content(self.run):
            self.runs.append(self.run)
        self.run = DiagRun(self.source, layout, metadata=dict(self.pending_meta))
        self.pending_meta = {}
        self.layer_lines = {}
        self.layer_has_runtime = None
        return self.run

    @staticmethod
    def _has_content(run: DiagRun) -> bool:
        return bool(run.stats or run.layers)

    def feed(self, raw: str, lineno: int) -> None:
        line = raw.strip()
        if not line or set(line) == {"-"}:
            return
        if _PREAMBLE_RE.match(line):  # printed by diagview before each log's header
            self.section = None
            return
        if line.startswith("Log File Created:"):
            if self.run is not None and self._has_content(self.run):
                self.runs.append(self.run)
            self.run = None
            self.section = None
            self.pending_meta = {"Log File Created": line.split(":", 1)[1].strip()}
            return
        if line in _CREATE_HEADERS:
            if self.run is None or self.run.stats.get("Total Inference Time") or self.run.layers:
                self._new_run("indented" if line.startswith("SNPE") else "flat")
            self.section = "create"
            return
        if _EXECUTE_RE.match(line):
            if self.run is None or "Total Inference Time" in self.run.stats:
                self._new_run("indented" if line.startswith("SNPE") else "flat")
            self.run.averaged = "averag" in line.lower()
            self.section = "execute"
            return
        if line in _LAYER_HEADERS:
            if self.run is None:
                raise self._error(lineno, "layer times before any statistics", raw)
            self.section = "layers"
            if line.startswith("Per-Layer"):
                self.run.layout = "indented"
            return
        if line == "Per-Subnet Execution Times:":
            self.section = "subnets"
            return
        if line == "Convert Times:":
            self.section = "convert"
            return
        if self.section is None or self.run is None:
            if ": " in line:  # header metadata (Time Scale, Software library version, ...)
                key, value = line.split(": ", 1)
                if self.run is not None:
                    self.run.metadata[key.strip()] = value.strip()
                else:
                    self.pending_meta[key.strip()] = value.strip()
            return
        if self.section in ("create", "execute"):
            m = _STAT_RE.match(line)
            if not m or m.group("value") is None:
                if m and line.endswith(":") and m.group("unit") == "":
                    self.section = "other"  # an unknown sub-header
                    return
                raise self._error(lineno, "unreadable statistics line", raw)
            unit = m.group("unit")
            self.run.stats[m.group("key").strip()] = Measure(float(m.group("value")), _unit(unit))
            return
        if self.section == "subnets":
            m = _SUBNET_RE.match(line)
            if not m:
                raise self._error(lineno, "unreadable subnet line", raw)
            self.run.subnets.append((int(m.group("idx")), m.group("runtime"),
                                     Measure(float(m.group("value")), _unit(m.group("unit")))))
            return
        if self.section == "layers":
            m = _LAYER_RE.match(line)
            if not m:
                raise self._error(lineno, "unreadable layer line", raw)
            idx = int(m.group("idx"))
            if idx in self.layer_lines:
                raise self._error(lineno, f"layer {idx} repeated (first on line {self.layer_lines[idx]})", raw)
            self.layer_lines[idx] = lineno
            value = float(m.group("value"))
            unit = _unit(m.group("unit"))
            if value < 0:
                raise self._error(lineno, "negative layer time", raw)
            if unit not in _LAYER_UNITS and not (unit == "" and value == 0):
                raise self._error(lineno, f"unknown layer time unit {m.group('unit')!r}", raw)
            has_runtime = m.group("runtime") is not None
            if self.layer_has_runtime is None:
                self.layer_has_runtime = has_runtime
            elif has_runtime != self.layer_has_runtime:
                raise self._error(lineno, "layer line without the runtime column the others have", raw)
            label = m.group("name")
            self.run.layers.append(LayerTime(idx, label, None, value, unit,
                                             m.group("runtime") or "CPU", label))
            return
        # "convert" (AIP buffer conversions) and unknown sections are not needed for latency.

    def finish(self) -> List[DiagRun]:
        if self.run is not None and self._has_content(self.run):
            self.runs.append(self.run)
        return self.runs


def _unit(unit: str) -> str:
    u = unit.strip()
    return "" if u.upper() == "NONE" else u


def _clean_name(label: Optional[str]) -> Optional[str]:
    if label is None:
        return None
    m = _OPID_RE.match(label)
    return m.group("base") if m else label


def _finish_layers(run: DiagRun, clock_hz: Optional[float],
                   layer_types: Optional[Sequence[Tuple[str, str]]]) -> List[LayerTime]:
    by_name: Mapping[str, str] = dict(layer_types or ())
    index_ok = layer_types is not None and all(lt.label is None for lt in run.layers) \
        and len(run.layers) == len(layer_types)
    out = []
    for pos, lt in enumerate(run.layers):
        name = _clean_name(lt.label)
        typ: Optional[str] = None
        if index_ok:
            name, typ = layer_types[pos]
        elif name is not None:
            typ = by_name.get(name)
            io = _HTP_IO_RE.match(lt.label or "")
            if typ is None and io:
                typ = io.group(1)
        value, unit = lt.value, lt.unit
        if unit == "cycles" and clock_hz is not None:
            value, unit = value * 1e6 / clock_hz, "us"
        out.append(LayerTime(lt.index, name, typ, value, unit, lt.runtime, lt.label))
    return out


__all__ = [
    "DiagRun", "FORWARD_PROPAGATE", "LATENCY_KEYS", "LAYERS_TIME", "LayerTime", "Measure",
    "TOTAL_INFERENCE", "parse_clock", "parse_diagview", "parse_diagview_file", "summarize",
]
