"""Summary statistics and stability checks for raw latency samples (pure; numpy only).

Every function takes the raw per-run samples of one (module, runtime, LatencyKey), in
microseconds, and never prints. Timing itself lives in :mod:`profiler.host.timing`
(``time_calls`` / ``calibrate`` take an injectable clock).

Definitions (``x`` sorted ascending, ``n = len(x)``, indices from 0):

* ``Min_Time`` = ``x[0]``, ``Max_Time`` = ``x[n-1]``.
* ``Avg_Time`` = arithmetic mean ``sum(x) / n``.
* ``Median_Time`` = ``x[(n-1)/2]`` for odd ``n``; the mean of the two middle samples
  ``(x[n/2-1] + x[n/2]) / 2`` for even ``n``.
* ``Std_Time`` = sample standard deviation with Bessel's correction (``ddof=1``):
  ``sqrt(sum((x - mean)^2) / (n - 1))``; defined as ``0.0`` when ``n == 1``.
* ``P90_Time`` = nearest-rank 90th percentile: the smallest sample such that at least 90 %
  of the samples are <= it, i.e. ``x[ceil(0.9 * n) - 1]`` (computed in integers as
  ``x[(9n + 9) // 10 - 1]``). It is always an observed sample, never interpolated:
  ``n = 10`` -> ``x[8]`` (the 9th smallest), ``n = 1`` -> ``x[0]``, ``n = 20`` -> ``x[17]``.
* ``Count`` = ``n`` (an ``int``).
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from profiler.keys import FORWARD_PROPAGATE, TOTAL_INFERENCE

STAT_NAMES = ("Min_Time", "Avg_Time", "Max_Time", "Median_Time", "Std_Time", "P90_Time", "Count")
SEED_STATS = ("Min_Time", "Avg_Time", "Max_Time")  # the original profiler's three, kept in the CSV

# Stability thresholds (pyperf-style checks; see :func:`stability`).
MIN_SAMPLES = 10          # fewer samples than this: the statistics are not trustworthy
MAX_REL_STD = 0.10        # std above 10 % of the mean: noisy measurement
MAX_REL_SPREAD = 0.50     # min or max more than 50 % away from the mean: outliers / frequency changes


def _as_samples(samples: Sequence[float]) -> np.ndarray:
    """``samples`` as a 1-D float64 array; ValueError if empty, non-numeric, non-finite or negative."""
    try:
        x = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("samples must be a sequence of numbers") from None
    if x.ndim != 1:
        raise ValueError(f"samples must be a flat sequence of numbers, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("no samples: at least one measurement is needed")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinity; the measurement is broken")
    if np.any(x < 0):
        raise ValueError(f"samples contain a negative latency ({float(x.min())}); the clock or parser is wrong")
    return x + 0.0  # copy, and -0.0 -> 0.0


def p90(samples: Sequence[float]) -> float:
    """Nearest-rank 90th percentile (see the module docstring)."""
    x = np.sort(_as_samples(samples))
    return float(x[(9 * x.size + 9) // 10 - 1])


def summarize(samples: Sequence[float]) -> Dict[str, Union[float, int]]:
    """``Min/Avg/Max/Median/Std/P90_Time`` (floats, same unit as the input) and ``Count`` (int).

    Definitions are in the module docstring (Std uses ddof=1 and is 0.0 for one sample;
    P90 is nearest-rank). Raises ValueError for empty, non-finite or negative samples.
    """
    x = np.sort(_as_samples(samples))
    n = int(x.size)
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    return {
        "Min_Time": float(x[0]),
        "Avg_Time": mean,
        "Max_Time": float(x[-1]),
        "Median_Time": float(np.median(x)),
        "Std_Time": std,
        "P90_Time": float(x[(9 * n + 9) // 10 - 1]),
        "Count": n,
    }


def _pct(v: float) -> str:
    return f"{100.0 * v:.0f}%"


def stability(samples: Sequence[float], unit: str = "us") -> List[str]:
    """Warnings (one line each, saying how to fix it) when ``samples`` look unstable.

    Checks, with thresholds from the module constants:

    * fewer than :data:`MIN_SAMPLES` samples;
    * sample std (ddof=1) above :data:`MAX_REL_STD` of the mean;
    * the minimum or the maximum more than :data:`MAX_REL_SPREAD` away from the mean.

    The relative checks are skipped when the mean is 0 (all samples are then 0). Returns an
    empty list when the samples look stable. Raises ValueError like :func:`summarize`.
    """
    s = summarize(samples)
    n, mean = s["Count"], s["Avg_Time"]
    out: List[str] = []
    if n < MIN_SAMPLES:
        out.append(f"only {n} samples (< {MIN_SAMPLES}): statistics are unreliable; "
                   "increase the number of timed runs")
    if mean > 0:
        rel_std = s["Std_Time"] / mean
        if rel_std > MAX_REL_STD:
            out.append(f"std dev is {_pct(rel_std)} of the mean (> {_pct(MAX_REL_STD)}): the measurement "
                       "is noisy; close other programs, pin the CPU/frequency governor, let the device "
                       "cool down, or run longer")
        lo = (mean - s["Min_Time"]) / mean
        hi = (s["Max_Time"] - mean) / mean
        if lo > MAX_REL_SPREAD:
            out.append(f"minimum {_fmt(s['Min_Time'])} {unit} is {_pct(lo)} below the mean "
                       f"{_fmt(mean)} {unit} (> {_pct(MAX_REL_SPREAD)}): the speed changed during the "
                       "run (frequency scaling, thermal throttling); fix the governor or add warm-up runs")
        if hi > MAX_REL_SPREAD:
            out.append(f"maximum {_fmt(s['Max_Time'])} {unit} is {_pct(hi)} above the mean "
                       f"{_fmt(mean)} {unit} (> {_pct(MAX_REL_SPREAD)}): outliers (warm-up, background "
                       "load, interrupts); add warm-up runs and close other programs")
    return out


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


# Keys timed around each call with perf_counter; Layers Time comes from profilers whose
# per-node resolution (1 us in onnxruntime's trace) makes its spread meaningless as a noise test.
NOISE_KEYS = (FORWARD_PROPAGATE, TOTAL_INFERENCE)
MAX_REL_IQR = 0.10  # re-measure when the interquartile range exceeds 10 % of the median


def instability(samples: Dict[str, List[float]]) -> Tuple[List[str], float]:
    """Stability warnings over all keys, and a noise score: the worst IQR / median.

    Every pyperf-style warning is recorded with the result. The re-measure decision uses the
    interquartile range relative to the median of the directly timed keys: unlike the standard
    deviation, it is not inflated by the odd interrupt among hundreds of runs, so it flags a
    measurement whose bulk moved (frequency change, sustained background load).
    """
    warnings: List[str] = []
    worst = 0.0
    for key, values in samples.items():
        warnings += [f"{key}: {w}" for w in stability(values)]
        if key in NOISE_KEYS and values:
            q1, med, q3 = np.percentile(values, [25, 50, 75])
            if med > 0:
                worst = max(worst, float((q3 - q1) / med))
    return warnings, worst
