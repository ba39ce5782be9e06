"""Bench sessions on the host: kill and resume, failing modules, timeouts, calibration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from profiler.host.timing import calibrate, parse_ort_trace, time_calls
from profiler.session.target import MeasureConfig
from profiler.models.manifest import read_manifest, write_manifest
from profiler.session.store import read_store

FAST = ["--warmup", "2", "--min-time", "0.01", "--min-repeat", "5", "--max-repeat", "20",
        "--layer-runs", "3", "--remeasure", "0", "-q"]


def _subset(models: Path, dest: Path, n: int, extra: list = ()) -> Path:
    """A manifest of the first ``n`` entries of ``models`` (absolute file paths) plus ``extra``."""
    doc = read_manifest(models)
    entries = []
    for e in doc["entries"][:n]:
        e = dict(e, files={k: str(models / v) for k, v in e["files"].items()})
        entries.append(e)
    dest.mkdir(parents=True, exist_ok=True)
    write_manifest(dest, {"kind": "modules", "space": doc["space"], "granularity": doc["granularity"],
                          "entries": entries + list(extra)})
    return dest


def _bench(models: Path, out: Path, *extra: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler", "bench", "--models", str(models), "--out",
                           str(out), *FAST, *extra], capture_output=True, text=True, **kw)


def _results(path: Path) -> list:
    return [json.loads(l) for l in path.read_text().splitlines()[1:] if '"type":"result"' in l]


def test_interrupted_session_resumes_without_loss_or_double_work(tmp_path, cifar_blocks):
    models = _subset(cifar_blocks, tmp_path / "m", 12)
    out = tmp_path / "s.results"
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "bench", "--models", str(models), "--out",
                             str(out), "--runtime", "ORT_CPU", "--batch-size", "2", *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if out.exists() and len(_results(out)) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "re-run with --resume" in err and "Traceback" not in err
    first = _results(out)
    assert 3 <= len(first) < 12
    done = {r["uid"] for r in first}

    resumed = _bench(models, out, "--runtime", "ORT_CPU", "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{12 - len(first)} measured, 0 failed, {len(first)} already in the store" in resumed.stderr
    final = _results(out)
    assert final[:len(first)] == first  # nothing rewritten
    uids = [r["uid"] for r in final]
    assert len(uids) == len(set(uids)) == 12  # nothing measured twice
    assert set(uids) >= done
    assert read_store(out).sessions  # the resumed session recorded its own facts


def test_sigkill_mid_session_then_resume(tmp_path, cifar_blocks):
    models = _subset(cifar_blocks, tmp_path / "m", 6)
    out = tmp_path / "s.results"
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "bench", "--models", str(models), "--out",
                             str(out), "--batch-size", "1", *FAST],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and len(_results(out)) >= 2):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(_results(out))
    assert before >= 2
    resumed = _bench(models, out, "--resume", timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len({r["uid"] for r in _results(out)}) == len(_results(out)) == 6


def test_failing_module_is_recorded_and_session_continues(tmp_path, cifar_blocks):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    broken = {"uid": "Broken[][[1,3,8,8]]", "files": {"onnx": str(bad), "nnp": str(bad)},
              "input_shapes": [[1, 3, 8, 8]]}
    models = _subset(cifar_blocks, tmp_path / "m", 2, extra=[broken])
    out = tmp_path / "s.results"
    r = _bench(models, out, timeout=300)
    assert r.returncode == 1
    assert "2 measured, 1 failed" in r.stderr
    assert "FAILED ORT_CPU Broken[][[1,3,8,8]]" in r.stderr
    recs = {x["uid"]: x for x in _results(out)}
    assert recs["Broken[][[1,3,8,8]]"]["status"] == "failed"
    assert "INVALID_PROTOBUF" in recs["Broken[][[1,3,8,8]]"]["error"] or "Load model" in recs["Broken[][[1,3,8,8]]"]["error"]
    ok = [x for x in recs.values() if x["status"] == "ok"]
    assert len(ok) == 2
    for x in ok:
        assert set(x["samples"]) == {"Forward Propagate", "Total Inference Time", "Layers Time"}
        assert x["stats"]["Forward Propagate"]["Count"] == len(x["samples"]["Forward Propagate"])
        assert all(v > 0 for v in x["samples"]["Layers Time"])


def test_timeout_fails_one_module_and_the_rest_run(tmp_path, cifar_blocks):
    models = _subset(cifar_blocks, tmp_path / "m", 3)
    out = tmp_path / "s.results"
    # a 0.5 s timeout with 5 s of calibrated runs per key: every module times out, none hangs
    r = _bench(models, out, "--timeout", "0.5", "--min-time", "5", "--max-repeat", "100000",
               "--batch-size", "3", timeout=120)
    assert r.returncode == 1
    recs = _results(out)
    assert len(recs) == 3 and all("timed out after 0.5 s" in x["error"] for x in recs)


def test_unknown_runtime_is_a_clear_error(tmp_path, cifar_blocks):
    models = _subset(cifar_blocks, tmp_path / "m", 1)
    r = _bench(models, tmp_path / "s.results", "--runtime", "DSP")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("profiler: error: --runtime DSP: not a host runtime")


class FakeClock:
    """Advances by a scripted amount per call (ns)."""

    def __init__(self, steps):
        self.t = 0
        self.steps = list(steps)

    def __call__(self) -> int:
        value = self.t
        self.t += self.steps.pop(0) if self.steps else 0
        return value


def test_time_calls_and_calibrate_with_fake_clock():
    clock = FakeClock([1000, 0, 2500, 0, 4000, 0])  # three calls of 1, 2.5 and 4 us
    assert time_calls(lambda: None, 3, clock) == [1.0, 2.5, 4.0]
    cfg = MeasureConfig(min_time_s=0.01, min_repeat=5, max_repeat=50)
    assert calibrate(lambda: None, cfg, FakeClock([1_000_000])) == 10  # 1 ms per call -> 10 runs
    assert calibrate(lambda: None, cfg, FakeClock([10])) == 50        # capped
    assert calibrate(lambda: None, cfg, FakeClock([10**9])) == 5      # floored


def test_parse_ort_trace_groups_kernels_by_run():
    events = [
        {"cat": "Session", "name": "model_run", "ts": 100, "dur": 50},
        {"cat": "Node", "name": "Conv_kernel_time", "ts": 110, "dur": 7},
        {"cat": "Node", "name": "Conv_fence_before", "ts": 109, "dur": 0},
        {"cat": "Node", "name": "Relu_kernel_time", "ts": 120, "dur": 3},
        {"cat": "Session", "name": "model_run", "ts": 200, "dur": 40},
        {"cat": "Node", "name": "Conv_kernel_time", "ts": 205, "dur": 6},
        {"cat": "Session", "name": "SequentialExecutor::Execute", "ts": 201, "dur": 30},
    ]
    assert parse_ort_trace(events) == [10.0, 6.0]


def test_the_constant_and_the_reference_are_measured_on_the_host_only():
    from profiler.host.target import HostTarget
    from profiler.phone.target import PhoneTarget
    from profiler.session.loop import _constant
    const = {"uid": "@network", "files": {"onnx": "network-constant.onnx"}, "input_shapes": [[1, 3, 8, 8]]}
    ref = {"uid": "@reference", "files": {"onnx": "drift-reference.onnx"}, "input_shapes": [[1, 3, 8, 8]]}
    mods = {"kind": "modules", "entries": [], "constant": const}
    nets = {"kind": "networks", "entries": [], "reference": ref, "constant": const}
    assert HostTarget.measures_constant and not PhoneTarget.measures_constant
    assert _constant(mods, HostTarget()) == [const] and _constant(nets, HostTarget()) == [ref]
    assert _constant(mods, PhoneTarget.__new__(PhoneTarget)) == []
    assert _constant({"kind": "modules", "entries": []}, HostTarget()) == []   # an older manifest
