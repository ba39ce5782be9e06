"""Contention: how a loaded machine inflates a whole network against its modules' sum.

Usage: python bench/contention.py RUN_DIR [--arch arch-0000] [--rounds 15] [--reps 3]

RUN_DIR is a ``profiler run --target host`` directory (``modules/`` and ``networks/``). One
network and each of its block modules get an onnxruntime session (one thread); they are timed
interleaved, round by round (the network ``--reps`` times, then each module ``--reps`` times), so
drift hits both alike. Prints the network's median and minimum, the sum of the modules' medians
and minima, and the two ratios. On a quiet machine both ratios are close (the per-network
constant of docs/design.md); a median ratio far above the minimum ratio means long runs are
preempted more than short ones (docs/accuracy.md, OFA section).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple


def _session(path: Path, shapes: Sequence[Sequence[int]]) -> Tuple[Any, Dict[str, Any]]:
    import numpy as np
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(0)
    feeds = {i.name: rng.uniform(-1, 1, s).astype(np.float32) for i, s in zip(sess.get_inputs(), shapes)}
    return sess, feeds


def _time(item: Tuple[Any, Dict[str, Any]], reps: int) -> List[float]:
    sess, feeds = item
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        out.append(time.perf_counter() - t0)
    return out


def measure(run: Path, arch: str, rounds: int, reps: int) -> Dict[str, float]:
    nets = json.loads((run / "networks" / "manifest.json").read_text())
    mods = json.loads((run / "modules" / "manifest.json").read_text())
    by_uid = {e["uid"]: e for e in mods["entries"]}
    net = next(e for e in nets["entries"] if e["uid"] == arch)
    uids = net["module_uids"]["block"]
    items = [_session(run / "networks" / net["files"]["onnx"], net["input_shapes"])]
    items += [_session(run / "modules" / by_uid[u]["files"]["onnx"], by_uid[u]["input_shapes"]) for u in uids]
    for it in items:                      # warm-up
        _time(it, reps)
    samples: List[List[float]] = [[] for _ in items]
    for _ in range(rounds):
        for i, it in enumerate(items):
            samples[i] += _time(it, reps)
    net_med, net_min = statistics.median(samples[0]), min(samples[0])
    sum_med = sum(statistics.median(s) for s in samples[1:])
    sum_min = sum(min(s) for s in samples[1:])
    return {"modules": len(uids), "net_median_ms": 1e3 * net_med, "net_min_ms": 1e3 * net_min,
            "sum_median_ms": 1e3 * sum_med, "sum_min_ms": 1e3 * sum_min,
            "ratio_median": net_med / sum_med, "ratio_min": net_min / sum_min}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="a profiler run --target host directory")
    ap.add_argument("--arch", default="arch-0000", help="network id (default arch-0000)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--reps", type=int, default=3, help="timed runs per item per round (default 3)")
    args = ap.parse_args()
    r = measure(args.run, args.arch, args.rounds, args.reps)
    print(f"{args.arch}: network median {r['net_median_ms']:.2f} ms, min {r['net_min_ms']:.2f} ms; "
          f"sum of {r['modules']} modules median {r['sum_median_ms']:.2f} ms, min {r['sum_min_ms']:.2f} ms; "
          f"ratio by medians {r['ratio_median']:.2f}, by minima {r['ratio_min']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
