"""Accuracy metrics of a latency predictor (pure functions, no I/O).

:func:`regression_metrics` returns one flat dict so reports, the CLI and tests share the
same names::

    n          number of networks
    mape       mean absolute percentage error, % of the measured latency
    max_ape    worst absolute percentage error, %
    rmse       root mean squared error, in the unit of the inputs (us)
    r2         coefficient of determination, 1 - SS_res / SS_tot
    spearman   Spearman rank correlation (scipy.stats.spearmanr)
    kendall    Kendall tau-b (scipy.stats.kendalltau); NAS cares about ranking
    within_5   share (0..1) of networks whose relative error is within +-5 %
    within_10  share (0..1) of networks whose relative error is within +-10 %

Small samples: with fewer than 3 pairs ``spearman`` and ``kendall`` are NaN (two points
always rank-correlate perfectly or inversely, which says nothing). ``r2`` is NaN when the
measured values have zero variance (including n == 1), and the correlations are NaN when
either side is constant. Boundaries are inclusive: an error of exactly 10 % counts as
within +-10 %.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

METRIC_NAMES = ("n", "mape", "max_ape", "rmse", "r2", "spearman", "kendall", "within_5", "within_10")

# relative slack so that an error of exactly 5 % / 10 % (up to float rounding) is "within"
_BOUNDARY_SLACK = 1e-12


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def relative_errors(y_true: Sequence[float], y_pred: Sequence[float]) -> np.ndarray:
    """Signed relative errors ``(y_pred - y_true) / y_true`` (0.1 means 10 % too slow)."""
    t = _as_1d(y_true, "y_true")
    p = _as_1d(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length ({t.size} != {p.size})")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError("y_true and y_pred must be finite")
    if np.any(t <= 0):
        raise ValueError("y_true must be positive (relative errors are relative to it)")
    return (p - t) / t


def _rank_corr(t: np.ndarray, p: np.ndarray) -> Dict[str, float]:
    if t.size < 3 or np.ptp(t) == 0 or np.ptp(p) == 0:
        return {"spearman": math.nan, "kendall": math.nan}
    from scipy import stats
    return {"spearman": float(stats.spearmanr(t, p)[0]), "kendall": float(stats.kendalltau(t, p)[0])}


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> Dict[str, Any]:
    """Metrics of predictions ``y_pred`` of positive measured latencies ``y_true``.

    Raises ``ValueError`` for empty, mismatched, non-finite or non-positive ``y_true``
    inputs. See the module docstring for the keys and the small-sample rules.
    """
    rel = relative_errors(y_true, y_pred)
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    n = int(t.size)
    if n == 0:
        raise ValueError("no pairs to evaluate")
    ape = np.abs(rel)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    ss_res = float(np.sum((t - p) ** 2))
    out: Dict[str, Any] = {
        "n": n,
        "mape": float(100.0 * ape.mean()),
        "max_ape": float(100.0 * ape.max()),
        "rmse": float(math.sqrt(ss_res / n)),
        "r2": (1.0 - ss_res / ss_tot) if ss_tot > 0 else math.nan,
    }
    out.update(_rank_corr(t, p))
    out["within_5"] = float(np.mean(ape <= 0.05 + _BOUNDARY_SLACK))
    out["within_10"] = float(np.mean(ape <= 0.10 + _BOUNDARY_SLACK))
    return {k: out[k] for k in METRIC_NAMES}


def json_safe_metrics(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """``metrics`` with NaN/inf replaced by ``None`` (strict JSON has no NaN)."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


def metrics_from_json(metrics: Dict[str, Any]) -> Dict[str, Any]:
    """Inverse of :func:`json_safe_metrics`: ``None`` back to NaN (``n`` stays an int)."""
    return {k: (math.nan if v is None and k != "n" else v) for k, v in metrics.items()}


CONSTRAINT_QUANTILES = (10, 25, 50)


def edge_metrics(y_true: Sequence[float], y_pred: Sequence[float], ids: Sequence[str],
                 extremes: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """Where a predictor fails: by latency decile, worst case, named extremes, constraint check.

    ``deciles``: for each tenth of the networks sorted by measured latency, its measured range,
    ``n``, ``mape`` and ``max_ape`` (%). ``worst``: the network with the largest absolute
    relative error. ``extremes``: ``{name: {id, measured_us, pred_us, error_pct}}`` for the ids
    in ``extremes`` (``{id: name}``). ``constraint``: for bounds at the 10th, 25th and 50th
    percentile of measured latency (HELP-style overshoot), ``n_predicted_within`` networks
    predicted <= bound and ``overshoot`` = the share of those whose measured latency exceeds it
    (None when no network is predicted within).
    """
    rel = relative_errors(y_true, y_pred)
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ids = [str(i) for i in ids]
    order = np.argsort(t, kind="stable")
    deciles = []
    for d, chunk in enumerate(np.array_split(order, 10)):
        if chunk.size == 0:
            continue
        ape = 100.0 * np.abs(rel[chunk])
        deciles.append({"decile": d + 1, "n": int(chunk.size), "measured_min_us": float(t[chunk].min()),
                        "measured_max_us": float(t[chunk].max()), "mape": float(ape.mean()),
                        "max_ape": float(ape.max())})
    w = int(np.argmax(np.abs(rel)))
    worst = {"id": ids[w], "measured_us": float(t[w]), "pred_us": float(p[w]), "error_pct": float(100.0 * rel[w])}
    index = {i: k for k, i in enumerate(ids)}
    ext = {}
    for i, name in (extremes or {}).items():
        if i in index:
            k = index[i]
            ext[name] = {"id": i, "measured_us": float(t[k]), "pred_us": float(p[k]),
                         "error_pct": float(100.0 * rel[k])}
    constraint = []
    for q in CONSTRAINT_QUANTILES:
        bound = float(np.percentile(t, q))
        within = p <= bound
        n_in = int(within.sum())
        constraint.append({"percentile": q, "bound_us": bound, "n_predicted_within": n_in,
                           "overshoot": float(np.mean(t[within] > bound)) if n_in else None})
    return {"deciles": deciles, "worst": worst, "extremes": ext, "constraint": constraint}
