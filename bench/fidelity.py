"""Fidelity: held-out accuracy of the estimator on the host.

One run: both granularities' module tables (ORT_CPU), 100 sampled CIFAR networks measured
once, then the scale-and-bias fit evaluated with 5-fold held-out predictions for
  * granularity block vs leaf,
  * table key Layers Time vs Forward Propagate (measured key: Total Inference Time),
  * statistic Avg_Time vs Median_Time (the same statistic for the table and the network),
  * 10, 25, 50 and 100 sampled networks (the first n by id).

`--keep DIR` keeps the measured models, stores and tables; `--reuse DIR` re-evaluates them
without measuring again.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

from common import CIFAR, print_table, write_result

NUMS = (10, 25, 50, 100)


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="directory to keep the measurements in")
    ap.add_argument("--reuse", help="directory of a previous --keep run: evaluate only")
    opts = ap.parse_args()
    from profiler.fit.models import fit_runtimes
    from profiler.pipeline.generate import generate
    from profiler.models.manifest import read_manifest
    from profiler.host.target import HostTarget
    from profiler.session.loop import run_session
    from profiler.session.target import SessionConfig
    from profiler.pipeline.sample import sample
    from profiler.session.store import read_store
    from profiler.table.build import build_table

    cfg = SessionConfig(runtimes=["ORT_CPU"])
    rows, out = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(opts.reuse or opts.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        tables = {}
        for g in ("block", "leaf"):
            if not opts.reuse:
                generate(CIFAR, work / g, g)
                run_session(work / g, work / f"{g}.results", HostTarget(), cfg)
            tables[g], _ = build_table([work / f"{g}.results"], work / f"table-{g}")
        if not opts.reuse:
            sample(CIFAR, max(NUMS), 0, work / "nets")
            run_session(work / "nets", work / "nets.results", HostTarget(), cfg)
        entries = read_manifest(work / "nets")["entries"]
        meas = read_store(work / "nets.results").latest()
        for g, tkey, stat, n in itertools.product(tables, ("Layers Time", "Forward Propagate"),
                                                  ("Avg_Time", "Median_Time"), NUMS):
            ids, xs, ys = [], [], []
            for e in entries[:n]:
                rec = meas.get((e["uid"], "ORT_CPU"))
                if rec is None or rec["status"] != "ok":
                    continue
                ids.append(e["uid"])
                xs.append(sum(tables[g].lookup(u, "ORT_CPU", tkey, stat) for u in e["module_uids"][g]))
                ys.append(rec["stats"]["Total Inference Time"][stat])
            m = fit_runtimes({"ORT_CPU": (ids, xs, ys)}).runtimes["ORT_CPU"].heldout_after
            rows.append([g, tkey, stat, len(ids), f"{100 * m['within_5']:.0f}%", f"{100 * m['within_10']:.0f}%",
                         f"{m['spearman']:.4f}", f"{m['mape']:.2f}%"])
            out[f"{g}/{tkey}/{stat}/{n}"] = {"n": len(ids), **{k: m[k] for k in (
                "within_5", "within_10", "spearman", "kendall", "mape", "rmse")}}
    print("held-out accuracy (5-fold), ORT_CPU, y = network Total Inference Time (same statistic)")
    print_table(["granularity", "table key", "stat", "networks", "+-5%", "+-10%", "Spearman", "MAPE"], rows)
    print(f"-> {write_result('fidelity', {'results': out})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
