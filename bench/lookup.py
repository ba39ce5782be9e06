"""Look-up throughput: architectures estimated per second.

Compares, in one run on the same 10^5 sampled CIFAR architectures:
  * baseline  - the original profiler's way: a Python dict look-up per module per architecture;
  * LatencyTable.lookup, one architecture at a time;
  * LatencyTable.sum_indices, vectorised over the whole batch (module-index matrix);
  * the generated estimator.py: estimate() on ModuleUIDs and estimate_choices() on choice indices per
    architecture, estimate_many() on a 10^5 x 21 int8 choice array;
  * a numpy copy of 64 MiB, for this machine's memory bandwidth in the same run.
Values are synthetic (look-up speed does not depend on them); UIDs are the real block UIDs.
"""

from __future__ import annotations

import importlib.util
import random
import sys
import tempfile
from pathlib import Path

from common import CIFAR, median_time, print_table, write_result

N = 100_000
RT = "CPU"


def main() -> int:
    import numpy as np
    from profiler.space import arch as A
    from profiler.space import modules as M
    from profiler.fit.codegen import write_estimator
    from profiler.space.searchspace import load_space
    from profiler.table.latency import LatencyTable

    space = load_space(CIFAR)
    pos = A.positions(space)
    uids = [m.uid for m in A.candidate_modules(space, "block")]
    rng = random.Random(0)
    data = {u: {RT: {k: {"Min_Time": v, "Avg_Time": v, "Max_Time": v}
                     for k in ("Layers Time", "Forward Propagate", "Total Inference Time")}}
            for u in uids for v in [rng.uniform(10, 500)]}
    table = LatencyTable(data)
    choice_pos = [p for p in pos if p.choice]
    choices = [[rng.randrange(p.n_choices) for p in choice_pos] for _ in range(N)]
    archs = [M.module_uids(A.blocks_of(pos, c), "block") for c in choices]
    choice_arr = np.array(choices, dtype=np.int8)
    width = max(len(a) for a in archs)
    idx = np.full((N, width), -1, dtype=np.int64)
    for i, a in enumerate(archs):
        idx[i, :len(a)] = table.index_of(a)

    def baseline():
        return [sum(data[u][RT]["Layers Time"]["Avg_Time"] for u in a) for a in archs]

    def single():
        return [sum(table.lookup(u, RT) for u in a) for a in archs[:20_000]]

    def vectorised():
        return table.sum_indices(idx, RT)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "estimator_bench.py"
        from profiler.fit.calibration import Calibration
        from profiler.pipeline.fit import describe_space
        cal = Calibration("scale-bias", 0.0, {u: data[u][RT]["Layers Time"]["Avg_Time"] for u in uids},
                          {"scale": 1.0, "bias": 0.0})
        write_estimator(path, {RT: cal}, "Layers Time", "Avg_Time", {"device": "bench"},
                        describe_space(space, "block"))
        spec = importlib.util.spec_from_file_location("estimator_bench", path)
        est = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(est)

        def est_single():
            return [est.estimate(a, RT) for a in archs]

        def est_choices():
            return [est.estimate_choices(c, RT) for c in choices]

        def est_many_arr():
            return est.estimate_many(choice_arr, RT)

        src = np.ones(64 << 20, dtype=np.uint8)
        dst = np.empty_like(src)

        def copy():
            np.copyto(dst, src)

        ref = np.array(baseline())
        assert np.allclose(est_choices(), ref) and np.allclose(est_many_arr(), ref)
        assert np.allclose(vectorised(), ref) and np.allclose(est_single(), ref)
        rows = []
        t_base = median_time(baseline)
        results = {"baseline (dict per module)": (t_base, N)}
        results["LatencyTable.lookup per arch"] = (median_time(single), 20_000)
        results["LatencyTable.sum_indices (batch 1e5)"] = (median_time(vectorised), N)
        results["estimator.py estimate() per arch"] = (median_time(est_single), N)
        results["estimator.py estimate_choices() per arch"] = (median_time(est_choices), N)
        t_arr = median_time(est_many_arr)
        results["estimator.py estimate_many(int8 array 1e5 x 21)"] = (t_arr, N)
        t_copy = median_time(copy)
    bandwidth = 2 * src.nbytes / t_copy  # bytes read + written per second by a plain copy
    read_bytes = choice_arr.nbytes  # the int8 choices; the 11 pair tables' touched lines stay in cache
    base_rate = N / t_base
    out = {}
    for name, (t, n) in results.items():
        rate = n / t
        rows.append([name, rate, rate / base_rate])
        out[name] = {"archs_per_s": rate, "vs_baseline": rate / base_rate, "median_s": t, "n": n}
    print(f"look-up throughput, {N} CIFAR architectures, {len(uids)} modules, median of 5")
    print_table(["method", "archs/s", "x baseline"], rows)
    read_rate = read_bytes / t_arr
    print(f"numpy copy bandwidth {bandwidth / 1e9:.2f} GB/s (read+write); batched choices read "
          f"{read_bytes / N:.0f} B/arch = {read_rate / 1e9:.3f} GB/s, {100 * read_rate / bandwidth:.1f} % of it")
    print(f"estimate_choices: {1e6 * results['estimator.py estimate_choices() per arch'][0] / N:.2f} us/call")
    print(f"-> {write_result('lookup', {'n_arch': N, 'results': out, 'copy_bandwidth_Bps': bandwidth, 'choice_read_Bps': read_rate})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
