"""A fitted calibration in the one form the generated estimator embeds (pure, no numpy).

Whatever model was fitted (scale-and-bias, per-op-type scales, a per-module overhead term, ...),
its prediction for a network is written as a constant plus one contribution per module::

    estimate_us = const + Σ_{module in network} contrib[module uid]

so the estimator's look-ups, its choice-index latency matrix and the expected latency of a
differentiable search all use the same numbers. ``contrib`` already holds the calibrated
per-module value (e.g. ``scale_t * lat + overhead``); a skipped block contributes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable


@dataclass
class Calibration:
    """One runtime's calibrated look-ups: ``const`` µs per network, ``contrib[uid]`` µs per module."""

    model: str                                   # e.g. "scale-bias", "module-overhead"
    const: float
    contrib: Dict[str, float]
    params: Dict[str, Any] = field(default_factory=dict)   # the fitted parameters, for the record

    def estimate(self, uids: Iterable[str]) -> float:
        """``const + Σ contrib[uid]``, floored at 0 µs (a latency is never negative)."""
        return max(0.0, self.const + sum(self.contrib[u] for u in uids))


__all__ = ["Calibration"]
