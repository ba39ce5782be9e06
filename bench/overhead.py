"""Session overhead: the share of a host pipeline's wall time spent outside measured inference.

Runs the whole pipeline (generate, bench modules, table, sample 50 networks, bench networks,
fit) on the CIFAR space with default settings, timing each stage, and compares the wall time
with the time inside timed inference calls (the sum of every stored sample).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import CIFAR, print_table, write_result


def measured_seconds(store: Path) -> float:
    from profiler.session.store import read_store
    total_us = 0.0
    for rec in read_store(store).records:
        if rec["status"] == "ok":
            total_us += sum(sum(v) for v in rec["samples"].values())
    return total_us / 1e6


def main() -> int:
    from profiler.pipeline.run import run_pipeline
    from profiler.host.target import HostTarget
    from profiler.session.target import SessionConfig

    stages = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        last = [t0, None]

        def on_stage(msg: str) -> None:
            now = time.perf_counter()
            if last[1] is not None:
                stages.append((last[1], now - last[0]))
            last[0], last[1] = now, msg

        result = run_pipeline(CIFAR, work, HostTarget(), SessionConfig(runtimes=["ORT_CPU"]), num=50,
                              on_stage=on_stage)
        end = time.perf_counter()
        stages.append((last[1], end - last[0]))
        wall = end - t0
        inside = measured_seconds(work / "modules.results") + measured_seconds(work / "networks.results")
    rows = [[name, secs, f"{100 * secs / wall:.1f}%"] for name, secs in stages]
    print("host pipeline, CIFAR space, ORT_CPU, 50 networks, default settings")
    print_table(["stage", "seconds", "share"], rows)
    share = 1 - inside / wall
    print(f"wall {wall:.1f} s, inside timed inference calls {inside:.1f} s -> outside share {100 * share:.1f}%")
    print(f"-> {write_result('overhead', {'wall_s': wall, 'measured_s': inside, 'outside_share': share, 'stages': dict(stages)})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
