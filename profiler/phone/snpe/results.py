"""The common shape of imported profiles, and their conversion to per-key samples (pure).

Every importer (``snpe_bench`` results, ``qnn-profile-viewer`` text, Qualcomm AI Hub profile
JSON, ``snpe-diagview --output`` CSV) returns an :class:`ImportedProfile`:

* ``tool``/``source``: which tool wrote it and where it was read from;
* ``runtime``: the record's runtime (snpe_bench flavor ``DSP_ub_tf8``, ``HTP``, ``NPU``, ...);
* ``samples``: ``{LatencyKey: [µs per run]}`` when the file has per-run values, or
  ``summary``: ``{LatencyKey: {"Min_Time", "Avg_Time", "Max_Time"}}`` when it only has those
  (snpe_bench); :meth:`ImportedProfile.latency_samples` gives samples either way;
* ``layers``: per-layer times (:class:`ImportedLayer`, value in ``unit``: ``us`` or ``cycles``);
* ``stats``: other figures in µs (load/init times, accelerator times, ...);
* ``device``, ``sdk_version``, ``notes``.

A results store keeps raw samples per key, so a summary is turned into samples with
:func:`samples_from_summary`, which reproduces Min, Avg and Max exactly whenever any set of
samples can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from profiler.phone.snpe.diagview import LATENCY_KEYS

STAT_KEYS = ("Min_Time", "Avg_Time", "Max_Time")
_MAX_REBUILT = 1000


@dataclass(frozen=True)
class ImportedLayer:
    index: int
    name: str
    type: Optional[str]
    value: float
    unit: str                      # "us" | "cycles"
    runtime: Optional[str] = None  # CPU/GPU/DSP or AI Hub compute unit (NPU/GPU/CPU)


@dataclass
class ImportedProfile:
    tool: str
    source: str
    runtime: str
    samples: Dict[str, List[float]] = field(default_factory=dict)
    summary: Dict[str, Dict[str, float]] = field(default_factory=dict)
    runs: Optional[int] = None
    layers: List[ImportedLayer] = field(default_factory=list)
    stats: Dict[str, float] = field(default_factory=dict)
    device: Dict[str, str] = field(default_factory=dict)
    sdk_version: Optional[str] = None
    notes: List[str] = field(default_factory=list)

    @property
    def rebuilt(self) -> bool:
        """True if the samples are rebuilt from a Min/Avg/Max summary (not measured values)."""
        return not self.samples and bool(self.summary)

    def latency_samples(self) -> Dict[str, List[float]]:
        """``{LatencyKey: [µs]}``: the per-run samples, else samples rebuilt from the summary."""
        if self.samples:
            return {k: list(v) for k, v in self.samples.items() if k in LATENCY_KEYS}
        return {k: samples_from_summary(s["Min_Time"], s["Avg_Time"], s["Max_Time"], self.runs)
                for k, s in self.summary.items() if k in LATENCY_KEYS}


def samples_from_summary(mn: float, avg: float, mx: float, runs: Optional[int]) -> List[float]:
    """Samples whose min, mean and max are ``mn``, ``avg``, ``mx``.

    ``runs`` unknown (None) is treated as 3. With 3 or more runs: ``[min, max]`` plus ``runs - 2``
    copies of ``(runs * avg - min - max) / (runs - 2)`` (clamped into [min, max] when
    snpe_bench's integer truncation, or a sum of per-layer statistics, pushes it out).

    With 1 or 2 runs the file's Min/Avg/Max are reproduced exactly: ``[min, max]`` when Avg is
    their midpoint, otherwise the fewest samples ``[min, max, mid, ...]`` (at least 3, so the
    count can exceed ``runs``) whose mean is Avg. Only when no samples can have that mean (Avg
    equal to Min or Max while Min < Max, e.g. snpe_bench's ``int()`` of 100.5) the two
    extremes ``[min, max]`` are returned, whose mean is the untruncated one.

    Raises ValueError if ``mn <= avg <= mx`` fails by more than snpe_bench's rounding (1 µs).
    """
    if not (mn - 1 <= avg <= mx + 1) or mn > mx:
        raise ValueError(f"Min {mn:g} / Avg {avg:g} / Max {mx:g} are inconsistent")
    n = runs if runs and runs > 0 else 3
    mn, avg, mx = float(mn), float(avg), float(mx)
    if mn == mx:
        return [mn] * n
    if n >= 3:
        mid = (n * avg - mn - mx) / (n - 2)
        mid = min(max(mid, mn), mx)
        return [mn, mx] + [mid] * (n - 2)
    if 2 * avg == mn + mx:
        return [mn, mx]
    if mn < avg < mx:
        for k in range(3, _MAX_REBUILT + 1):
            mid = (k * avg - mn - mx) / (k - 2)
            if mn <= mid <= mx:
                return [mn, mx] + [mid] * (k - 2)
    return [mn, mx]


def summary_of(samples: List[float]) -> Mapping[str, float]:
    """Min/Avg/Max of per-run samples (the snpe_bench statistics, without truncation)."""
    return {"Min_Time": min(samples), "Avg_Time": sum(samples) / len(samples), "Max_Time": max(samples)}


__all__ = ["ImportedLayer", "ImportedProfile", "STAT_KEYS", "samples_from_summary", "summary_of"]
