"""Host prep: the Prefetcher (modules prepared ahead, each error given to its own module) and
run_tool (host tools at a lower CPU priority, timeouts)."""

import threading

import pytest

from profiler.errors import ToolError
from profiler.phone.prep import Prefetcher


def test_prefetcher_prepares_ahead_in_order_and_keeps_errors_with_their_module():
    items = [{"uid": f"m{i}"} for i in range(6)]
    started, gate = [], threading.Event()

    def prepare(item):
        started.append((item["uid"], threading.current_thread().name))
        if item["uid"] == "m0":
            gate.wait(5)
        if item["uid"] == "m2":
            raise ToolError("snpe-onnx-to-dlc failed on m2")
        return item["uid"].upper()

    pre = Prefetcher(prepare, items, ahead=2)
    try:
        gate.set()
        assert pre.get(items[0]) == "M0" and pre.get(items[1]) == "M1"
        with pytest.raises(ToolError, match="on m2"):
            pre.get(items[2])
        assert [pre.get(it) for it in items[3:]] == ["M3", "M4", "M5"]
        assert pre.get(items[1]) == "M1"  # a re-queued module gets its result again
    finally:
        pre.close()
    # each module prepared once; the background thread went in order (a module it had not
    # started when asked for was prepared by the asking thread)
    assert sorted(u for u, _ in started) == [f"m{i}" for i in range(6)]
    ahead = [u for u, name in started if name == "phone-prep"]
    assert ahead[0] == "m0" and ahead == sorted(ahead)


def test_prefetcher_lets_a_phone_prepare_a_module_not_started_yet():
    items = [{"uid": f"m{i}"} for i in range(3)]
    release = threading.Event()
    seen = []

    def prepare(item):
        seen.append((item["uid"], threading.current_thread().name))
        if item["uid"] == "m0" and threading.current_thread().name == "phone-prep":
            release.wait(5)
        return item["uid"]

    pre = Prefetcher(prepare, items, ahead=1)
    try:
        assert pre.get(items[2]) == "m2"  # m0 is still being prepared: m2 is made right here
        assert ("m2", threading.current_thread().name) in seen
        release.set()
        assert pre.get(items[0]) == "m0" and pre.get(items[1]) == "m1"
    finally:
        pre.close()
    assert sum(1 for u, _ in seen if u == "m2") == 1


def test_prefetcher_with_several_workers_prepares_modules_at_the_same_time():
    items = [{"uid": f"m{i}"} for i in range(5)]
    both = threading.Barrier(2, timeout=5)
    seen = []

    def prepare(item):
        if item["uid"] in ("m0", "m1"):
            both.wait()  # raises BrokenBarrierError unless m0 and m1 are prepared at once
        seen.append(item["uid"])
        return item["uid"].upper()

    pre = Prefetcher(prepare, items, ahead=4, workers=2)
    try:
        assert [pre.get(it) for it in items] == ["M0", "M1", "M2", "M3", "M4"]
    finally:
        pre.close()
    assert sorted(seen) == [f"m{i}" for i in range(5)]  # each module once


def test_host_tools_run_at_a_lower_cpu_priority_and_a_timeout_kills_them(tmp_path):
    import os
    import sys
    import time
    from profiler.phone.prep import TOOL_NICENESS, run_tool
    from .fake_sdk import make_fake_sdk
    sdk_root = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    from profiler.phone.snpe import locate_sdk
    sdk = locate_sdk(str(sdk_root))
    # the tool reads its niceness after a pause (the priority is set just after it starts)
    out = run_tool([sys.executable, "-c", "import os, time; time.sleep(0.3); print(os.nice(0))"], sdk,
                   about="a test", timeout=30)
    assert int(out) == min(19, os.nice(0) + TOOL_NICENESS)
    t0 = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0.5 s on a test"):
        run_tool([sys.executable, "-c", "import time; time.sleep(30)"], sdk, about="a test", timeout=0.5)
    assert time.monotonic() - t0 < 10  # killed, not waited for
