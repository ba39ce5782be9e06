"""A bench session: measure every entry of a manifest on each runtime into a results store.

The session never prints; it reports through ``on_progress(done, total, uid, failed)``.
Targets (the host here; phones in :mod:`profiler.phone`) implement :class:`Target`.
Each result is appended to the store as soon as it exists, so an interrupted session
loses at most the module in flight, and ``resume=True`` skips everything already measured.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from profiler import __version__
from profiler.errors import ProfilerError, ResultsError
from profiler.hostbench import HOST_RUNTIMES, MeasureConfig
from profiler.manifest import entry_file, read_manifest
from profiler.store import ResultsStore, now_iso

Progress = Callable[[int, int, str, int], None]


@dataclass
class SessionConfig:
    runtimes: Sequence[str]
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    batch_size: int = 0  # 0: every pending module of a runtime in one interleaved batch
    timeout_s: float = 600.0
    remeasure: int = 2
    affinity: Optional[List[int]] = None


@dataclass
class SessionSummary:
    store: Path
    total: int
    measured: int
    skipped: int
    failed: List[Tuple[str, str, str]]
    unstable: List[Tuple[str, str, List[str]]]


class Target:
    """Where models run. ``run_batch`` yields one record per item, in any order."""

    name = "abstract"

    def facts(self, runtimes: Sequence[str]) -> Dict[str, Any]:
        raise NotImplementedError

    def check_runtimes(self, runtimes: Sequence[str]) -> None:
        raise NotImplementedError

    def run_batch(self, runtime: str, items: List[Dict[str, Any]], cfg: SessionConfig) -> Iterator[Dict[str, Any]]:
        raise NotImplementedError


class HostTarget(Target):
    """This machine: onnxruntime and nnabla on the CPU, in worker subprocesses."""

    name = "host"

    def facts(self, runtimes: Sequence[str]) -> Dict[str, Any]:
        from profiler.hostbench import runtime_versions
        from profiler.hostinfo import host_facts
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
            proc = subprocess.Popen([sys.executable, "-m", "profiler.worker"], stdin=subprocess.PIPE,
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
                yield {"uid": items[0]["uid"], "status": "failed", "error": problem}
            return True


def _exit_reason(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


# Keys timed around each call with perf_counter; Layers Time comes from profilers whose
# per-node resolution (1 us in onnxruntime's trace) makes its spread meaningless as a noise test.
NOISE_KEYS = ("Forward Propagate", "Total Inference Time")
MAX_REL_IQR = 0.10  # re-measure when the interquartile range exceeds 10 % of the median


def _instability(samples: Dict[str, List[float]]) -> Tuple[List[str], float]:
    """Stability warnings over all keys, and a noise score: the worst IQR / median.

    Every pyperf-style warning is recorded with the result. The re-measure decision uses the
    interquartile range relative to the median of the directly timed keys: unlike the standard
    deviation, it is not inflated by the odd interrupt among hundreds of runs, so it flags a
    measurement whose bulk moved (frequency change, sustained background load).
    """
    import numpy as np
    from profiler.stats import stability
    warnings: List[str] = []
    worst = 0.0
    for key, values in samples.items():
        warnings += [f"{key}: {w}" for w in stability(values)]
        if key in NOISE_KEYS and values:
            q1, med, q3 = np.percentile(values, [25, 50, 75])
            if med > 0:
                worst = max(worst, float((q3 - q1) / med))
    return warnings, worst


def _finalise(rec: Dict[str, Any], runtime: str, attempts: int) -> Dict[str, Any]:
    from profiler.stats import summarize
    out = {"uid": rec["uid"], "runtime": runtime, "status": rec["status"],
           "attempts": attempts, "elapsed_s": rec.get("elapsed_s"), "finished": now_iso()}
    if rec["status"] == "ok":
        out["unit"] = "us"
        out["stats"] = {k: summarize(v) for k, v in rec["samples"].items()}
        out["warnings"] = rec.get("warnings", [])
        out["noisy"] = bool(rec.get("noisy", False))
        out["rel_iqr"] = rec.get("rel_iqr")
        out["samples"] = rec["samples"]
        for extra in ("device_state", "layers"):
            if extra in rec:
                out[extra] = rec[extra]
    else:
        out["error"] = rec.get("error", "unknown error")
    return out


def run_session(models: Path, out: Path, target: Target, cfg: SessionConfig, resume: bool = False,
                on_progress: Optional[Progress] = None) -> SessionSummary:
    """Measure every manifest entry on every runtime of ``cfg`` into the store ``out``."""
    doc = read_manifest(models)
    target.check_runtimes(cfg.runtimes)
    meta = {**target.facts(cfg.runtimes), "runtimes": list(cfg.runtimes),
            "profiler": __version__, "date": now_iso(),
            "models": {"dir": str(Path(doc["_dir"]).resolve()), "kind": doc.get("kind"),
                       "granularity": doc.get("granularity"), "space": doc.get("space")},
            "config": {**asdict(cfg.measure), "batch_size": cfg.batch_size, "remeasure": cfg.remeasure,
                       "affinity": cfg.affinity}}
    if resume and Path(out).exists():
        store, contents = ResultsStore.resume(out, meta)
        if contents.meta.get("target") != meta["target"]:
            store.close()
            raise ResultsError(f"{out}: was measured on target {contents.meta.get('target')!r}, "
                               f"not {meta['target']!r}; use another --out")
        done = contents.done()
    else:
        store = ResultsStore.create(out, meta)
        done = set()
    work = [(rt, e) for rt in cfg.runtimes for e in doc["entries"] if (e["uid"], rt) not in done]
    total = len(cfg.runtimes) * len(doc["entries"])
    finished = total - len(work)
    failed: List[Tuple[str, str, str]] = []
    unstable: List[Tuple[str, str, List[str]]] = []
    with store:
        if on_progress:
            on_progress(finished, total, "", 0)

        def record(rec: Dict[str, Any], rt: str) -> None:
            nonlocal finished
            final = _finalise(rec, rt, rec.get("attempts", 1))
            store.add(final)
            finished += 1
            if final["status"] != "ok":
                failed.append((final["uid"], rt, final["error"]))
            elif final["noisy"]:
                unstable.append((final["uid"], rt, final["warnings"]))
            if on_progress:
                on_progress(finished, total, final["uid"], len(failed))

        for rt in cfg.runtimes:
            items = [_item(doc, e) for r, e in work if r == rt]
            size = cfg.batch_size if cfg.batch_size > 0 else max(1, len(items))
            for start in range(0, len(items), size):
                batch = items[start:start + size]
                held: Dict[str, Dict[str, Any]] = {}  # noisy results waiting for a re-measure
                try:
                    for rec in target.run_batch(rt, batch, cfg):
                        rec = _scored(rec)
                        if rec["status"] == "ok" and rec["noisy"] and cfg.remeasure > 0:
                            held[rec["uid"]] = rec
                        else:
                            record(rec, rt)
                    _remeasure(target, rt, batch, held, cfg)
                finally:  # Ctrl-C or a crash: what was measured is still stored
                    for rec in held.values():
                        record(rec, rt)
    return SessionSummary(Path(out), total, len(work), total - len(work), failed, unstable)


def _item(doc: Dict[str, Any], entry: Dict[str, Any]) -> Dict[str, Any]:
    return {"uid": entry["uid"], "onnx": str(entry_file(doc, entry, "onnx")),
            "nnp": str(entry_file(doc, entry, "nnp")), "input_shapes": entry["input_shapes"]}


def _scored(rec: Dict[str, Any]) -> Dict[str, Any]:
    """The record with its stability warnings, noise score and ``noisy`` flag."""
    if rec["status"] != "ok":
        return rec
    warnings, score = _instability(rec["samples"])
    if score > MAX_REL_IQR:
        warnings.insert(0, f"interquartile range is {100 * score:.0f}% of the median (> {100 * MAX_REL_IQR:.0f}%): "
                           "the machine's speed varied during the session; close other programs, "
                           "pin CPUs with --affinity, or run longer")
    return dict(rec, warnings=warnings, rel_iqr=round(score, 5), noisy=score > MAX_REL_IQR,
                attempts=rec.get("attempts", 1))


def _remeasure(target: Target, runtime: str, batch: List[Dict[str, Any]],
               held: Dict[str, Dict[str, Any]], cfg: SessionConfig) -> None:
    """Re-measure the noisy results of a batch together (interleaved, like the first attempt)
    up to ``cfg.remeasure`` times, keeping each module's steadiest attempt in ``held``."""
    by_uid = {it["uid"]: it for it in batch}
    for attempt in range(2, cfg.remeasure + 2):
        noisy = [by_uid[uid] for uid, rec in held.items() if rec["noisy"]]
        if not noisy:
            return
        for again in target.run_batch(runtime, noisy, cfg):
            old = held[again["uid"]]
            old["attempts"] = attempt
            again = _scored(again)
            if again["status"] == "ok" and again["rel_iqr"] < old["rel_iqr"]:
                held[again["uid"]] = dict(again, attempts=attempt)
