"""Fit report: ``report.json`` (versioned), ``report.png`` and a short text summary.

``report.json``::

    {"format": "profiler-fit-report", "version": 1,
     "model": {...}, "cv": {...},
     "runtimes": {runtime: {"n", "scale", "bias", "cv", "heldout": {"before", "after"},
                            "insample": {"note", "after"}, "downweighted", "per_op",
                            "networks": [{"id", "accum_us", "measured_us", "heldout_pred_us", "fold"}]}},
     ...extra keys given by the caller}

Metric names are those of :mod:`profiler.fit.metrics`; NaN metrics are ``null``. All
latencies are microseconds. ``report.png`` has one row per runtime: held-out predicted vs
measured latency (y = x line, +-10 % band) and the relative error vs measured latency.

matplotlib is imported lazily and drawn on its Agg canvas (no pyplot, no display).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

from profiler.errors import ProfilerError
from profiler.fit.models import FitReport

FORMAT = "profiler-fit-report"
VERSION = 1
JSON_NAME = "report.json"
PNG_NAME = "report.png"


def _plain(obj: Any) -> Any:
    """Strict JSON: NaN/inf -> None, Paths/other objects -> str, numpy scalars -> numbers."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):
        return _plain(obj.item())
    return str(obj)


def report_dict(fit_report: FitReport, extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The document written to ``report.json`` (``extra`` keys cannot override format/version)."""
    doc: Dict[str, Any] = {"format": FORMAT, "version": VERSION}
    doc.update(fit_report.to_dict())
    for k, v in (extra or {}).items():
        if k not in ("format", "version"):
            doc[k] = v
    return _plain(doc)


def write_report(fit_report: FitReport, out_dir: Union[str, "os.PathLike[str]"],
                 extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Path]:
    """Write ``report.json`` and ``report.png`` into ``out_dir`` (created if needed).

    Returns ``{"report_json": path, "report_png": path}``. Each file is written to a
    temporary file and moved into place.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = report_dict(fit_report, extra)
    json_path, png_path = out / JSON_NAME, out / PNG_NAME

    from profiler.files import replacing, write_text
    write_text(json_path, json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    with replacing(png_path) as tmp:
        plot_report(fit_report).savefig(tmp, format="png")
    return {"report_json": json_path, "report_png": png_path}


def read_report(path: Union[str, "os.PathLike[str]"]) -> FitReport:
    """Load a ``report.json`` back into a :class:`~profiler.fit.models.FitReport`."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProfilerError(f"{p}: cannot read the fit report ({e.strerror})") from None
    except ValueError as e:
        raise ProfilerError(f"{p}: not a JSON fit report ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProfilerError(f"{p}: not a {FORMAT} file")
    version = doc.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ProfilerError(f"{p}: fit report version {version}; this profiler reads <= {VERSION}; upgrade profiler")
    try:
        return FitReport.from_dict(doc)
    except (KeyError, TypeError, ValueError) as e:
        raise ProfilerError(f"{p}: incomplete fit report (missing or invalid {e})") from None


# --- figure -------------------------------------------------------------------------------

def _metrics_text(m: Mapping[str, Any]) -> str:
    def f(v: Any, spec: str) -> str:
        return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)
    return (f"held-out MAPE {f(m.get('mape'), '.2f')}%\n"
            f"within +-10%: {f(100 * m['within_10'] if m.get('within_10') is not None else None, '.1f')}%\n"
            f"Spearman {f(m.get('spearman'), '.3f')}, Kendall {f(m.get('kendall'), '.3f')}")


def _pct(share: Any) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def plot_report(fit_report: FitReport):
    """A matplotlib ``Figure`` (Agg canvas) with two panels per runtime."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runtimes = list(fit_report.runtimes.values())
    rows = max(1, len(runtimes))
    fig = Figure(figsize=(16, 4.2 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    if not runtimes:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no runtime was fitted", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(rows, 3, squeeze=False)
    for (ax, rax, dax), r in zip(axes, runtimes):
        y = np.asarray(r.measured, dtype=float)
        p = np.asarray(r.heldout, dtype=float)
        lo = float(min(y.min(), p.min()))
        hi = float(max(y.max(), p.max()))
        pad = 0.05 * (hi - lo or hi or 1.0)
        line = np.array([max(lo - pad, 0.0), hi + pad])
        ax.fill_between(line, 0.9 * line, 1.1 * line, color="tab:green", alpha=0.15, lw=0, label="+-10%")
        ax.plot(line, line, color="black", lw=1, label="y = x")
        ax.scatter(y, p, s=14, color="tab:blue", alpha=0.8, label="held-out prediction")
        rel = 100.0 * (p - y) / y
        worst = [i for i in np.argsort(-np.abs(rel))[:5] if abs(rel[i]) > 10.0]
        if worst:
            ax.scatter(y[worst], p[worst], s=40, facecolors="none", edgecolors="tab:red",
                       label="error > 10% (worst 5)")
            for i in worst:
                ax.annotate(r.ids[i], (y[i], p[i]), textcoords="offset points", xytext=(4, -10), fontsize=7,
                            color="tab:red")
        ext = (r.edges or {}).get("extremes", {})
        idx = {i: k for k, i in enumerate(r.ids)}
        ek = [idx[v["id"]] for v in ext.values() if v["id"] in idx]
        if ek:
            ax.scatter(y[ek], p[ek], s=30, marker="D", facecolors="none", edgecolors="tab:orange",
                       label="extreme architectures")
        ax.set_xlim(line[0], line[1])
        ax.set_ylim(line[0], line[1])
        ax.set_xlabel("measured latency (us)")
        ax.set_ylabel("predicted latency (us)")
        ax.set_title(f"{r.runtime}: n={r.n}, {r.cv_method} ({r.n_folds} folds), "
                     f"scale={r.scale:.4g}, bias={r.bias:.4g} us", fontsize=9)
        ax.text(0.02, 0.98, _metrics_text(r.heldout_after), transform=ax.transAxes, va="top", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})
        ax.legend(loc="lower right", fontsize=8)

        rax.axhspan(-10, 10, color="tab:green", alpha=0.15, lw=0)
        rax.axhline(0, color="black", lw=1)
        rax.scatter(y, rel, s=14, color="tab:blue", alpha=0.8)
        rax.set_xlabel("measured latency (us)")
        rax.set_ylabel("held-out relative error (%)")
        rax.set_title(f"{r.runtime}: relative error of held-out predictions", fontsize=9)
        lim = max(15.0, float(np.abs(rel).max()) * 1.1)
        rax.set_ylim(-lim, lim)
        for i in worst:
            rax.annotate(r.ids[i], (y[i], rel[i]), textcoords="offset points", xytext=(4, 4), fontsize=7,
                         color="tab:red")
        dec = (r.edges or {}).get("deciles", [])
        if dec:
            dax.bar([d["decile"] for d in dec], [d["mape"] for d in dec], color="tab:blue", label="MAPE")
            dax.scatter([d["decile"] for d in dec], [d["max_ape"] for d in dec], color="tab:red", marker="_",
                        s=200, label="worst")
            dax.legend(fontsize=8)
        cons = ", ".join(f"p{c['percentile']}: {_pct(c['overshoot'])}" for c in (r.edges or {}).get("constraint", []))
        dax.set_xlabel("decile of measured latency (1 = fastest)")
        dax.set_ylabel("held-out |error| (%)")
        dax.set_title(f"{r.runtime}: error by latency decile ({r.model})\nover-bound share {cons}", fontsize=9)
    return fig


# --- text summary -------------------------------------------------------------------------

def _num(v: Any, spec: str, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return format(v, spec) + suffix


def summary_lines(fit_report: FitReport) -> List[str]:
    """Aligned text table, one line per runtime, of the held-out accuracy and coefficients."""
    rows = [["runtime", "n", "model", "MAPE before -> after", "within +-10%", "Spearman", "scale", "bias (us)"]]
    for r in fit_report.runtimes.values():
        before, after = r.heldout_before, r.heldout_after
        w10 = after.get("within_10")
        rows.append([
            r.runtime, str(r.n), r.model,
            f"{_num(before.get('mape'), '.2f', '%')} -> {_num(after.get('mape'), '.2f', '%')}",
            _num(None if w10 is None else 100 * w10, ".1f", "%"),
            _num(after.get("spearman"), ".4f"),
            _num(r.scale, ".6g"), _num(r.bias, ".6g"),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {1, 3, 4, 5, 6, 7}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    methods = sorted({f"{r.cv_method}" for r in fit_report.runtimes.values()})
    model = "Huber" if fit_report.robust else "least-squares"
    lines.append(f"(held-out accuracy: {', '.join(methods) or 'no runtimes'}; 'before' is the raw sum of the "
                 f"look-ups; scale and bias are the {model} scale-bias fit, 'model' the one chosen)")
    for r in fit_report.runtimes.values():
        if r.network_const:
            lines.append(f"{r.runtime}: per-network constant {r.network_const:.4g} us (the table's @network row) "
                         "in 'before' and in every model, added once per network; bias is the rest")
        lines.extend(edge_lines(r))
    return lines


def edge_lines(r: Any) -> List[str]:
    """The edges of one runtime's held-out predictions: models compared, worst, extremes, constraints."""
    out: List[str] = []
    if r.candidates:
        out.append(f"{r.runtime}: held-out MAPE by model: " + ", ".join(
            f"{k} {_num(v['heldout_after'].get('mape'), '.2f', '%')}" for k, v in r.candidates.items())
            + f" -> {r.model}")
    e = r.edges or {}
    if e.get("worst"):
        w = e["worst"]
        out.append(f"{r.runtime}: worst {w['id']} {w['error_pct']:+.1f}% "
                   f"(measured {w['measured_us']:.0f} us, predicted {w['pred_us']:.0f} us)")
    if e.get("extremes"):
        out.append(f"{r.runtime}: extremes: " + ", ".join(
            f"{name} {v['error_pct']:+.1f}%" for name, v in e["extremes"].items()))
    if e.get("deciles"):
        out.append(f"{r.runtime}: MAPE by latency decile: " + " ".join(
            f"{d['mape']:.1f}" for d in e["deciles"]) + " (%)")
    if e.get("constraint"):
        out.append(f"{r.runtime}: constraint check (bound = percentile of measured; share predicted within "
                   f"that exceed it): " + ", ".join(
                       f"p{c['percentile']} {_num(None if c['overshoot'] is None else 100 * c['overshoot'], '.0f', '%')}"
                       f" of {c['n_predicted_within']}" for c in e["constraint"]))
    return out
