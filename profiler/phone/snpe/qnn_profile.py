"""Pure parser of ``qnn-profile-viewer --input_log qnn-profiling-data_0.log`` text (QNN/QAIRT 2.x).

Layout (QNN 2.13, HTP)::

    Qnn Init/Prepare/Finalize/De-Init/Execute/Lib-Load Statistics:
    --- Init Stats:
    ---
        NetRun:  331158 us
    Finalize Stats:
    --- Graph 0 (model):
        NetRun:  256372 us
        Backend (RPC (finalize) time): 4922 us
    Execute Stats (Average):
    --- Total Inference Time:
    --- Graph 0 (model):
        NetRun:  2952 us
        Backend (Number of HVX threads used): 4 count
        Backend (QNN (execute) time): 2949 us
    Execute Stats (Overall):
    ---
        NetRun IPS:  214.8888 inf/sec

Each ``Key: value unit`` line lands in ``sections[section]`` (graph statistics keyed
``"Graph 0 (model)/<key>"``). With ``--profiling_level detailed`` the HTP backend adds
``Backend (Accelerator (execute) time (cycles)): N cycles`` and one ``<op>:OpId_N (cycles): N
cycles`` line per op; those are the ``ops`` (``Input OpId_N`` is the input, ``Output OpId_N``
an extra op; neither is summed into Layers Time).

One text is one ``qnn-net-run`` (its statistics are averages over the input list's inferences),
i.e. one run. Latency keys: ``Total Inference Time`` = execute ``NetRun``, ``Forward Propagate``
= ``Backend (QNN (execute) time)``, ``Layers Time`` = the ops' sum when they are in µs (or
cycles converted with ``clock_hz``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

from profiler.errors import ResultsError
from profiler.phone.snpe.diagview import FORWARD_PROPAGATE, LAYERS_TIME, TOTAL_INFERENCE, Measure
from profiler.phone.snpe.results import ImportedLayer, ImportedProfile

_NUM = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_VALUE_RE = re.compile(rf"^(?P<key>.+?):\s+(?P<value>{_NUM})\s*(?P<unit>[A-Za-z/%.]*)$")
_GRAPH_RE = re.compile(r"^---\s*(?P<graph>Graph \d+ \(.*\)):$")
_SECTION_RE = re.compile(r"^(?:---\s*)?(?P<name>[A-Z][^:]*(?:Stats|Statistics|Time)[^:]*):$")
_OP_RE = re.compile(r"^(?P<name>.*?OpId_\d+) \(cycles\)$")
_IO_RE = re.compile(r"^(Input|Output) OpId_\d+$")
_EXECUTE = "Execute Stats (Average)"
_UNITS = {"us": "us", "cycles": "cycles", "count": "count", "inf/sec": "inf/sec", "ms": "ms"}


@dataclass
class QnnOp:
    index: int
    name: str
    value: float
    unit: str
    role: str  # "layer" | "input" | "extra"


@dataclass
class QnnProfile:
    source: str
    sections: Dict[str, Dict[str, Measure]] = field(default_factory=dict)
    ops: List[QnnOp] = field(default_factory=list)

    def execute(self, key: str) -> Optional[Measure]:
        """A statistic of the averaged execute section (first graph), e.g. ``NetRun``."""
        for k, m in self.sections.get(_EXECUTE, {}).items():
            if k.split("/", 1)[-1] == key:
                return m
        return None

    @property
    def layers_unit(self) -> Optional[str]:
        units = {op.unit for op in self.ops if op.role == "layer"}
        return None if not units else (units.pop() if len(units) == 1 else "mixed")

    def latencies(self, clock_hz: Optional[float] = None) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for key, name in ((TOTAL_INFERENCE, "NetRun"), (FORWARD_PROPAGATE, "Backend (QNN (execute) time)")):
            m = self.execute(name)
            if m is not None and m.unit == "us":
                out[key] = m.value
        counted = [op for op in self.ops if op.role == "layer"]
        if counted:
            unit = self.layers_unit
            if unit == "us":
                out[LAYERS_TIME] = sum(op.value for op in counted)
            elif unit == "cycles" and clock_hz:
                out[LAYERS_TIME] = sum(op.value for op in counted) * 1e6 / clock_hz
        return out

    def to_profile(self, runtime: str = "HTP", clock_hz: Optional[float] = None) -> ImportedProfile:
        """This run as an :class:`ImportedProfile` (one sample per LatencyKey)."""
        stats = {f"{sec}/{k}": m.value for sec, d in self.sections.items() for k, m in d.items() if m.unit == "us"}
        layers = [ImportedLayer(op.index, op.name, None, op.value, op.unit, runtime) for op in self.ops]
        return ImportedProfile("qnn-profile-viewer", self.source, runtime,
                               samples={k: [v] for k, v in self.latencies(clock_hz).items()}, runs=1,
                               layers=layers, stats=stats)


def parse_qnn_profile(text: str, source: str = "<qnn-profile-viewer output>") -> QnnProfile:
    """Parse qnn-profile-viewer text; :class:`ResultsError` (one line, naming ``source``) otherwise."""
    if "SNPE Statistics" in text or "SNPE Execute Statistics" in text:
        raise ResultsError(f"{source}: this is snpe-diagview output (SNPE), not qnn-profile-viewer output; "
                           f"read it with profiler.phone.snpe.diagview.parse_diagview")
    prof = QnnProfile(source)
    section: Optional[str] = None
    graph: Optional[str] = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line == "---":
            continue
        g = _GRAPH_RE.match(line)
        if g:
            graph = g.group("graph")
            continue
        m = _VALUE_RE.match(line)
        if m and section is not None:
            unit = m.group("unit")
            if unit and unit not in _UNITS:
                raise ResultsError(f"{source}: line {lineno}: unknown unit {unit!r} in {line!r}")
            key, value = m.group("key").strip(), float(m.group("value"))
            op = _OP_RE.match(key)
            if op and section == _EXECUTE:
                name = op.group("name")
                io = _IO_RE.match(name)
                role = "layer" if not io else ("input" if io.group(1) == "Input" else "extra")
                prof.ops.append(QnnOp(len(prof.ops), name, value, unit, role))
                continue
            prof.sections.setdefault(section, {})[f"{graph}/{key}" if graph else key] = Measure(value, unit)
            continue
        s = _SECTION_RE.match(line)
        if s:
            name = s.group("name").strip()
            if name == "Total Inference Time":  # "--- Total Inference Time:" heads the averaged graphs
                continue
            section, graph = name, None
            prof.sections.setdefault(section, {})
            continue
        if section is None and line.startswith("Qnn "):
            continue
        raise ResultsError(f"{source}: line {lineno}: unreadable qnn-profile-viewer line {line[:80]!r} "
                           f"(corrupt or truncated output)")
    if _EXECUTE not in prof.sections:
        raise ResultsError(f"{source}: no 'Execute Stats (Average):' section; not qnn-profile-viewer output, "
                           f"or qnn-net-run ran without --profiling_level")
    if prof.execute("NetRun") is None:
        raise ResultsError(f"{source}: 'Execute Stats (Average)' has no 'NetRun' line (truncated output?)")
    return prof


def parse_qnn_profile_file(path: Union[str, Path]) -> QnnProfile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ResultsError(f"{path}: cannot read qnn-profile-viewer output ({e.strerror})") from None
    return parse_qnn_profile(text, str(path))


__all__ = ["QnnOp", "QnnProfile", "parse_qnn_profile", "parse_qnn_profile_file"]
