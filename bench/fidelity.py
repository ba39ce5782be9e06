"""Fidelity: held-out accuracy of the estimator on the host.

One run: both granularities' module tables (ORT_CPU), 100 sampled CIFAR networks measured
once, then the scale-and-bias fit evaluated with 5-fold held-out predictions for
  * granularity block vs leaf,
  * table key Layers Time vs Forward Propagate (measured key: Total Inference Time),
  * 10, 25, 50 and 100 sampled networks (the first n by id).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import CIFAR, print_table, write_result

NUMS = (10, 25, 50, 100)


def main() -> int:
    from profiler.fit import fit_runtimes
    from profiler.generate import generate
    from profiler.manifest import read_manifest
    from profiler.runner import HostTarget, SessionConfig, run_session
    from profiler.sample import sample
    from profiler.store import read_store
    from profiler.tablebuild import build_table

    cfg = SessionConfig(runtimes=["ORT_CPU"])
    rows, out = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tables = {}
        for g in ("block", "leaf"):
            generate(CIFAR, work / g, g)
            run_session(work / g, work / f"{g}.results", HostTarget(), cfg)
            tables[g], _ = build_table([work / f"{g}.results"], work / f"table-{g}")
        sample(CIFAR, max(NUMS), 0, work / "nets")
        run_session(work / "nets", work / "nets.results", HostTarget(), cfg)
        entries = read_manifest(work / "nets")["entries"]
        meas = read_store(work / "nets.results").latest()
        for g, table in tables.items():
            for tkey in ("Layers Time", "Forward Propagate"):
                for n in NUMS:
                    ids, xs, ys = [], [], []
                    for e in entries[:n]:
                        rec = meas.get((e["uid"], "ORT_CPU"))
                        if rec is None or rec["status"] != "ok":
                            continue
                        ids.append(e["uid"])
                        xs.append(sum(table.lookup(u, "ORT_CPU", tkey) for u in e["module_uids"][g]))
                        ys.append(rec["stats"]["Total Inference Time"]["Avg_Time"])
                    fit = fit_runtimes({"ORT_CPU": (ids, xs, ys)}).runtimes["ORT_CPU"]
                    m = fit.heldout_after
                    rows.append([g, tkey, len(ids), f"{100 * m['within_5']:.0f}%", f"{100 * m['within_10']:.0f}%",
                                 f"{m['spearman']:.4f}", f"{m['mape']:.2f}%"])
                    out[f"{g}/{tkey}/{n}"] = {"n": len(ids), **{k: m[k] for k in
                                              ("within_5", "within_10", "spearman", "kendall", "mape", "rmse")}}
    print("held-out accuracy (5-fold), ORT_CPU, y = network Total Inference Time (Avg_Time)")
    print_table(["granularity", "table key", "networks", "+-5%", "+-10%", "Spearman", "MAPE"], rows)
    print(f"-> {write_result('fidelity', {'results': out})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
