"""Pure reader of a Qualcomm AI Hub profile (``ProfileJob.download_profile()``, saved as JSON).

Shape (the ``qai_hub`` client's ``_profile_pb_to_python_dict``)::

    {"execution_summary": {"estimated_inference_time": µs, "all_inference_times": [µs, ...],
                           "first_load_time": µs, "warm_load_time": µs, "compile_time": µs,
                           "all_first_load_times": [...], "all_warm_load_times": [...], ...,
                           "*_memory_*_range": [lo, hi], "estimated_inference_peak_memory": bytes},
     "execution_detail": [{"name", "type", "compute_unit": "NPU"|"GPU"|"CPU",
                           "execution_time": µs[, "execution_cycles": n]}, ...]}

All times are µs. ``estimated_inference_time`` is AI Hub's headline figure (the fastest run), so
the samples are ``all_inference_times`` (one per run); ``Total Inference Time`` is that key.
``Layers Time`` is the sum of ``execution_detail[].execution_time`` (one profiled inference).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Union

from profiler.errors import ResultsError
from profiler.phone.snpe.diagview import LAYERS_TIME, TOTAL_INFERENCE
from profiler.phone.snpe.results import ImportedLayer, ImportedProfile

_LOAD_KEYS = ("first_load_time", "warm_load_time", "compile_time", "estimated_inference_time")


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ResultsError(f"{where} is {v!r}, not a non-negative number of µs")
    return float(v)


def parse_ai_hub_profile(data: Any, source: str = "<AI Hub profile>", *, runtime: str = "") -> ImportedProfile:
    """An :class:`ImportedProfile` (``runtime`` defaults to the compute units used, e.g. ``NPU``)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("execution_summary"), Mapping):
        raise ResultsError(f"{source}: not an AI Hub profile (no 'execution_summary' object)")
    summ = data["execution_summary"]
    times = summ.get("all_inference_times")
    if not isinstance(times, list) or not times:
        raise ResultsError(f"{source}: execution_summary has no 'all_inference_times' (per-run inference "
                           f"times in µs); the profile job failed or is not a profile job")
    samples = [_num(t, f"{source}: all_inference_times[{i}]") for i, t in enumerate(times)]
    stats = {k: _num(summ[k], f"{source}: execution_summary.{k}") for k in _LOAD_KEYS if k in summ}
    for k in ("all_first_load_times", "all_warm_load_times", "all_compile_times"):
        if isinstance(summ.get(k), list) and summ[k]:
            stats[k.replace("all_", "min_")] = min(_num(v, f"{source}: {k}") for v in summ[k])
    detail = data.get("execution_detail") or []
    if not isinstance(detail, list):
        raise ResultsError(f"{source}: execution_detail must be a list of layers")
    layers = []
    for i, rec in enumerate(detail):
        where = f"{source}: execution_detail[{i}]"
        if not isinstance(rec, Mapping) or "name" not in rec:
            raise ResultsError(f"{where} has no 'name'")
        if "execution_time" not in rec:
            raise ResultsError(f"{where} ({rec['name']!r}) has no 'execution_time'")
        layers.append(ImportedLayer(i, str(rec["name"]), rec.get("type"), _num(rec["execution_time"], where),
                                    "us", rec.get("compute_unit")))
    out = {TOTAL_INFERENCE: samples}
    notes = []
    if layers:
        out[LAYERS_TIME] = [sum(lay.value for lay in layers)]
        notes.append("Layers Time is one profiled inference (execution_detail), not one value per run")
    units = sorted({lay.runtime for lay in layers if lay.runtime})
    return ImportedProfile("ai-hub", source, runtime or ("+".join(units) if units else "AI Hub"),
                           samples=out, runs=len(samples), layers=layers, stats=stats, notes=notes)


def load_ai_hub_profile(path: Union[str, Path], **kwargs) -> ImportedProfile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ResultsError(f"{path}: cannot read AI Hub profile ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise ResultsError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    return parse_ai_hub_profile(data, str(path), **kwargs)


__all__ = ["load_ai_hub_profile", "parse_ai_hub_profile"]
