"""Issue 18.1: a command that times out is killed on the phone, not left running there."""

from __future__ import annotations

import os
import time

import pytest

from profiler.errors import DeviceError
from profiler.phone.adb import open_session


def _ours(phone, marker: str):
    """PIDs in the device whose environment carries ``marker`` (ps inside the device)."""
    out = []
    for pid in phone.device_pids():
        try:
            env = open("/proc/%d/environ" % pid, "rb").read()
        except OSError:
            continue
        if marker.encode() in env:
            out.append(pid)
    return out


def _wait_gone(phone, marker, timeout=5.0):
    deadline = time.monotonic() + timeout
    while _ours(phone, marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _ours(phone, marker)


def test_timed_out_command_and_its_children_are_killed(adb_server, phone):
    s = open_session(adb_server.client(), phone.addr, timeout=20)
    # a child that does not write and ignores nothing: adbd's SIGHUP to sh leaves it running
    with pytest.raises(DeviceError) as e:
        s.shell("sleep 300 & sleep 301; echo never", timeout=1.5)
    assert "timed out after 1.5 s" in str(e.value) and "killed" in str(e.value)
    assert _wait_gone(phone, "PROFILER_OWNER=" + phone.addr + "@@") == []
    assert s.shell("echo alive").output.strip() == "alive"     # the phone carries on


def test_without_the_kill_adbd_semantics_leave_the_child_running(adb_server, phone):
    """The emulator behaves like adbd: only sh gets SIGHUP (what made the kill necessary)."""
    s = open_session(adb_server.client(), phone.addr, timeout=20)
    from adbutils.errors import AdbTimeout
    with pytest.raises(AdbTimeout):
        s.device.shell2("export MARK_NOKILL=1\nsleep 302 & sleep 303", timeout=1.5, v2=True)
    time.sleep(0.5)
    assert _ours(phone, "MARK_NOKILL=1"), "emulator killed the child: not adbd's behaviour"
    for pid in _ours(phone, "MARK_NOKILL=1"):
        os.kill(pid, 9)


def test_leftovers_of_an_earlier_session_are_stopped(adb_server, phone):
    s = open_session(adb_server.client(), phone.addr, timeout=20)
    # as if a host killed with SIGKILL had left a tagged run behind
    s.shell("nohup sleep 300 >/dev/null 2>&1 &")
    time.sleep(0.3)
    marker = "PROFILER_OWNER=" + phone.addr + "@@"
    assert _ours(phone, marker)
    stopped = s.stop_leftovers()
    assert stopped and _wait_gone(phone, marker) == []
    assert s.stop_leftovers() == []
