"""Issue 12 item 9: ``--adb-port 5997`` with nothing listening must not start an adb daemon anywhere.

adbutils' ``AdbConnection`` runs ``adb start-server`` (no ``-P``) on every refused connection,
which starts a daemon on ``$ANDROID_ADB_SERVER_PORT`` (else 5037) whatever port was asked, and
leaves it running. These tests let adbutils use the real adb binary (not the ``/bin/false`` of the
other tests), with ``$ANDROID_ADB_SERVER_PORT`` on a second free port so that a stray daemon has
a port of its own to appear on, and check both ports and 5037 with a plain connect.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.harness import ADB, free_port
from tests.phone.fake_sdk import make_fake_sdk
from tests.phone.models import standard_specs, write_models

ROOT = Path(__file__).resolve().parents[3]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def real_adb_env(tmp_path):
    """An environment where adbutils would start the real adb on ``default`` (and nothing is there)."""
    asked, default = free_port(), free_port()
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, ADBUTILS_ADB_PATH=str(ADB), PYTHONPATH=str(ROOT), HOME=str(home),
               ANDROID_ADB_SERVER_PORT=str(default), ADB_MDNS_AUTO_CONNECT="", ADB_LIBUSB="0")
    for key in ("SNPE_ROOT", "PROFILER_ADB_SERVERS", "ANDROID_ADB_SERVER_HOST", "ANDROID_SERIAL"):
        env.pop(key, None)
    before = {p: _listening(p) for p in (asked, default, 5037)}
    assert not before[asked] and not before[default]
    yield env, asked, default, before
    for port in (asked, default):   # whatever a failure left behind: stop it
        if _listening(port):
            subprocess.run([str(ADB), "-P", str(port), "kill-server"], env=env, timeout=20,
                           capture_output=True)


def _run(env, *argv):
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, timeout=120)


def test_plain_adbutils_starts_a_daemon_on_another_port(real_adb_env):
    """The control: what the profiler must not do (so the checks below can fail)."""
    env, asked, default, before = real_adb_env
    code = ("import adbutils\n"
            f"c = adbutils.AdbClient(port={asked})\n"
            "try:\n    c.server_version()\nexcept Exception as e:\n    print(type(e).__name__)\n")
    _run(env, "-c", code)
    assert _listening(default) and not _listening(asked)


def test_devices_and_bench_start_no_adb_daemon(tmp_path, real_adb_env):
    env, asked, default, before = real_adb_env
    devices = _run(env, "-m", "profiler", "devices", "--adb-port", str(asked))
    lines = devices.stderr.strip().splitlines()
    assert devices.returncode == 2 and len(lines) == 1, devices.stderr
    assert lines[0].startswith(f"profiler: error: no adb server at 127.0.0.1:{asked}")
    assert f"start one with 'adb -P {asked} start-server'" in lines[0]

    sdk = make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")
    models = write_models(tmp_path / "m", standard_specs(1))
    out = tmp_path / "s.results"
    bench = _run(env, "-m", "profiler", "bench", "--target", "phone", "--adb-port", str(asked), "--snpe-root",
                 str(sdk), "--models", str(models), "--out", str(out), "--runtime", "CPU", "-q")
    lines = bench.stderr.strip().splitlines()
    assert bench.returncode == 2 and len(lines) == 1 and f"no adb server at 127.0.0.1:{asked}" in lines[0], \
        bench.stderr
    # the default port ($ANDROID_ADB_SERVER_PORT) too: a server is never started
    clean = _run(env, "-m", "profiler", "clean", "--device", "X")
    assert clean.returncode == 2 and f"no adb server at 127.0.0.1:{default}" in clean.stderr
    after = {p: _listening(p) for p in (asked, default, 5037)}
    assert after == before, (before, after)
