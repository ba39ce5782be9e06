"""``profiler clean --device SERIAL``: removes only what the profiler pushed (issue 18), through the
real adb server and the emulated phone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from profiler.session.loop import run_session
from tests.phone.conftest import session_config
from tests.phone.fake_sdk import make_fake_sdk
from tests.phone.models import standard_specs, write_models

from .conftest import PHONE_PROPS

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args, port):
    env = dict(os.environ, ADBUTILS_ADB_PATH="/bin/false", PYTHONPATH=str(ROOT), ANDROID_ADB_SERVER_PORT=str(port))
    env.pop("PROFILER_ADB_SERVERS", None)
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_clean_removes_our_files_and_keeps_foreign_ones(tmp_path, adb_server, phones, make_real_target):
    phone = phones("EMUC0001", props=dict(PHONE_PROPS))
    other = phones("EMUC0002", props=dict(PHONE_PROPS))
    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(2))
    target = make_real_target(sdk, [adb_server], devices=(phone.addr,))
    assert run_session(models, tmp_path / "s.results", target, session_config(["CPU"])).failed == []
    root = phone.host_path("/data/local/tmp/profiler")
    assert (root / "bin" / "snpe-net-run").is_file() and any((root / "lib").iterdir())
    assert len(list((root / "models").iterdir())) == 2
    foreign = phone.host_path("/data/local/tmp/someone-elses.txt")
    foreign.write_text("keep me")
    foreign_dir = phone.host_path("/data/local/tmp/other-tool/bin")
    foreign_dir.mkdir(parents=True)
    (foreign_dir / "tool").write_text("keep me too")

    proc = _cli("clean", "--device", phone.addr, port=adb_server.port)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"device {phone.addr}: removed /data/local/tmp/profiler/bin, /data/local/tmp/profiler/lib, "
                     "/data/local/tmp/profiler/inputs, /data/local/tmp/profiler/models"]
    assert not root.exists()                              # the empty folder goes too
    assert foreign.read_text() == "keep me" and (foreign_dir / "tool").read_text() == "keep me too"
    # the other phone was not touched
    assert other.host_path("/data/local/tmp").is_dir()

    again = _cli("clean", "--device", phone.addr, port=adb_server.port)
    assert again.returncode == 0 and again.stderr.strip().endswith(
        "removed nothing (no profiler files under /data/local/tmp/profiler)")


def test_clean_keeps_a_foreign_file_inside_the_device_root(tmp_path, adb_server, phones):
    phone = phones("EMUC0003", props=dict(PHONE_PROPS))
    root = phone.host_path("/data/local/tmp/profiler")
    (root / "models" / "x").mkdir(parents=True)
    (root / "models" / "x" / "m.dlc").write_bytes(b"dlc")
    (root / "notes.txt").write_text("mine, not the profiler's")
    proc = _cli("clean", "--device", phone.addr, port=adb_server.port)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"device {phone.addr}: removed /data/local/tmp/profiler/models"
    assert (root / "notes.txt").read_text() == "mine, not the profiler's" and not (root / "models").exists()


def test_clean_unknown_serial_lists_the_phones(adb_server, phones):
    phone = phones("EMUC0004", props=dict(PHONE_PROPS))
    proc = _cli("clean", "--device", "NOPE123", port=adb_server.port)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "device NOPE123 not found" in lines[0] and phone.addr in lines[0] and "profiler devices" in lines[0]
    refused = _cli("clean", "--device", phone.addr, "--device-root", "/data/local/tmp", port=adb_server.port)
    assert refused.returncode == 2 and "refusing to clean" in refused.stderr
    assert phone.host_path("/data/local/tmp").is_dir()


def _leave_a_process(adb_server, phone):
    from profiler.phone.adb import open_session
    s = open_session(adb_server.client(), phone.addr, timeout=20)
    s.shell("nohup sleep 300 >/dev/null 2>&1 &")     # tagged like every command of ours
    # the shell that started it may still be exiting (also tagged): wait until only sleep is left
    deadline = time.monotonic() + 10
    while len(s._tagged_pids(s._owner())) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return s


def test_leftovers_are_stopped_with_one_line_by_bench_and_clean(tmp_path, adb_server, phones):
    phone = phones("EMUC0005", props=dict(PHONE_PROPS))
    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(1))
    _leave_a_process(adb_server, phone)
    proc = _cli("bench", "--target", "phone", "--models", str(models), "--out", str(tmp_path / "s.results"),
                "--snpe-root", str(sdk), "--runtime", "CPU", "--runs", "1", "--input-count", "1", "-q",
                port=adb_server.port)
    assert proc.returncode == 0, proc.stderr
    notes = [ln for ln in proc.stderr.splitlines() if "earlier profiler session" in ln]
    assert len(notes) == 1 and notes[0].startswith(f"device {phone.addr}: stopped 1 process(es)")
    s = _leave_a_process(adb_server, phone)
    proc = _cli("clean", "--device", phone.addr, port=adb_server.port)
    assert proc.returncode == 0 and "; stopped 1 leftover process(es) of ours" in proc.stderr, proc.stderr
    assert s.stop_leftovers() == []
