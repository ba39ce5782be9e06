"""Pure reader of the CSV ``snpe-diagview --input_log <log> --output <file.csv>`` writes.

No public sample of this file was found (the SNPE docs only say it holds "all diagnostic
data"). QAIRT's profile viewers write the event layout documented for ``qnn-profile-viewer
--output`` and ONNX Runtime's QNN profiling CSV::

    Msg Timestamp,Message,Time,Unit of Measurement,Timing Source,Event Level,Event Identifier
    0,EXECUTE,3100,US,BACKEND,ROOT,QNN (execute) time
    0,NODE,6000,CYCLES,BACKEND,SUB-EVENT,conv:OpId_17 (cycles)

so that is the layout read here; any other header is refused with a message naming it. Each
``EXECUTE`` ROOT row starts a new inference (a run); ``NODE`` SUB-EVENT rows are per-op values
of the current run. Per run: ``Total Inference Time`` = the ROOT value named ``total_event``
(default ``QNN (execute) time``, µs), ``Layers Time`` = its ops in µs (or cycles with
``clock_hz``), HTP ``Input``/``Output OpId_N`` ops excluded.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

from profiler.errors import ResultsError
from profiler.phone.snpe.diagview import LAYERS_TIME, TOTAL_INFERENCE
from profiler.phone.snpe.results import ImportedLayer, ImportedProfile

HEADER = ("Msg Timestamp", "Message", "Time", "Unit of Measurement", "Timing Source", "Event Level",
          "Event Identifier")
_UNITS = {"US": "us", "CYCLES": "cycles", "COUNT": "count", "BYTES": "bytes", "MS": "ms"}
_IO_RE = re.compile(r"^(Input|Output) OpId_\d+")


@dataclass
class CsvRun:
    roots: Dict[str, float] = field(default_factory=dict)       # identifier -> value (unit in root_units)
    root_units: Dict[str, str] = field(default_factory=dict)
    ops: List[ImportedLayer] = field(default_factory=list)


def parse_diagview_csv(text: str, source: str = "<diagview CSV>", *, total_event: str = "QNN (execute) time",
                       clock_hz: Optional[float] = None, runtime: str = "DSP") -> ImportedProfile:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise ResultsError(f"{source}: empty file; expected the CSV of snpe-diagview --output")
    head = tuple(c.strip() for c in rows[0])
    if head[:len(HEADER)] != HEADER:
        raise ResultsError(f"{source}: header {','.join(head)[:100]!r} is not the profiling-event layout "
                           f"({','.join(HEADER)}); this CSV layout is not supported")
    runs: List[CsvRun] = []
    for n, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(HEADER):
            raise ResultsError(f"{source}: row {n} has {len(row)} of {len(HEADER)} columns (truncated file?)")
        _, message, value, unit, _, level, ident = (c.strip() for c in row[:7])
        try:
            v = float(value)
        except ValueError:
            raise ResultsError(f"{source}: row {n}: time {value!r} is not a number") from None
        u = _UNITS.get(unit.upper())
        if u is None:
            raise ResultsError(f"{source}: row {n}: unknown unit {unit!r}")
        if not runs or (level == "ROOT" and message == "EXECUTE" and ident in runs[-1].roots):
            runs.append(CsvRun())  # the first row, or an EXECUTE event the current run already has
        run = runs[-1]
        if level == "ROOT":
            run.roots[ident] = v
            run.root_units[ident] = u
        elif message == "NODE":
            run.ops.append(ImportedLayer(len(run.ops), ident, None, v, u, runtime))
    samples: Dict[str, List[float]] = {}
    for i, run in enumerate(runs, 1):
        if total_event in run.roots:
            if run.root_units[total_event] != "us":
                raise ResultsError(f"{source}: run {i}: {total_event!r} is in {run.root_units[total_event]}, not us")
            samples.setdefault(TOTAL_INFERENCE, []).append(run.roots[total_event])
        counted = [op for op in run.ops if not _IO_RE.match(op.name)]
        if counted and all(op.unit == "us" for op in counted):
            samples.setdefault(LAYERS_TIME, []).append(sum(op.value for op in counted))
        elif counted and clock_hz and all(op.unit == "cycles" for op in counted):
            samples.setdefault(LAYERS_TIME, []).append(sum(op.value for op in counted) * 1e6 / clock_hz)
    if TOTAL_INFERENCE not in samples:
        raise ResultsError(f"{source}: no ROOT event {total_event!r}; nothing to import (other ROOT events: "
                           f"{', '.join(sorted({k for r in runs for k in r.roots}))[:120] or 'none'})")
    return ImportedProfile("diagview-csv", source, runtime, samples=samples, runs=len(samples[TOTAL_INFERENCE]),
                           layers=runs[0].ops if runs else [], notes=["per-op values are those of the first run"])


def load_diagview_csv(path: Union[str, Path], **kwargs) -> ImportedProfile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ResultsError(f"{path}: cannot read diagview CSV ({e.strerror})") from None
    return parse_diagview_csv(text, str(path), **kwargs)


__all__ = ["HEADER", "load_diagview_csv", "parse_diagview_csv"]
