"""Worker process: ``python -m profiler.host.worker`` measures a batch of models (pyperf style).

Reads one JSON job from stdin::

    {"runtime": "ORT_CPU", "config": {MeasureConfig fields}, "affinity": [cpu, ...] | null,
     "items": [{"uid", "onnx", "nnp", "input_shapes"}, ...]}

and writes one JSON line per item to stdout (failures at once, results when the
interleaved batch is done)::

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
    """Measure the job's items interleaved; failures are reported at once, results at the end."""
    from profiler.host.timing import measure_batch
    from profiler.session import record
    from profiler.session.target import MeasureConfig

    cfg = MeasureConfig(**job.get("config", {}))
    if job.get("affinity"):
        os.sched_setaffinity(0, job["affinity"])
    t0 = time.perf_counter()

    def emit(rec: Dict[str, Any]) -> None:
        rec["elapsed_s"] = round(time.perf_counter() - t0, 4)
        out.write(json.dumps(rec) + "\n")
        out.flush()

    def failed(item: Dict[str, Any], err: BaseException) -> None:
        last = traceback.extract_tb(err.__traceback__)[-1:]
        where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
        emit(record.failed(item["uid"], f"{type(err).__name__}: {err}{where}"))

    results = measure_batch(job["runtime"], job["items"], cfg, on_failure=failed)
    for uid, samples in results.items():
        emit(record.measured(uid, samples))


def die_with_parent() -> None:
    """Exit when the parent session dies (even by SIGKILL): Linux ``PR_SET_PDEATHSIG``,
    else a watchdog thread polling ``getppid``."""
    parent = os.getppid()
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0:  # PR_SET_PDEATHSIG = 1
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return
    except (OSError, AttributeError):
        pass
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    die_with_parent()
    job = json.load(sys.stdin)
    threads = str(job.get("config", {}).get("threads", 1))
    os.environ.setdefault("OMP_NUM_THREADS", threads)  # before nnabla/numpy spin up pools
    run_job(job, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
