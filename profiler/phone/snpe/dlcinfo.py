"""Pure parser of ``snpe-dlc-info -i <dlc>`` standard output.

The layer table is ``| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes | Parameters |``
with continuation rows (empty Id) for extra inputs/outputs/parameters. Network inputs come from:

* SNPE 2.x: the ``| Input Name | Dimensions | Type [| Encoding Info] |`` table (dims comma
  separated); SNPE 2 has no data layers;
* SNPE 1.x: rows whose Type is ``data`` (Name = input name, Out Dims like ``1x224x224x3``).

Dimensions are as the DLC stores them: NHWC for image inputs, also for ONNX models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from profiler.errors import ResultsError

_RUNTIME_LETTERS = {"A": "AIP", "D": "DSP", "G": "GPU", "C": "CPU"}
_TENSOR_RE = re.compile(r"^(?P<name>.+?)(?: \((?P<info>[^()]*)\))?(?: \[NW Input\])?$")
_LAYER_HEADER = ("Id", "Name", "Type")


@dataclass(frozen=True)
class DlcLayer:
    """One row (plus its continuation rows) of the layer table."""

    id: int
    name: str
    type: str
    inputs: Tuple[str, ...] = ()
    outputs: Tuple[str, ...] = ()
    out_dims: Tuple[Tuple[int, ...], ...] = ()
    runtimes: Tuple[str, ...] = ()
    parameters: Tuple[str, ...] = ()

    @property
    def is_input(self) -> bool:
        return self.type.lower() in ("data", "input")


@dataclass(frozen=True)
class DlcTensor:
    """A row of the Input/Output Name table."""

    name: str
    dims: Tuple[int, ...]
    dtype: str
    encoding: Optional[str] = None


@dataclass
class DlcInfo:
    source: str
    dlc_path: Optional[str] = None
    model_version: Optional[str] = None
    layers: List[DlcLayer] = field(default_factory=list)
    inputs: List[DlcTensor] = field(default_factory=list)
    outputs: List[DlcTensor] = field(default_factory=list)
    summary: Dict[str, str] = field(default_factory=dict)

    @property
    def converter_version(self) -> Optional[str]:
        return self.summary.get("DLC created with converter version")

    @property
    def quantizer_command(self) -> Optional[str]:
        return self.summary.get("Quantizer command")

    @property
    def is_quantized(self) -> bool:
        """True if the DLC records a quantizer command (it went through snpe-dlc-quant(ize))."""
        cmd = self.quantizer_command
        return cmd is not None and cmd.strip() not in ("", "N/A")

    @property
    def total_params(self) -> Optional[int]:
        m = re.match(r"\s*(\d+)", self.summary.get("Total parameters", ""))
        return int(m.group(1)) if m else None

    def input_dims(self) -> Dict[str, List[int]]:
        """``{input name: dims}``: the input table (2.x) or else the ``data`` layers (1.x)."""
        if self.inputs:
            return {t.name: list(t.dims) for t in self.inputs}
        out = {}
        for layer in self.layers:
            if layer.is_input:
                if not layer.out_dims:
                    raise ResultsError(f"{self.source}: data layer {layer.name!r} has no Out Dims")
                out[layer.name] = list(layer.out_dims[0])
        return out

    def layer_types(self) -> List[Tuple[str, str]]:
        """``[(name, type), ...]`` in DLC order, for :func:`profiler.phone.snpe.diagview.parse_diagview`."""
        return [(layer.name, layer.type) for layer in self.layers]


def parse_dlc_info(text: str, source: str = "<snpe-dlc-info output>") -> DlcInfo:
    """Parse dlc-info stdout; raise :class:`ResultsError` naming ``source`` if it is not that."""
    info = DlcInfo(source)
    lines = text.splitlines()
    i = 0
    cur: Optional[dict] = None
    columns: Optional[List[str]] = None
    table: Optional[str] = None  # "layers" | "inputs" | "outputs"

    def flush() -> None:
        nonlocal cur
        if cur is not None:
            info.layers.append(DlcLayer(cur["id"], cur["name"], cur["type"], tuple(cur["inputs"]),
                                        tuple(cur["outputs"]), tuple(cur["out_dims"]),
                                        tuple(cur["runtimes"]), tuple(cur["parameters"])))
            cur = None

    while i < len(lines):
        line = lines[i].rstrip()
        i += 1
        s = line.strip()
        if not s:
            continue
        if s.startswith("|"):
            cells = [c.strip() for c in s.strip("|").split("|")]
            if tuple(cells[:3]) == _LAYER_HEADER:
                flush()
                columns, table = cells, "layers"
                continue
            if cells and cells[0] in ("Input Name", "Output Name"):
                flush()
                columns, table = cells, "inputs" if cells[0] == "Input Name" else "outputs"
                continue
            if table is None or columns is None:
                continue  # e.g. the cache-record table of HTP-prepared DLCs
            if table == "layers":
                cur = _layer_row(cells, columns, cur, flush, f"{source}: line {i}")
            else:
                row = dict(zip(columns, cells))
                dims = _dims(row.get("Dimensions", ""), ",", f"{source}: line {i}")
                tensor = DlcTensor(row[columns[0]], dims, row.get("Type", ""), row.get("Encoding Info") or None)
                (info.inputs if table == "inputs" else info.outputs).append(tensor)
            continue
        if set(s) <= {"-", "="}:
            continue
        flush()
        table = None  # any text line ends a table
        if s.startswith("DLC info for:"):
            info.dlc_path = s.split(":", 1)[1].strip()
        elif s.startswith("Model Version:"):
            info.model_version = s.split(":", 1)[1].strip()
        elif ":" in s and not s.startswith(("Key :", "Note:")):
            key, value = s.split(":", 1)
            if len(key.strip()) > 1:  # skip the "D:DSP" lines of the runtime key
                info.summary.setdefault(key.strip(), value.strip())
    flush()
    if not info.layers:
        raise ResultsError(f"{source}: no layer table ('| Id | Name | Type | ...'); not snpe-dlc-info "
                           f"output, or the tool failed (check that the DLC exists and matches the SDK)")
    return info


def parse_dlc_info_csv(text: str, source: str = "<snpe-dlc-info -s CSV>") -> DlcInfo:
    """Parse the CSV ``snpe-dlc-info -i <dlc> -s <file.csv>`` writes (SNPE 2.x ``csv.writer``).

    The file holds the rows of the printed tables, unpadded (``Id,Name,Type,Inputs,Outputs,Out
    Dims,Runtimes,Parameters`` and its continuation rows with empty Id/Name/Type; ``Input Name,
    Dimensions,Type[,Encoding Info]``), and each other printed line as a one-cell row
    (``DLC info for: ...``, ``Total parameters: ...``, ``Key : A:AIP``, ...).
    """
    import csv
    import io

    lines = []
    for row in csv.reader(io.StringIO(text, newline="")):
        if len(row) > 1:
            lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
        elif row:
            lines.append(row[0])
    if not any(line.startswith("| Id | Name | Type") for line in lines):
        raise ResultsError(f"{source}: no 'Id,Name,Type,...' header row; not a snpe-dlc-info -s CSV")
    return parse_dlc_info("\n".join(lines), source)


def parse_dlc_info_file(path: Union[str, Path]) -> DlcInfo:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ResultsError(f"{path}: cannot read dlc-info output ({e.strerror})") from None
    if path.suffix.lower() == ".csv":
        return parse_dlc_info_csv(text, str(path))
    return parse_dlc_info(text, str(path))


def _layer_row(cells: List[str], columns: List[str], cur: Optional[dict], flush, where: str) -> dict:
    row = dict(zip(columns, cells + [""] * (len(columns) - len(cells))))
    ident = row.get("Id", "")
    if ident:
        if not ident.isdigit():
            raise ResultsError(f"{where}: layer Id {ident!r} is not a number (corrupt dlc-info table)")
        flush()
        cur = {"id": int(ident), "name": row.get("Name", ""), "type": row.get("Type", ""),
               "inputs": [], "outputs": [], "out_dims": [], "runtimes": [], "parameters": []}
        cur["runtimes"] = [_RUNTIME_LETTERS.get(c, c) for c in row.get("Runtimes", "").split()]
    elif cur is None:
        raise ResultsError(f"{where}: continuation row before the first layer (corrupt dlc-info table)")
    for col, key in (("Inputs", "inputs"), ("Outputs", "outputs")):
        if row.get(col):
            m = _TENSOR_RE.match(row[col])
            cur[key].append(m.group("name") if m else row[col])
    if row.get("Out Dims"):
        cur["out_dims"].append(_dims(row["Out Dims"], "x", where))
    if row.get("Parameters"):
        cur["parameters"].append(row["Parameters"])
    return cur


def _dims(text: str, sep: str, where: str) -> Tuple[int, ...]:
    parts = [p for p in text.replace(" ", "").split(sep) if p]
    if not parts or not all(p.isdigit() for p in parts):
        raise ResultsError(f"{where}: cannot read dimensions {text!r}")
    return tuple(int(p) for p in parts)


__all__ = ["DlcInfo", "DlcLayer", "DlcTensor", "parse_dlc_info", "parse_dlc_info_csv", "parse_dlc_info_file"]
