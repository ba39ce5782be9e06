"""Worker process: ``python -m profiler.worker`` measures a batch of models (pyperf style).

Reads one JSON job from stdin::

    {"runtime": "ORT_CPU", "config": {MeasureConfig fields}, "affinity": [cpu, ...] | null,
     "items": [{"uid", "onnx", "nnp", "input_shapes"}, ...]}

and writes one JSON line per item to stdout as soon as it is measured::

    {"uid": ..., "status": "ok", "samples": {LatencyKey: [µs, ...]}, "elapsed_s": ...}
    {"uid": ..., "status": "failed", "error": "..."}

A crash (segfault, OOM kill) ends the process; the parent sees which items were reported
and records the one in flight as failed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import Any, Dict, TextIO


def run_job(job: Dict[str, Any], out: TextIO) -> None:
    from profiler.hostbench import MeasureConfig, measure

    cfg = MeasureConfig(**job.get("config", {}))
    if job.get("affinity"):
        os.sched_setaffinity(0, job["affinity"])
    for item in job["items"]:
        t0 = time.perf_counter()
        try:
            samples = measure(job["runtime"], item, cfg)
            rec: Dict[str, Any] = {"uid": item["uid"], "status": "ok", "samples": samples}
        except Exception as e:  # a module that cannot run is recorded, not fatal
            last = traceback.extract_tb(e.__traceback__)[-1:]
            where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
            rec = {"uid": item["uid"], "status": "failed", "error": f"{type(e).__name__}: {e}{where}"}
        rec["elapsed_s"] = round(time.perf_counter() - t0, 4)
        out.write(json.dumps(rec) + "\n")
        out.flush()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    job = json.load(sys.stdin)
    threads = str(job.get("config", {}).get("threads", 1))
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # before nnabla/numpy spin up pools
    run_job(job, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
