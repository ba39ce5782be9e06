"""Phone session overhead, emulated: the share of a phone session's time spent outside the runs
of ``snpe-net-run`` on the phones, and where the rest goes.

EVERYTHING HERE IS EMULATED (the test fixtures of tests/). By default (``--harness real``) the
phones are device-side adbd emulators (tests/emulator/adbd.py: native ``sh``, ``md5sum``,
``find``; Python ``dumpsys``/``getprop``) behind the REAL adb server (the binary in adbutils'
wheel), as in the phone tests; this needs root (each phone gets a private mount namespace).
``--harness python`` uses the old loopback Python adb server (tests/phone/adb/adbserver.py,
whose ``sh``/``md5sum``/``dumpsys`` are Python wrappers), for figures comparable with the runs
before 2026-12-03 (docs/performance.md). The SNPE SDK is the fake one (tests/phone/fake_sdk.py),
whose tools are Python scripts. The absolute numbers therefore measure the profiler's
orchestration (adb transfers, tool start-ups, parsing, the store) on this machine, not SNPE
and not a phone: a fake ``snpe-net-run`` "inference" is a Python start-up, and the fake
converter loads onnx like the real one but does far less.

Session: ``--modules`` tiny conv blocks (tests/phone/models.py) on ``--phones`` identical
phones, runtimes CPU and DSP (DSP quantizes), the phone target's defaults otherwise (10 runs,
10 inputs, 10 calibration raws). Two passes into fresh stores: *cold* (empty DLC cache, nothing
on the phones) and *warm* (the same models and phones again: DLCs cached, SDK and models
already pushed, only md5 comparisons).

Time is attributed by wrapping the profiler's own functions (outermost call wins, self-time
only, so categories do not overlap). The phone workers run in parallel, one per phone, so the
categories are summed over threads and compared with *phone-time* = phones x wall time;
"measured inference" is the time inside the shell calls that run ``run_<RUNTIME>.sh`` (the
fake ``snpe-net-run``), the analogue of what a phone spends in snpe-net-run.

Part of the adb cost is the client's and is paid with a real phone as well: adbutils (2.12)
opens a second connection (``host:version``) for every transport, sleeps 10 ms when it closes
each connection and sets no TCP options; the profiler's client avoids the first two and its
sync connections set TCP_NODELAY and TCP_QUICKACK (docs/performance.md). ``emulator_costs``
uses a plain adbutils client, so its per-call figures include adbutils' overheads.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

from common import ROOT, print_table, write_result

HARNESSES = {
    "real": "tests/emulator/adbd.py phones behind the real adb server",
    "python": "tests/phone/adb/adbserver.py (the Python adb server)",
}


def emulated_note(harness: str) -> str:
    return (f"EMULATED phones and SNPE tools ({HARNESSES[harness]}; tests/phone/fake_sdk.py): these numbers "
            "measure the profiler's orchestration on this machine, not SNPE or a phone")

PHONE_PROPS = {"ro.product.model": "SM-S911B", "ro.soc.model": "SM8550"}
SDK_VERSION = "2.10.0.4541"

# categories, in the order printed
NETRUN = "measured inference: snpe-net-run runs (shell call)"
CATEGORIES = [
    NETRUN,
    "phone setup (stop leftovers, state + md5 inventory, SDK push)",
    "push models (DLC, raws, run script)",
    "convert (snpe-onnx-to-dlc)",
    "dlc-info (snpe-dlc-info)",
    "quantize (snpe-dlc-quant)",
    "host prep (cache keys, raws, calibration)",
    "list + pull diag logs",
    "diagview (snpe-diagview)",
    "diagview parse, failed-log keeping",
    "device state (battery, governor)",
    "per-module bookkeeping (temp dirs, records)",
    "phone threads idle / scheduling",
    "store writes (main thread)",
    "connect, list phones (main thread)",
]
TOOL_CATEGORY = {"snpe-onnx-to-dlc": CATEGORIES[3], "snpe-dlc-info": CATEGORIES[4],
                 "snpe-dlc-quant": CATEGORIES[5], "snpe-dlc-graph-prepare": CATEGORIES[5],
                 "snpe-diagview": CATEGORIES[8]}
MAIN_THREAD = (CATEGORIES[-2], CATEGORIES[-1])


class Timers:
    """Self-time per category of wrapped functions; nested wrapped calls count for themselves,
    except under an ``opaque`` wrapper, whose whole duration is its own."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)
        self.calls: Dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._undo: List[Tuple[Any, str, Any]] = []

    def patch(self, owner: Any, name: str, category: Any, opaque: bool = False) -> None:
        """Wrap ``owner.name``; ``category`` is a name or ``f(*args, **kwargs) -> name``."""
        fn = getattr(owner, name)
        self._undo.append((owner, name, fn))
        timers = self

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            stack = timers._local.__dict__.setdefault("stack", [])
            if stack and stack[-1][1]:  # inside an opaque call: part of it
                return fn(*args, **kwargs)
            cat = category(*args, **kwargs) if callable(category) else category
            frame = [0.0, opaque]
            stack.append(frame)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                stack.pop()
                if stack:
                    stack[-1][0] += dt
                with timers._lock:
                    timers.seconds[cat] += dt - frame[0]
                    timers.calls[cat] += 1

        setattr(owner, name, wrapped)

    def restore(self) -> None:
        for owner, name, fn in reversed(self._undo):
            setattr(owner, name, fn)
        self._undo.clear()

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()


def instrument(timers: Timers) -> None:
    from profiler.phone import prep as phone_host, target as phone
    from profiler.phone.adb.session import DeviceSession
    from profiler.session.store import ResultsStore

    def tool(cmd, *args, **kwargs):
        return TOOL_CATEGORY.get(Path(str(cmd[0])).name, f"other host tool ({Path(str(cmd[0])).name})")

    def shell(self, cmd, *args, **kwargs):
        text = cmd if isinstance(cmd, str) else " ".join(str(c) for c in cmd)
        return NETRUN if "/run_" in text and text.startswith("sh ") else "other adb shell"

    timers.patch(phone_host, "run_tool", tool, opaque=True)
    timers.patch(phone_host.HostPrep, "prepare", CATEGORIES[6])
    timers.patch(phone.PhoneTarget, "_setup_device", CATEGORIES[1], opaque=True)
    timers.patch(phone.PhoneTarget, "_measure", CATEGORIES[11])
    timers.patch(phone.PhoneTarget, "_diag_runs", CATEGORIES[9])
    timers.patch(phone.PhoneTarget, "_record", CATEGORIES[11])
    timers.patch(phone.PhoneTarget, "facts", CATEGORIES[14], opaque=True)
    timers.patch(DeviceSession, "push_tree", CATEGORIES[2], opaque=True)
    if hasattr(DeviceSession, "push_trees"):
        timers.patch(DeviceSession, "push_trees", CATEGORIES[2], opaque=True)
    timers.patch(DeviceSession, "shell", shell, opaque=True)
    timers.patch(DeviceSession, "glob", CATEGORIES[7], opaque=True)
    timers.patch(DeviceSession, "pull", CATEGORIES[7], opaque=True)
    timers.patch(DeviceSession, "pull_files", CATEGORIES[7], opaque=True)
    timers.patch(DeviceSession, "device_state", lambda *a, **k: "device state, read beside the pull (own thread)"
                 if threading.current_thread().name == "phone-state" else CATEGORIES[10], opaque=True)
    if hasattr(DeviceSession, "state_and_md5"):
        timers.patch(DeviceSession, "state_and_md5", CATEGORIES[10], opaque=True)
    timers.patch(ResultsStore, "add", CATEGORIES[13], opaque=True)
    if hasattr(phone, "_started"):
        # since 2026-12-03 the state after a module is read on its own thread beside the pull: a
        # phone thread's wait for it (what the pull does not hide) is device-state time; the
        # other wait is the session's end
        timers.patch(phone, "wait", lambda fs, *a, **k: CATEGORIES[10]
                     if threading.current_thread().name.startswith("shard-") else "session end: last logs read",
                     opaque=True)


def specs(n: int) -> List[Dict[str, Any]]:
    """``n`` distinct tiny conv blocks (1x1 and 3x3, 4x4 and 8x8 maps)."""
    from tests.phone.models import conv_uid
    channels = [(3, 8), (8, 8), (8, 16), (16, 16), (16, 24), (24, 24), (4, 8), (8, 4), (24, 32), (32, 32)]
    out = []
    for ci, co in channels:
        for hw in (8, 4):
            for k in (3, 1):
                out.append({"uid": conv_uid(ci, co, hw, k), "c_in": ci, "c_out": co, "hw": hw, "kernel": k,
                            "residual": ci == co})
    if n > len(out):
        raise SystemExit(f"--modules: at most {len(out)}")
    return out[:n]


def _proc_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and of its children it has waited for (0 when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def cpu_snapshot(pids: Dict[str, List[int]]) -> Dict[str, float]:
    """CPU seconds so far: this process (the profiler, adbutils; with ``--harness python`` also
    the emulated phones), the host tools it ran and waited for (the fake SDK's converter,
    quantizer, dlc-info, diagview), and each group of emulator processes in ``pids``."""
    import resource
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {"bench process (profiler, adbutils)": own.ru_utime + own.ru_stime,
           "host tools (fake SDK, Python)": kids.ru_utime + kids.ru_stime}
    for name, group in pids.items():
        out[name] = sum(_proc_cpu(pid) for pid in group)
    return out


def one_pass(models: Path, out: Path, make_target: Callable[[], Any], runtimes: List[str], timers: Timers,
             phones: int, pids: Dict[str, List[int]]) -> Dict[str, Any]:
    """One session into a new store, with a new target (as a new ``profiler bench`` would)."""
    from profiler.session.loop import run_session
    from profiler.session.target import SessionConfig
    from profiler.session.store import read_store
    timers.reset()
    cpu0 = cpu_snapshot(pids)
    t0 = time.perf_counter()
    target = make_target()
    summary = run_session(models, out, target, SessionConfig(runtimes=runtimes))
    wall = time.perf_counter() - t0
    cpu = {k: v - cpu0[k] for k, v in cpu_snapshot(pids).items()}
    if summary.failed:
        raise SystemExit(f"session failed: {summary.failed[:2]}")
    seconds = dict(timers.seconds)
    calls = dict(timers.calls)
    worker = sum(v for k, v in seconds.items() if k not in MAIN_THREAD)
    seconds[CATEGORIES[12]] = max(0.0, phones * wall - worker)
    contents = read_store(out)
    per_phone: Dict[str, int] = defaultdict(int)
    emulated_us = 0.0
    for rec in contents.records:
        per_phone[rec["device_state"]["serial"]] += 1
        emulated_us += sum(rec["samples"]["Total Inference Time"]) * target.config.input_count
    inside = seconds.get(NETRUN, 0.0)
    return {"wall_s": wall, "phone_time_s": phones * wall, "measured_inference_s": inside,
            "outside_share": 1 - inside / (phones * wall), "records": len(contents.records),
            "records_per_phone": dict(per_phone), "netrun_calls": calls.get(NETRUN, 0),
            "emulated_inference_in_diag_logs_s": emulated_us / 1e6,
            "seconds": seconds, "calls": calls, "cpu_s": cpu}


def emulator_costs(client: Any, serial: str, work: Path, repeat: int = 15) -> Dict[str, float]:
    """Median seconds of the emulated phone's own per-call costs, measured on an idle phone
    after the passes: a shell round trip that runs nothing (``true``), the state read the
    session makes per module (``dumpsys battery`` + governor read; ``dumpsys`` is a Python
    script in both emulators, a native tool on a phone), the state + ``find | md5sum`` of a
    small folder that it made per module until 2026-12-03 (``md5sum``/``sh`` are Python wrappers
    with ``--harness python``, the host's native tools with ``--harness real``), a sync push and
    a pull of one small file."""
    import statistics
    from profiler.phone.adb.session import DeviceSession
    s = DeviceSession(client, serial, timeout=60)
    f = work / "probe.bin"
    f.write_bytes(b"x" * 4096)
    calls = {"shell true": lambda: s.shell("true"), "device state": s.device_state,
             "state + md5 listing": (lambda: s.state_and_md5("/data/local/tmp/profiler/bin"))
             if hasattr(s, "state_and_md5") else
             (lambda: (s.device_state(), s.remote_md5("/data/local/tmp/profiler/bin"))),
             "push 1 file": lambda: s.push_files([(f, "/data/local/tmp/probe/probe.bin")]),
             "pull 1 file": lambda: s.pull_files([("/data/local/tmp/probe/probe.bin", work / "back.bin")])}
    out = {}
    for name, fn in calls.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


Lab = Tuple[int, List[str], Callable[[], Any], Dict[str, List[int]]]


@contextlib.contextmanager
def emulated_lab(harness: str, work: Path, phones: int) -> Iterator[Lab]:
    """``phones`` identical emulated phones -> (adb server port, their serials, client factory,
    the emulator's own processes by group, for their CPU time)."""
    if harness == "python":
        from tests.phone.adb.adbserver import AdbServer as PyServer
        with PyServer(work / "adb", max_shell_seconds=120) as srv:
            serials = [f"EMU{i:04d}" for i in range(phones)]
            for s in serials:
                srv.add_device(s, props=dict(PHONE_PROPS))
            yield srv.port, serials, lambda: srv.client(socket_timeout=60), {}
        return
    if os.geteuid() != 0:
        raise SystemExit("--harness real needs root (each emulated phone enters a private mount namespace); "
                         "run as root or use --harness python")
    from tests.emulator.harness import AdbServer, Phone
    started: List[Any] = []
    with AdbServer(work / "adb-server") as srv:
        try:
            for i in range(phones):
                ph = Phone(work / f"phone-{i}", f"EMU{i:04d}", props=dict(PHONE_PROPS))
                started.append(ph)
                ph.start()
                srv.connect(ph)
            pids = {"emulated phones (adbd.py + sh, snpe-net-run, dumpsys... they ran)": [ph.proc.pid for ph in started],
                    "real adb server": [srv.proc.pid]}
            yield srv.port, [ph.addr for ph in started], lambda: srv.client(socket_timeout=60), pids
        finally:
            for ph in started:
                ph.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", type=int, default=20)
    ap.add_argument("--phones", type=int, default=2)
    ap.add_argument("--runtimes", default="CPU,DSP")
    ap.add_argument("--runs", type=int, default=10, help="snpe-net-run runs per module (phone default 10)")
    ap.add_argument("--harness", choices=sorted(HARNESSES), default="real",
                    help="real: adbd emulators behind the real adb server (default, needs root); python: the "
                         "old Python adb server (figures comparable with runs before 2026-12-03)")
    args = ap.parse_args()
    os.environ["ADBUTILS_ADB_PATH"] = "/bin/false"  # adbutils never starts an adb server of its own
    os.environ.pop("ANDROID_SERIAL", None)

    from tests.phone.fake_sdk import make_fake_sdk
    from tests.phone.models import write_models
    from profiler.phone.target import PhoneConfig, PhoneTarget

    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    load_before = os.getloadavg()
    timers = Timers()
    results: Dict[str, Dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="profiler-phone-overhead-") as tmp:
        work = Path(tmp)
        models = write_models(work / "models", specs(args.modules))
        sdk = make_fake_sdk(work / "sdk", SDK_VERSION)
        with emulated_lab(args.harness, work, args.phones) as (port, serials, client, pids):
            config = PhoneConfig(snpe_root=str(sdk), adb_host="127.0.0.1", adb_port=port, runs=args.runs)
            instrument(timers)
            try:
                for name in ("cold", "warm"):
                    results[name] = one_pass(models, work / f"{name}.results", lambda: PhoneTarget(config),
                                             runtimes, timers, args.phones, pids)
            finally:
                timers.restore()
            costs = emulator_costs(client(), serials[0], work)

    load_after = os.getloadavg()
    note = emulated_note(args.harness)
    print(note)
    print("load average (1, 5, 15 min) before: %.2f %.2f %.2f, after: %.2f %.2f %.2f" % (load_before + load_after))
    print(f"session: {args.modules} modules x {'+'.join(runtimes)} on {args.phones} phones, {args.runs} runs each "
          f"(10 inputs, 10 calibration raws); seconds summed over the phone threads, share of phone-time "
          f"= {args.phones} x wall")
    rows = []
    cats = CATEGORIES + sorted({k for r in results.values() for k in r["seconds"]} - set(CATEGORIES))
    for cat in cats:
        row: List[Any] = [cat]
        for name in ("cold", "warm"):
            r = results[name]
            secs = r["seconds"].get(cat, 0.0)
            row += [secs, f"{100 * secs / r['phone_time_s']:.1f}%"]
        rows.append(row)
    for label, key in (("wall time", "wall_s"), ("phone-time", "phone_time_s")):
        rows.append([label, results["cold"][key], "", results["warm"][key], ""])
    print_table(["category", "cold s", "cold share", "warm s", "warm share"], rows)
    for name in ("cold", "warm"):
        r = results[name]
        print(f"{name}: wall {r['wall_s']:.1f} s, inside snpe-net-run {r['measured_inference_s']:.1f} s of "
              f"{r['phone_time_s']:.1f} phone-s ({r['netrun_calls']} runs) -> outside share "
              f"{100 * r['outside_share']:.1f}%; records per phone {r['records_per_phone']}")
    # per module and phone: push (1 sync), pull (1 sync), state after (1 shell; the next module's
    # before); the code before 2026-12-03's inventory also read state + md5 listing before each module
    from profiler.phone.adb.session import DeviceSession
    from profiler.phone import target as phone_target
    per_module = ["push 1 file", "pull 1 file", "device state"]
    if not hasattr(DeviceSession, "take_inventory"):
        per_module.append("state + md5 listing")
    modules = len(runtimes) * args.modules
    floor = modules * sum(costs[k] for k in per_module)
    if hasattr(phone_target, "_started"):  # the state read runs beside the pull
        floor = modules * (costs["push 1 file"] + max(costs["pull 1 file"], costs["device state"]))
    startup_calls = modules * (len(per_module) - 2)  # shell calls that start the emulated dumpsys
    print("emulated phone's own costs (median of 15, idle phone): " + ", ".join(
        f"{k} {1000 * v:.0f} ms" for k, v in costs.items()))
    # what a native dumpsys would not cost: the state read beyond a shell round trip
    startups = startup_calls * max(0.0, costs["device state"] - costs["shell true"])
    for name in ("cold", "warm"):
        r = results[name]
        r["emulator_floor_s"] = floor
        r["emulated_state_tool_s"] = startups
        print(f"{name}: the {modules} modules' non-inference adb calls at those idle costs: {floor:.1f} s = "
              f"{100 * floor / r['phone_time_s']:.1f}% of phone-time; of which the emulated dumpsys's start-ups "
              f"(device state - shell true): {startups:.1f} s = {100 * startups / r['phone_time_s']:.1f}%")
        cores = os.cpu_count() or 1
        print(f"{name}: CPU seconds during the pass ({cores} cores x wall = {cores * r['wall_s']:.1f}): " + ", ".join(
            f"{k} {v:.1f}" for k, v in r["cpu_s"].items()))
    path = write_result("phone_overhead" if args.harness == "real" else f"phone_overhead-{args.harness}", {
        "emulator_costs_s": costs,
        "emulated": True, "note": note, "harness": args.harness,
        "load_average": {"before": load_before, "after": load_after},
        "config": {"modules": args.modules, "phones": args.phones, "runtimes": runtimes, "runs": args.runs,
                   "input_count": 10, "calibration_count": 10, "sdk": SDK_VERSION},
        "categories": CATEGORIES, **results})
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
