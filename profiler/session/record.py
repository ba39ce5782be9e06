"""The one result-record builder: what a target reports and what a results store keeps.

A target yields *raw* records, one per module of a batch::

    {"uid", "status": "ok", "samples": {LatencyKey: [µs, ...]}, "elapsed_s", [extras]}
    {"uid", "status": "failed", "error": "..."}

and the session turns each into a *stored* record with :func:`stored` (statistics, warnings,
attempts, finish time). Importers of other tools' results (snpe_bench, ...) build stored
records with :func:`stored` too, so every record in a store has the same shape.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Iterable, List, Mapping, Optional

from profiler.keys import UNIT

EXTRAS = ("device_state", "layers", "imported")  # optional fields carried through unchanged


def now_iso() -> str:
    """The current local time as ISO 8601 with seconds and UTC offset."""
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def measured(uid: str, samples: Mapping[str, List[float]], elapsed_s: Optional[float] = None,
             **extras: Any) -> Dict[str, Any]:
    """A raw successful record."""
    return {"uid": uid, "status": "ok", "samples": dict(samples), "elapsed_s": elapsed_s, **extras}


def failed(uid: str, error: str, elapsed_s: Optional[float] = None) -> Dict[str, Any]:
    """A raw failure record."""
    rec: Dict[str, Any] = {"uid": uid, "status": "failed", "error": error}
    if elapsed_s is not None:
        rec["elapsed_s"] = elapsed_s
    return rec


def stored(rec: Mapping[str, Any], runtime: str, attempts: int = 1,
           warnings: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """The record a results store keeps for the raw record ``rec`` measured on ``runtime``."""
    from profiler.session.stats import summarize
    out: Dict[str, Any] = {"uid": rec["uid"], "runtime": runtime, "status": rec["status"],
                           "attempts": attempts, "elapsed_s": rec.get("elapsed_s"), "finished": now_iso()}
    if rec["status"] == "ok":
        out["unit"] = UNIT
        out["stats"] = {k: summarize(v) for k, v in rec["samples"].items()}
        out["warnings"] = list(rec.get("warnings", []) if warnings is None else warnings)
        out["noisy"] = bool(rec.get("noisy", False))
        out["rel_iqr"] = rec.get("rel_iqr")
        out["samples"] = rec["samples"]
        for extra in EXTRAS:
            if extra in rec:
                out[extra] = rec[extra]
    else:
        out["error"] = rec.get("error", "unknown error")
    return out


__all__ = ["EXTRAS", "failed", "measured", "now_iso", "stored"]
