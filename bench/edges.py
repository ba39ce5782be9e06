"""Issue 13 figures: collect the held-out accuracy of ``profiler fit`` reports side by side.

Usage: python bench/edges.py REPORT_DIR...   (each holding a report.json from ``profiler fit``)
Prints one Markdown row per report: raw-sum MAPE (with and without the table's per-network
constant; drift factor when fitted with --normalise), chosen model, held-out MAPE / ±10% / ±5% /
Spearman / worst, and the extremes' errors. See docs/accuracy.md for how the reports were made.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(path: Path) -> str:
    doc = json.loads((path / "report.json").read_text())
    r = next(iter(doc["runtimes"].values()))
    b, a, e = r["heldout"]["before"], r["heldout"]["after"], r["edges"]
    ext = ", ".join(f"{k} {v['error_pct']:+.1f}" for k, v in e["extremes"].items())
    over = "/".join("-" if c["overshoot"] is None else f"{100 * c['overshoot']:.0f}" for c in e["constraint"])
    c0 = float(r.get("network_const_us", 0.0))
    nets = r["networks"]
    bare = 100 * sum(abs(n["accum_us"] - c0 - n["measured_us"]) / n["measured_us"] for n in nets) / len(nets)
    drift = doc.get("drift", {}).get(r["runtime"], 1.0) if doc.get("normalise") else None
    norm = "-" if drift is None else f"{drift:.3f}"
    return (f"| {path.name} | {r['n']} | {b['mape']:.1f}% | {bare:.1f}% | {c0:.1f} | {norm} | {r['model']} | {a['mape']:.2f}% | "
            f"{100 * a['within_10']:.0f}% | {100 * a['within_5']:.0f}% | {a['spearman']:.3f} | "
            f"{e['worst']['error_pct']:+.1f}% | {over} | {ext} |")


if __name__ == "__main__":
    print("| fit | n | raw-sum MAPE | without the constant | constant µs | drift factor | model | held-out MAPE "
          "| ±10% | ±5% | Spearman | worst | overshoot p10/p25/p50 (%) | extremes (%) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in sys.argv[1:]:
        print(row(Path(p)))
