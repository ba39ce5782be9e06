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

``Layers Time`` is the sum over the DLC's own layers except the input layer. Every layer line
gets a ``role``: ``"layer"`` (a DLC layer, summed), ``"input"`` (the data/input layer, not
summed) or ``"extra"`` (an op that is no DLC layer, e.g. the HTP ``Output OpId_N`` op or a bare
``OpId_N``; kept in :attr:`DiagRun.extra_ops`, not summed):

* indented layout: ``Input OpId_N`` is the input, ``Output OpId_N`` and unnamed ``OpId_N`` ops
  are extra; with dlc-info, a named op that is not a DLC layer is extra too;
* flat layout (no names): with dlc-info, a log with as many layers as the DLC is matched by index
  (SNPE 1.x, the ``data`` layer is the input); one layer more than the DLC means the leading one
  is the input layer (SNPE 2.0-2.9 dlc-info lists no data layer); two more on DSP are the HTP
  Input and Output ops (input, extra); any other count is an error.
  Without dlc-info the log's ``Software library version`` decides: 1.x prints the data layer
  first (layer 0 is the input); 2.x has no data layers (its layer 0 is an op, e.g. ``0: 1419 us
  : CPU`` in a real 2.9 MobileNetV2 log), so every layer is counted.

``--profiling_level linting`` adds per-op ``Wait (Scheduler) time`` / ``Overlap time`` /
``Overlap (wait) time`` lines (the last two followed by the names of the background ops) and a
``Resources:`` line; they are kept in :attr:`LayerTime.linting`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
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
_BARE_OPID_RE = re.compile(r"^OpId_\d+(?: \(cycles\))?$")
_LINT_RE = re.compile(rf"^(?P<key>Wait \(Scheduler\) time|Overlap time|Overlap \(wait\) time):\s*"
                      rf"(?P<value>{_NUM})\s*(?P<unit>[A-Za-z]*)$")
_RESOURCES_RE = re.compile(r"^Resources:\s*(?P<list>.*)$")
_HTP_SUBNET_RE = re.compile(rf"^(?P<runtime>HTP) Subnet\s+(?P<idx>\d+)\s*:\s*(?P<value>{_NUM})\s*(?P<unit>[A-Za-z]*)$")
_QNN_MARKERS = ("Qnn Init/Prepare/Finalize", "Execute Stats (Average)", "NetRun IPS", "--- Graph ")
KNOWN_STATS = (
    "Load", "Deserialize", "Create", "Init", "De-Init", "Create Network(s)", "RPC Init Time",
    "Snpe Accelerator Init Time", "Accelerator Init Time", "Total Inference Time",
    "Forward Propagate Time", "RPC Execute Time", "Snpe Accelerator Time", "Accelerator Time",
    "Misc Accelerator Time", "Num times yield occurred")
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
    role: str = "layer"  # "layer" (a DLC layer, summed) | "input" | "extra" (not a DLC layer)
    linting: Optional[Mapping[str, object]] = None  # --profiling_level linting entries

    @property
    def is_input(self) -> bool:
        """The input/data layer: excluded from Layers Time."""
        return self.role == "input"

    @property
    def is_extra(self) -> bool:
        """An op that is not a DLC layer (e.g. HTP ``Output OpId_N``): excluded from Layers Time."""
        return self.role == "extra"


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
        """The layers summed into Layers Time: the DLC's own layers except the input layer."""
        return [lt for lt in self.layers if lt.role == "layer"]

    @property
    def extra_ops(self) -> List[LayerTime]:
        """Ops diagview prints that are not DLC layers (HTP ``Output OpId_N``, bare ``OpId_N``)."""
        return [lt for lt in self.layers if lt.role == "extra"]

    @property
    def input_layers(self) -> List[LayerTime]:
        return [lt for lt in self.layers if lt.role == "input"]

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
    if any(m in text for m in _QNN_MARKERS) and "SNPE Statistics" not in text \
            and "SNPE Execute Statistics" not in text:
        raise ResultsError(f"{source}: this is qnn-profile-viewer output (QNN), not snpe-diagview "
                           f"output; read it with profiler.phone.snpe.qnn_profile.parse_qnn_profile")
    parser = _Parser(source)
    for lineno, line in enumerate(text.splitlines(), 1):
        parser.feed(line, lineno)
    runs = parser.finish()
    if not runs:
        raise ResultsError(f"{source}: no SNPE statistics found (no 'Total Inference Time' under "
                           f"'Average SNPE Statistics:' or 'SNPE Execute Statistics'); not snpe-diagview "
                           f"output, or the log was written with profiling level off")
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
        run.layers = _finish_layers(run, clock_hz, layer_types, where)
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
        self.lint: Optional[Dict[str, object]] = None  # linting entries of the last layer line
        self.lint_list: Optional[List[str]] = None     # background-op names being collected

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
        self.lint = self.lint_list = None
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
        if line in ("Per-Subnet Execution Times:", "Per-Graph Execution Times:"):
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
            key = m.group("key").strip()
            if key not in KNOWN_STATS:
                close = difflib.get_close_matches(key, KNOWN_STATS, n=1, cutoff=0.8)
                if close:
                    raise self._error(lineno, f"unknown statistic {key!r} (misspelled {close[0]!r}?)", raw)
            self.run.stats[key] = Measure(float(m.group("value")), _unit(unit))
            return
        if self.section == "subnets":
            m = _SUBNET_RE.match(line) or _HTP_SUBNET_RE.match(line)
            if not m:
                raise self._error(lineno, "unreadable subnet line", raw)
            self.run.subnets.append((int(m.group("idx")), m.group("runtime"),
                                     Measure(float(m.group("value")), _unit(m.group("unit")))))
            return
        if self.section == "layers":
            m = _LAYER_RE.match(line)
            if not m:
                if self._linting_line(line, lineno, raw):
                    return
                raise self._error(lineno, "unreadable layer line", raw)
            idx = int(m.group("idx"))
            if idx in self.layer_lines:
                raise self._error(lineno, f"layer {idx} repeated (first on line {self.layer_lines[idx]})", raw)
            expected = len(self.layer_lines)
            if idx != expected:
                what = "does not start at 0" if expected == 0 else f"jumps from {expected - 1} to {idx}"
                raise self._error(lineno, f"layer index {what} (layer {expected} missing)", raw)
            self.layer_lines[idx] = lineno
            self.lint, self.lint_list = None, None
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

    def _linting_line(self, line: str, lineno: int, raw: str) -> bool:
        """A ``--profiling_level linting`` line under the last layer line; False if it is none."""
        if self.run is None or not self.run.layers:
            return False
        m = _LINT_RE.match(line)
        r = _RESOURCES_RE.match(line)
        if not m and not r and self.lint_list is None:
            return False
        if self.lint is None:
            self.lint = {}
            last = self.run.layers[-1]
            self.run.layers[-1] = replace(last, linting=self.lint)
        if m:
            unit = _unit(m.group("unit"))
            if unit not in _LAYER_UNITS and not (unit == "" and float(m.group("value")) == 0):
                raise self._error(lineno, f"unknown linting time unit {m.group('unit')!r}", raw)
            key = m.group("key")
            self.lint[key] = Measure(float(m.group("value")), unit)
            if key.startswith("Overlap"):
                self.lint_list = []
                self.lint[key + " ops"] = self.lint_list
            else:
                self.lint_list = None
            return True
        if r:
            self.lint["Resources"] = [x.strip() for x in r.group("list").split(",") if x.strip()]
            self.lint_list = None
            return True
        self.lint_list.append(line)  # a background op named under Overlap / Overlap (wait)
        return True

    def finish(self) -> List[DiagRun]:
        if self.run is not None and self._has_content(self.run):
            self.runs.append(self.run)
        return self.runs


def _unit(unit: str) -> str:
    u = unit.strip()
    return "" if u.upper() == "NONE" else u


def _major(version: Optional[str]) -> Optional[int]:
    m = re.match(r"\s*(\d+)\.", version or "")
    return int(m.group(1)) if m else None


def _clean_name(label: Optional[str]) -> Optional[str]:
    if label is None:
        return None
    m = _OPID_RE.match(label)
    return m.group("base") if m else label


def _finish_layers(run: DiagRun, clock_hz: Optional[float],
                   layer_types: Optional[Sequence[Tuple[str, str]]], where: str) -> List[LayerTime]:
    """Names, types and roles (see the module docstring); cycles -> µs when a clock is given."""
    named = any(lt.label is not None for lt in run.layers)
    n_log = len(run.layers)
    resolved: List[Tuple[Optional[str], Optional[str], str]] = []  # (name, type, role)
    if not named:
        if layer_types is not None and n_log:
            n_dlc = len(layer_types)
            if n_log == n_dlc:
                resolved = [(name, typ, "input" if typ.lower() in INPUT_TYPES else "layer")
                            for name, typ in layer_types]
            elif n_log == n_dlc + 1 and not any(t.lower() in INPUT_TYPES for _, t in layer_types):
                resolved = [(None, None, "input")] + [(name, typ, "layer") for name, typ in layer_types]
            elif n_log == n_dlc + 2 and all(lt.runtime == "DSP" for lt in run.layers):
                # HTP brackets the DLC's ops with its Input and Output ops (named in the indented layout)
                resolved = ([(None, "Input", "input")] + [(name, typ, "layer") for name, typ in layer_types]
                            + [(None, "Output", "extra")])
            else:
                raise ResultsError(f"{where}: diagview prints {n_log} layers but dlc-info lists {n_dlc}; "
                                   f"the dlc-info is not of the DLC this log ran (expected {n_dlc} layers, "
                                   f"or {n_dlc} + 1 input layer, or {n_dlc} + 2 HTP Input/Output ops on DSP)")
        else:
            # SNPE 1.x prints the data layer first; SNPE 2 has no data layers (its layer 0 is an op)
            major = _major(run.sdk_version)
            resolved = [(None, None, "input" if pos == 0 and major == 1 else "layer") for pos in range(n_log)]
    else:
        by_name: Mapping[str, str] = dict(layer_types or ())
        matched = 0
        for lt in run.layers:
            label = lt.label or ""
            name = _clean_name(lt.label)
            io = _HTP_IO_RE.match(label)
            if io:
                resolved.append((name, io.group(1), "input" if io.group(1) == "Input" else "extra"))
            elif _BARE_OPID_RE.match(label):
                resolved.append((name, None, "extra"))
            elif layer_types is not None:
                typ = by_name.get(name)
                matched += typ is not None
                role = "extra" if typ is None else ("input" if typ.lower() in INPUT_TYPES else "layer")
                resolved.append((name, typ, role))
            else:
                resolved.append((name, None, "layer"))
        if layer_types is not None and matched == 0 and any(r == "extra" and t is None and not
                                                            _BARE_OPID_RE.match(lt.label or "")
                                                            for (_, t, r), lt in zip(resolved, run.layers)):
            raise ResultsError(f"{where}: none of the {n_log} layer names is a layer of the dlc-info "
                               f"given (first: {run.layers[0].label!r}); the dlc-info is of another DLC")
    out = []
    for lt, (name, typ, role) in zip(run.layers, resolved):
        value, unit = lt.value, lt.unit
        if unit == "cycles" and clock_hz is not None:
            value, unit = value * 1e6 / clock_hz, "us"
        out.append(replace(lt, name=name, type=typ, value=value, unit=unit, role=role))
    return out


__all__ = [
    "DiagRun", "KNOWN_STATS", "FORWARD_PROPAGATE", "LATENCY_KEYS", "LAYERS_TIME", "LayerTime", "Measure",
    "TOTAL_INFERENCE", "parse_clock", "parse_diagview", "parse_diagview_file", "summarize",
]
