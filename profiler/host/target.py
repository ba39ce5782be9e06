"""The host target: this machine's CPU, onnxruntime and nnabla, in worker subprocesses."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from typing import Any, Dict, Iterator, List, Optional, Sequence

from profiler.errors import ProfilerError
from profiler.host.timing import HOST_RUNTIMES
from profiler.session.record import failed
from profiler.session.target import SessionConfig, Target


class HostTarget(Target):
    """This machine: onnxruntime and nnabla on the CPU, in worker subprocesses."""

    name = "host"
    measures_constant = True

    def facts(self, runtimes: Sequence[str]) -> Dict[str, Any]:
        from profiler.host.timing import runtime_versions
        from profiler.host.facts import host_facts
        facts: Dict[str, Any] = {"target": "host", "device": host_facts()}
        tools: Dict[str, str] = {}
        for rt in runtimes:
            tools.update(runtime_versions(rt))
        facts["tools"] = tools
        return facts

    def check_runtimes(self, runtimes: Sequence[str]) -> None:
        import importlib.util
        needs = {"ORT_CPU": "onnxruntime", "NNABLA_CPU": "nnabla"}
        for rt in runtimes:
            if rt not in HOST_RUNTIMES:
                raise ProfilerError(f"--runtime {rt}: not a host runtime (choose from "
                                    f"{', '.join(HOST_RUNTIMES)}; phone runtimes need --target phone)")
            if importlib.util.find_spec(needs[rt]) is None:
                raise ProfilerError(f"--runtime {rt}: the Python package {needs[rt]!r} is not installed "
                                    "here (the docker bench image carries only onnxruntime); install it "
                                    "or choose another runtime")

    def run_batch(self, runtime: str, items: List[Dict[str, Any]], cfg: SessionConfig) -> Iterator[Dict[str, Any]]:
        """One worker for the batch; if it crashes or hangs, the unreported items are re-run
        one worker each, so the failure is pinned on the module that causes it."""
        reported: set = set()
        crashed = yield from self._one_worker(runtime, items, cfg, reported)
        if crashed:
            for item in [it for it in items if it["uid"] not in reported]:
                yield from self._one_worker(runtime, [item], cfg, reported)

    def _one_worker(self, runtime: str, items: List[Dict[str, Any]], cfg: SessionConfig, reported: set):
        """Run one worker over ``items``; return True if it died or hung before reporting all.

        With a single item, its crash or timeout is recorded as that item's failure.
        """
        job = {"runtime": runtime, "config": asdict(cfg.measure), "affinity": cfg.affinity,
               "items": items}
        env = dict(os.environ, OMP_NUM_THREADS=str(cfg.measure.threads))
        mine = {it["uid"] for it in items}
        with tempfile.TemporaryFile(mode="w+") as err:
            proc = subprocess.Popen([sys.executable, "-m", "profiler.host.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=env)
            lines: "queue.Queue[Optional[str]]" = queue.Queue()

            def pump() -> None:
                assert proc.stdout is not None
                for line in proc.stdout:
                    lines.put(line)
                lines.put(None)

            threading.Thread(target=pump, daemon=True).start()
            problem = ""
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(job))
                proc.stdin.close()
                while not mine <= reported:
                    budget = cfg.timeout_s * len(mine - reported)
                    try:
                        line = lines.get(timeout=budget)
                    except queue.Empty:
                        problem = f"timed out after {budget:g} s (worker killed)"
                        break
                    if line is None:
                        break
                    rec = json.loads(line)
                    reported.add(rec["uid"])
                    yield rec
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            if mine <= reported:
                return False
            if not problem:
                err.seek(0)
                tail = " | ".join(err.read().strip().splitlines()[-2:])
                problem = f"worker died ({_exit_reason(proc.returncode)}){': ' + tail if tail else ''}"
            if len(items) == 1:
                reported.add(items[0]["uid"])
                yield failed(items[0]["uid"], problem)
            return True


def _exit_reason(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
