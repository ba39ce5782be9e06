"""Quantization-overrides files (AIMET encoding format) and TF-style fixed-point encodings.

The file given to ``snpe-onnx-to-dlc --quantization_overrides`` (and then honoured by
``snpe-dlc-quantize --override_params``) looks like::

    {"activation_encodings": {"<output tensor>": [{"bitwidth": 8, "min": ..., "max": ...,
                                                   "scale": ..., "offset": ...}]},
     "param_encodings":      {"<weight/bias tensor>": [{...}, ...]}}

Rules enforced here (the SNPE 2.x converter's reader applies the same ones):

* both sections must be present (they may be empty);
* each tensor maps to a non-empty list (more than one entry = per-channel);
* ``bitwidth`` is required and identical across a tensor's entries;
* ``min``/``max`` come as a pair, ``scale``/``offset`` come as a pair (a symmetric entry may
  give ``scale`` alone);
* ``is_symmetric`` is the *string* ``"True"``/``"False"``; ``dtype`` is ``"int"``/``"float"``.

Offsets are accepted in both sign conventions, AIMET's negative ``round(min/scale)`` and the
positive zero point of the SNPE docs, and normalised like SNPE does: ``offset = -abs(offset)``.
Symmetric entries get ``offset = -2**(bitwidth-1)`` (an offset of 0 is replaced by it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from profiler.errors import ProfilerError

MIN_RANGE = 0.01
SECTIONS = ("activation_encodings", "param_encodings")
VALID_BITWIDTHS = (4, 8, 16, 32)
OFFSET_STYLES = ("aimet", "zero_point")


class EncodingsError(ProfilerError):
    """An invalid quantization-overrides (encodings) file."""


@dataclass(frozen=True)
class Encoding:
    """One encoding entry. ``offset`` is always in the normalised (AIMET, <= 0) convention."""

    bitwidth: int
    min: Optional[float] = None
    max: Optional[float] = None
    scale: Optional[float] = None
    offset: Optional[int] = None
    is_symmetric: Optional[bool] = None
    dtype: Optional[str] = None
    extra: Tuple[Tuple[str, Any], ...] = ()

    @property
    def steps(self) -> int:
        return 2 ** self.bitwidth - 1

    def to_json(self, offset_style: str = "aimet") -> Dict[str, Any]:
        """The JSON object for this entry; ``offset_style`` "zero_point" writes ``-offset``."""
        if offset_style not in OFFSET_STYLES:
            raise ValueError(f"offset_style must be one of {OFFSET_STYLES}, not {offset_style!r}")
        out: Dict[str, Any] = {"bitwidth": self.bitwidth}
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.is_symmetric is not None:
            out["is_symmetric"] = "True" if self.is_symmetric else "False"
        if self.min is not None:
            out["min"] = self.min
            out["max"] = self.max
        if self.scale is not None:
            out["scale"] = self.scale
            if self.offset is not None:
                out["offset"] = -self.offset if offset_style == "zero_point" else self.offset
        out.update(dict(self.extra))
        return out


@dataclass
class QuantOverrides:
    """A whole overrides file: tensor name -> list of encodings (one per channel)."""

    activation_encodings: Dict[str, List[Encoding]] = field(default_factory=dict)
    param_encodings: Dict[str, List[Encoding]] = field(default_factory=dict)
    version: Optional[str] = None

    def to_json(self, offset_style: str = "aimet") -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.version is not None:
            out["version"] = self.version
        for section in SECTIONS:
            out[section] = {name: [e.to_json(offset_style) for e in encs]
                            for name, encs in getattr(self, section).items()}
        return out


# ---------------------------------------------------------------------------- math

def compute_encoding(mn: float, mx: float, bitwidth: int = 8, symmetric: bool = False) -> Encoding:
    """TF-style encoding of the observed range ``[mn, mx]`` (SNPE/AIMET default quantizer).

    The range is widened to contain 0 and to span at least 0.01; then, asymmetric: ``scale =
    (max-min)/(2**bw-1)`` and the offset is rounded so that 0.0 is exactly representable
    (``min``/``max`` are shifted accordingly). Symmetric: ``scale = absmax/floor(steps/2)``,
    ``offset = -ceil(steps/2)``.
    """
    if bitwidth not in VALID_BITWIDTHS:
        raise ValueError(f"bitwidth must be one of {VALID_BITWIDTHS}, not {bitwidth!r}")
    if not (math.isfinite(mn) and math.isfinite(mx)) or mn > mx:
        raise ValueError(f"invalid range [{mn}, {mx}]")
    steps = 2 ** bitwidth - 1
    lo = min(0.0, float(mn))
    hi = max(0.0, float(mx))
    hi = max(hi, lo + MIN_RANGE)
    if symmetric:
        absmax = max(abs(lo), abs(hi))
        positive_steps = steps // 2
        scale = absmax / positive_steps
        offset = -math.ceil(steps / 2)
        return Encoding(bitwidth, min=scale * offset, max=scale * positive_steps, scale=scale,
                        offset=offset, is_symmetric=True)
    scale = (hi - lo) / steps
    if lo < 0 < hi:
        offset = -int(min(steps, max(0, round(-lo / scale))))
    else:
        offset = int(round(lo / scale))
    enc_min = scale * offset
    enc_max = hi - lo + enc_min
    return Encoding(bitwidth, min=enc_min, max=enc_max, scale=scale, offset=offset, is_symmetric=False)


def quantize_values(values: Iterable[float], enc: Encoding) -> List[int]:
    """``q = clamp(round(x/scale - offset), 0, 2**bw-1)`` for each value (unsigned grid)."""
    _require_scale(enc)
    return [int(min(enc.steps, max(0, round(x / enc.scale - enc.offset)))) for x in values]


def dequantize_values(qs: Iterable[int], enc: Encoding) -> List[float]:
    """``x = scale * (q + offset)`` for each quantized value."""
    _require_scale(enc)
    return [enc.scale * (q + enc.offset) for q in qs]


def _require_scale(enc: Encoding) -> None:
    if enc.scale is None or enc.offset is None:
        raise ValueError("encoding has no scale/offset")


def make_overrides(activations: Mapping[str, Tuple[float, float]] = (),
                   params: Mapping[str, Tuple[float, float]] = (), *, act_bitwidth: int = 8,
                   param_bitwidth: int = 8, symmetric_params: bool = False,
                   version: Optional[str] = None) -> QuantOverrides:
    """Overrides from observed ``{tensor: (min, max)}`` ranges (e.g. MQBench clip ranges)."""
    act = {n: [compute_encoding(lo, hi, act_bitwidth)] for n, (lo, hi) in dict(activations).items()}
    par = {n: [compute_encoding(lo, hi, param_bitwidth, symmetric_params)]
           for n, (lo, hi) in dict(params).items()}
    return QuantOverrides(act, par, version)


# ---------------------------------------------------------------------------- read / validate

def parse_overrides(data: Any, source: str = "<overrides>") -> QuantOverrides:
    """Validate a decoded overrides JSON object; raise :class:`EncodingsError` naming the problem."""
    if not isinstance(data, dict):
        raise EncodingsError(f"{source}: top level must be a JSON object with {' and '.join(SECTIONS)}")
    missing = [s for s in SECTIONS if s not in data]
    if missing:
        raise EncodingsError(f"{source}: missing section(s) {', '.join(missing)}; both "
                             f"{' and '.join(SECTIONS)} must be present (they may be empty {{}})")
    out = QuantOverrides(version=None if data.get("version") is None else str(data["version"]))
    for section in SECTIONS:
        tensors = data[section]
        if not isinstance(tensors, dict):
            raise EncodingsError(f"{source}: {section} must be an object mapping tensor names to lists")
        parsed = {}
        for name, entries in tensors.items():
            parsed[name] = _parse_tensor(entries, f"{source}: {section}[{name!r}]")
        setattr(out, section, parsed)
    return out


def load_overrides(path: Union[str, Path]) -> QuantOverrides:
    """Read and validate an overrides JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EncodingsError(f"{path}: cannot read quantization overrides ({e.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise EncodingsError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    return parse_overrides(data, str(path))


def dumps_overrides(overrides: QuantOverrides, offset_style: str = "aimet") -> str:
    """JSON text of the overrides (stable key order, 4-space indent, trailing newline)."""
    return json.dumps(overrides.to_json(offset_style), indent=4) + "\n"


def save_overrides(overrides: QuantOverrides, path: Union[str, Path], offset_style: str = "aimet") -> Path:
    """Write the overrides to ``path`` (validating them first) and return the path."""
    parse_overrides(overrides.to_json(offset_style), str(path))
    path = Path(path)
    path.write_text(dumps_overrides(overrides, offset_style), encoding="utf-8")
    return path


def _parse_tensor(entries: Any, where: str) -> List[Encoding]:
    if not isinstance(entries, list) or not entries:
        raise EncodingsError(f"{where} must be a non-empty list of encodings "
                             f"(wrap a single encoding in [ ])")
    encs = [_parse_entry(e, f"{where}[{i}]") for i, e in enumerate(entries)]
    first = encs[0]
    for i, e in enumerate(encs[1:], 1):
        if e.bitwidth != first.bitwidth:
            raise EncodingsError(f"{where}[{i}]: bitwidth {e.bitwidth} differs from entry 0 ({first.bitwidth})")
        if e.is_symmetric != first.is_symmetric:
            raise EncodingsError(f"{where}[{i}]: cannot mix symmetric and asymmetric entries")
        if e.dtype != first.dtype:
            raise EncodingsError(f"{where}[{i}]: cannot mix dtype {e.dtype!r} and {first.dtype!r}")
    return encs


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    v = entry[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise EncodingsError(f"{where}: {key} must be a finite number, not {v!r}")
    return float(v)


def _parse_entry(entry: Any, where: str) -> Encoding:
    if not isinstance(entry, dict):
        raise EncodingsError(f"{where} must be an object")
    if "bitwidth" not in entry:
        raise EncodingsError(f"{where}: bitwidth is required")
    bw = entry["bitwidth"]
    if isinstance(bw, bool) or not isinstance(bw, int) or bw not in VALID_BITWIDTHS:
        raise EncodingsError(f"{where}: bitwidth must be one of {VALID_BITWIDTHS}, not {bw!r}")

    dtype = entry.get("dtype")
    if dtype is not None:
        if not isinstance(dtype, str) or dtype.lower() not in ("int", "float"):
            raise EncodingsError(f"{where}: dtype must be \"int\" or \"float\", not {dtype!r}")
        dtype = dtype.lower()
        if dtype == "float" and bw not in (16, 32):
            raise EncodingsError(f"{where}: a float encoding needs bitwidth 16 or 32, not {bw}")

    sym = entry.get("is_symmetric")
    if sym is not None:
        if not isinstance(sym, str) or sym.lower() not in ("true", "false"):
            raise EncodingsError(f"{where}: is_symmetric must be the string \"True\" or \"False\", "
                                 f"not {sym!r}")
        sym = sym.lower() == "true"

    has_min, has_max = "min" in entry, "max" in entry
    if has_min != has_max:
        raise EncodingsError(f"{where}: min and max must be given together")
    mn = mx = None
    if has_min:
        mn, mx = _number(entry, "min", where), _number(entry, "max", where)
        if mn > mx:
            raise EncodingsError(f"{where}: min {mn} is greater than max {mx}")

    has_scale, has_offset = "scale" in entry, "offset" in entry
    if has_offset and not has_scale or has_scale and not has_offset and not sym:
        raise EncodingsError(f"{where}: scale and offset must be given together "
                             f"(only a symmetric encoding may give scale alone)")
    scale: Optional[float] = None
    offset: Optional[int] = None
    if has_scale:
        scale = _number(entry, "scale", where)
        if scale <= 0:
            raise EncodingsError(f"{where}: scale must be positive, not {scale}")
        if has_offset:
            raw = entry["offset"]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or float(raw) != int(raw):
                raise EncodingsError(f"{where}: offset must be an integer, not {raw!r}")
            offset = -abs(int(raw))
        if sym:
            half = 2 ** (bw - 1)
            if offset in (None, 0):
                offset = -half
            elif offset != -half:
                raise EncodingsError(f"{where}: a symmetric {bw}-bit encoding needs offset 0 or "
                                     f"{-half}, not {entry['offset']}")
        elif offset is not None and -offset > 2 ** bw - 1:
            raise EncodingsError(f"{where}: offset {entry['offset']} is outside the {bw}-bit range")

    extra = tuple((k, v) for k, v in entry.items()
                  if k not in ("bitwidth", "dtype", "is_symmetric", "min", "max", "scale", "offset"))
    return Encoding(bw, mn, mx, scale, offset, sym, dtype, extra)


def same_grid(a: Encoding, b: Encoding, rel_tol: float = 1e-9) -> bool:
    """True if two encodings describe the same quantization grid (scale and offset)."""
    if None in (a.scale, b.scale, a.offset, b.offset):
        return False
    return a.bitwidth == b.bitwidth and a.offset == b.offset and math.isclose(a.scale, b.scale, rel_tol=rel_tol)


__all__: Sequence[str] = (
    "Encoding", "EncodingsError", "QuantOverrides", "compute_encoding", "dequantize_values",
    "dumps_overrides", "load_overrides", "make_overrides", "parse_overrides", "quantize_values",
    "same_grid", "save_overrides",
)
