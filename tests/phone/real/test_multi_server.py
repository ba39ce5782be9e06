"""Issue 16 (phones on several hosts) and issue 18.3: two real adb servers on two loopback ports,
one emulated phone each; sharding over both, one server going away mid-session, --resume,
``--adb-server``/``$PROFILER_ADB_SERVERS`` on the CLI, the non-loopback warning."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from profiler.phone.adb.session import remote_servers_warning
from profiler.session.loop import run_session
from profiler.session.store import read_store
from tests.emulator.harness import free_port
from tests.phone.conftest import session_config
from tests.phone.fake_sdk import make_fake_sdk
from tests.phone.models import standard_specs, write_models

from .conftest import PHONE_PROPS

ROOT = Path(__file__).resolve().parents[3]


def _two(adb_server, adb_servers, phones):
    second = adb_servers()
    a = phones("EMUA0001", props=dict(PHONE_PROPS))
    b = phones("EMUB0002", props=dict(PHONE_PROPS), server=second)
    return (adb_server, a), (second, b)


def _kill_at_first_record(*servers):
    """An ``on_progress`` that kills the ``servers``' processes once, at the first record (a phone
    host rebooting, a tunnel dropping)."""
    def on_progress(done, total, uid, failed):
        last = servers[-1]
        if uid and last.proc is not None and last.proc.poll() is None:
            for s in servers:
                s.proc.kill()
                s.proc.wait(10)
    return on_progress


def _name(phone, server) -> str:
    return f"{phone.addr}@127.0.0.1:{server.port}"


def _cli(*args, env_extra=None, drop=("ANDROID_ADB_SERVER_PORT",)):
    env = dict(os.environ, ADBUTILS_ADB_PATH="/bin/false", PYTHONPATH=str(ROOT))
    for key in drop + ("SNPE_ROOT", "PROFILER_ADB_SERVERS"):
        env.pop(key, None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_bench_shards_over_two_servers_and_survives_one_going_away(tmp_path, adb_server, adb_servers, phones,
                                                                 make_real_target):
    (s1, p1), (s2, p2) = _two(adb_server, adb_servers, phones)
    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(4))
    out = tmp_path / "two.results"
    # first a whole session: both servers' phones get work
    target = make_real_target(sdk, [s1, s2])
    summary = run_session(models, out, target, session_config(["CPU"], batch_size=4))
    assert summary.failed == [] and summary.measured == 4
    latest = read_store(out).latest()
    servers = {r["device_state"]["adb_server"] for r in latest.values()}
    assert servers == {f"127.0.0.1:{s1.port}", f"127.0.0.1:{s2.port}"}
    meta = read_store(out).meta
    assert set(meta["devices"]) == {_name(p1, s1), _name(p2, s2)}   # SERIAL@HOST:PORT with several servers

    # then server 2 is killed after the first record of a new session: its phone's share moves to phone 1
    out2 = tmp_path / "gone.results"
    target = make_real_target(sdk, [s1, s2])
    summary = run_session(models, out2, target, session_config(["CPU", "GPU"], batch_size=4),
                          on_progress=_kill_at_first_record(s2))
    assert s2.proc.poll() is not None
    contents = read_store(out2)
    latest = contents.latest()
    assert len(latest) == 8
    assert summary.failed == [], summary.failed       # nothing lost: phone 1 took the rest
    by_server = [r["device_state"]["adb_server"] for r in contents.records if r["status"] == "ok"]
    # server 2 gave the first record and at most one whose phone part was done before the kill
    assert by_server.count(f"127.0.0.1:{s1.port}") >= 6, by_server
    # --resume: nothing left to do, nothing measured twice
    again = run_session(models, out2, make_real_target(sdk, [s1]), session_config(["CPU", "GPU"]), resume=True)
    assert again.failed == [] and again.measured == 0 and again.skipped == 8
    assert len([r for r in read_store(out2).records if r["status"] == "ok"]) == 8


def test_all_phones_of_a_dead_server_fail_then_resume_completes(tmp_path, adb_server, adb_servers, phones,
                                                               make_real_target):
    """Both servers go away mid-session: the rest is failed (not lost), --resume finishes it."""
    (s1, p1), (s2, p2) = _two(adb_server, adb_servers, phones)
    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(4))
    out = tmp_path / "r.results"

    summary = run_session(models, out, make_real_target(sdk, [s1, s2]), session_config(["CPU"], batch_size=4),
                          on_progress=_kill_at_first_record(s1, s2))
    ok = [k for k, r in read_store(out).latest().items() if r["status"] == "ok"]
    assert summary.failed and 0 < len(ok) < 4 and len(ok) + len(summary.failed) == 4
    assert all("--resume" in e for _, _, e in summary.failed)
    # a new server on the first one's port, the phone reconnected: resume measures only the rest
    s1.proc = None
    s1.start()
    s1.connect(p1)
    again = run_session(models, out, make_real_target(sdk, [s1]), session_config(["CPU"]), resume=True)
    assert again.failed == [] and again.measured == 4 - len(ok) and again.skipped == len(ok)


def test_devices_lists_every_server_with_a_column(adb_server, adb_servers, phones):
    (s1, p1), (s2, p2) = _two(adb_server, adb_servers, phones)
    a, b = f"127.0.0.1:{s1.port}", f"127.0.0.1:{s2.port}"
    proc = _cli("devices", "--adb-server", a, "--adb-server", b)
    assert proc.returncode == 0, proc.stderr
    rows = [ln.split() for ln in proc.stdout.splitlines()]
    assert rows[0] == ["SERIAL", "STATE", "MODEL", "SOC", "ANDROID-SDK", "ABI", "ADB-SERVER"]
    assert sorted((r[0], r[-1]) for r in rows[1:]) == sorted([(p1.addr, a), (p2.addr, b)])
    assert proc.stderr == ""            # loopback servers: no warning
    # the environment variable gives the same; --adb-server wins over it
    env = _cli("devices", env_extra={"PROFILER_ADB_SERVERS": f"{a},{b}"})
    assert env.returncode == 0 and env.stdout == proc.stdout
    dead = f"127.0.0.1:{free_port()}"
    wins = _cli("devices", "--adb-server", b, env_extra={"PROFILER_ADB_SERVERS": dead})
    assert wins.returncode == 0, wins.stderr
    assert [r.split()[0] for r in wins.stdout.splitlines()[1:]] == [p2.addr]
    # a server that is not there: one line naming it, with what to do
    bad = _cli("devices", "--adb-server", a, "--adb-server", dead)
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and f"no adb server at {dead}" in lines[0]
    assert "Traceback" not in bad.stderr
    both = _cli("devices", "--adb-server", a, "--adb-port", str(s1.port))
    assert both.returncode == 2 and "--adb-server and --adb-host/--adb-port" in both.stderr


def _non_loopback_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.123", 9))      # no packet is sent: picks the outgoing interface
        return s.getsockname()[0]


def test_non_loopback_server_gives_one_warning_line(adb_server):
    ip = _non_loopback_ip()
    assert not ip.startswith("127.")
    port = free_port()
    proc = _cli("devices", "--adb-server", f"{ip}:{port}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 2, proc.stderr
    assert lines[0].startswith("warning: adb server %s:%d is not a loopback address" % (ip, port))
    assert "SSH tunnel" in lines[0] and "docs/phones.md" in lines[0]
    assert lines[1].startswith("profiler: error: no adb server at %s:%d" % (ip, port))
    # pure: loopback names and addresses give no warning; several remote ones share one line
    assert remote_servers_warning([("127.0.0.1", 5037), ("localhost", 1), ("::1", 2), (None, 3)]) is None
    text = remote_servers_warning([("10.0.0.5", 5037), ("127.0.0.1", 1), ("lab-host", 5037)])
    assert text.count("\n") == 0 and "10.0.0.5:5037, lab-host:5037" in text


def test_bench_cli_over_two_servers_and_devices_by_server(tmp_path, adb_server, adb_servers, phones):
    (s1, p1), (s2, p2) = _two(adb_server, adb_servers, phones)
    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(3))
    a, b = f"127.0.0.1:{s1.port}", f"127.0.0.1:{s2.port}"
    base = ["bench", "--target", "phone", "--models", str(models), "--snpe-root", str(sdk), "--runtime", "CPU",
            "--runs", "1", "--input-count", "1", "--remeasure", "0", "-q"]
    out = tmp_path / "cli.results"
    proc = _cli(*base, "--out", str(out), env_extra={"PROFILER_ADB_SERVERS": f"{a},{b}"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"3 measured, 0 failed, 0 already in the store -> {out}"]
    assert set(read_store(out).meta["devices"]) == {_name(p1, s1), _name(p2, s2)}
    # one phone of the two, named by its server
    one = tmp_path / "one.results"
    proc = _cli(*base, "--out", str(one), "--adb-server", a, "--adb-server", b, "--devices", _name(p2, s2))
    assert proc.returncode == 0, proc.stderr
    assert {r["device_state"]["adb_server"] for r in read_store(one).records} == {b}
    assert {r["device_state"]["serial"] for r in read_store(one).records} == {p2.addr}
