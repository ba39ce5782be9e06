"""Look-up throughput: architectures estimated per second.

Compares, in one run on the same 10^5 sampled CIFAR architectures:
  * baseline  - the original profiler's way: a Python dict look-up per module per architecture;
  * LatencyTable.lookup, one architecture at a time;
  * LatencyTable.sum_indices, vectorised over the whole batch (module-index matrix);
  * the generated estimator.py: estimate() on ModuleUIDs and estimate_choices() on choice indices per
    architecture, estimate_many() on a 10^5 x 21 int8 choice array;
  * a numpy copy of 512 MiB (larger than the 480 MiB last-level cache lscpu reports on the bench
    machine), for this machine's memory bandwidth in the same run, against the bytes the batched
    path reads (its choices) and writes (its result).
Methods run in turn in every round (see interleaved), and CPU time is reported next to wall time,
as drift controls on a shared machine. Values are synthetic (look-up speed does not depend on
them); UIDs are the real block UIDs.
"""

from __future__ import annotations

import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from common import CIFAR, print_table, write_result

N = 100_000
RT = "CPU"
COPY_BYTES = 512 << 20
ROUNDS = 7
WARM_BELOW = 0.05
WARM_CALLS = 5
MANY = "estimator.py estimate_many(int8 array 1e5 x 21)"


def interleaved(fns: Dict[str, Callable[[], Any]], rounds: int) -> Dict[str, Tuple[float, float, float]]:
    """Median (wall s, CPU s of this process, wall s of the round's first call) of each function,
    run in turn in every round, so that a change of the machine's load during the run touches
    every method alike. A function faster than WARM_BELOW s runs WARM_CALLS times back to back in
    its turn and the round counts the median of the calls after the first (warm caches); the
    first call of its turn (caches filled by the other methods) is kept as the cold figure."""
    wall: Dict[str, List[float]] = {k: [] for k in fns}
    cpu: Dict[str, List[float]] = {k: [] for k in fns}
    cold: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            walls, cpus = [], []
            for _call in range(WARM_CALLS):
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                if walls[0] >= WARM_BELOW:
                    break
            cold[name].append(walls[0])
            k = 1 if len(walls) > 1 else 0
            wall[name].append(statistics.median(walls[k:]))
            cpu[name].append(statistics.median(cpus[k:]))
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k]), statistics.median(cold[k])) for k in fns}


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

        src = np.ones(COPY_BYTES, dtype=np.uint8)
        dst = np.empty_like(src)

        def copy():
            np.copyto(dst, src)

        ref = np.array(baseline())
        assert np.allclose(est_choices(), ref) and np.allclose(est_many_arr(), ref)
        assert np.allclose(vectorised(), ref) and np.allclose(est_single(), ref)
        methods = [("baseline (dict per module)", baseline, N),
                   ("LatencyTable.lookup per arch", single, 20_000),
                   ("LatencyTable.sum_indices (batch 1e5)", vectorised, N),
                   ("estimator.py estimate() per arch", est_single, N),
                   ("estimator.py estimate_choices() per arch", est_choices, N),
                   (MANY, est_many_arr, N),
                   ("numpy copy", copy, COPY_BYTES)]
        load_before = os.getloadavg()[0]
        times = interleaved({name: fn for name, fn, _ in methods}, ROUNDS)
        load_after = os.getloadavg()[0]
        del src, dst
    t_copy, c_copy, _ = times.pop("numpy copy")
    bandwidth = 2 * COPY_BYTES / t_copy  # bytes read + written per second by a plain copy
    read_bytes = choice_arr.nbytes  # the int8 choices; the 11 pair tables' touched lines stay in cache
    written_bytes = 8 * N  # the float64 result (its blocks' buffers are reused and stay in cache)
    t_base, c_base, _ = times["baseline (dict per module)"]
    rows, out = [], {}
    for name, _fn, n in methods[:-1]:
        t, c, t_cold = times[name]
        rows.append([name, n / t, t_base * n / (N * t), n / c, c_base * n / (N * c)])
        out[name] = {"archs_per_s": n / t, "vs_baseline": t_base * n / (N * t), "median_s": t,
                     "cpu_archs_per_s": n / c, "cpu_vs_baseline": c_base * n / (N * c), "median_cpu_s": c,
                     "cold_archs_per_s": n / t_cold, "n": n}
    print(f"look-up throughput, {N} CIFAR architectures, {len(uids)} modules, medians of {ROUNDS} interleaved "
          "rounds (wall time, and CPU time of this process as a drift control on a shared machine; calls "
          f"under {WARM_BELOW} s: median of {WARM_CALLS - 1} warm calls per round)")
    print_table(["method", "archs/s", "x baseline", "archs/CPU-s", "x baseline (CPU)"], rows)
    print(f"1-minute load average {load_before:.2f} before, {load_after:.2f} after ({os.cpu_count()} CPUs)")
    t_arr, c_arr, cold_arr = times[MANY]
    for label, tt, tc in (("wall", t_arr, t_copy), ("CPU", c_arr, c_copy)):
        bw = 2 * COPY_BYTES / tc
        print(f"[{label}] numpy copy of {COPY_BYTES >> 20} MiB: {bw / 1e9:.2f} GB/s (read+write); batched choices "
              f"read {read_bytes / N:.0f} B/arch = {read_bytes / tt / 1e9:.3f} GB/s ({100 * read_bytes / tt / bw:.1f} %"
              f" of it), read+write {(read_bytes + written_bytes) / N:.0f} B/arch = "
              f"{(read_bytes + written_bytes) / tt / 1e9:.3f} GB/s ({100 * (read_bytes + written_bytes) / tt / bw:.1f} %)")
    t_ch, c_ch, _ = times["estimator.py estimate_choices() per arch"]
    print(f"estimate_many on int8: first call of each turn (caches filled by the other methods) {N / cold_arr:,.0f} "
          f"archs/s = {N / cold_arr / (N / t_base):.1f} x baseline")
    print(f"estimate_choices: {1e6 * t_ch / N:.2f} us/call wall, {1e6 * c_ch / N:.2f} us/call CPU")
    print(f"-> {write_result('lookup', {'n_arch': N, 'rounds': ROUNDS, 'loadavg': [load_before, load_after], 'results': out, 'copy_bytes': COPY_BYTES, 'copy_bandwidth_Bps': bandwidth, 'copy_bandwidth_cpu_Bps': 2 * COPY_BYTES / c_copy, 'choice_read_Bps': read_bytes / t_arr, 'choice_traffic_Bps': (read_bytes + written_bytes) / t_arr})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
