"""Reproducibility: the host table built twice, in separate `profiler bench` processes.

Reports, per LatencyKey, the median and p90 of the per-module relative difference
|a - b| / mean(a, b) of Avg_Time and Median_Time between the two tables (ORT_CPU, block
modules of the CIFAR space, default bench settings).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common import CIFAR, ROOT, print_table, write_result

PROFILER = [sys.executable, "-m", "profiler"]


def main() -> int:
    import numpy as np
    from profiler.table.latency import LatencyTable

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(PROFILER + ["generate", "--space", str(CIFAR), "--out", str(tmp / "m"), "-q"], check=True)
        tables = []
        for i in (1, 2):
            subprocess.run(PROFILER + ["bench", "--models", str(tmp / "m"), "--runtime", "ORT_CPU",
                                       "--out", str(tmp / f"s{i}.results"), "-q"], check=True, cwd=ROOT)
            subprocess.run(PROFILER + ["table", "--results", str(tmp / f"s{i}.results"), "--out",
                                       str(tmp / f"t{i}")], check=True)
            tables.append(LatencyTable.load(tmp / f"t{i}.json"))
    a, b = tables
    rows, out = [], {}
    for key in ("Forward Propagate", "Total Inference Time", "Layers Time"):
        for stat in ("Avg_Time", "Median_Time"):
            va, vb = a.vector("ORT_CPU", key, stat), b.vector("ORT_CPU", key, stat)
            rel = np.abs(va - vb) / ((va + vb) / 2)
            med, p90 = float(np.median(rel)), float(np.percentile(rel, 90))
            rows.append([key, stat, f"{100 * med:.2f}%", f"{100 * p90:.2f}%", len(rel)])
            out[f"{key}/{stat}"] = {"median_rel_diff": med, "p90_rel_diff": p90, "n": len(rel)}
    print("table reproducibility, two separate sessions, ORT_CPU, CIFAR block modules")
    print_table(["key", "stat", "median |diff|", "p90 |diff|", "modules"], rows)
    print(f"-> {write_result('reproducibility', {'results': out})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
