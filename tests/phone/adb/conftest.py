"""Fixtures: a loopback adb server (tests/phone/adb/adbserver.py) with two emulated phones."""

import shutil

import pytest

from .adbserver import AdbServer

SERIAL_A = "EMU0001"
SERIAL_B = "EMU0002"


@pytest.fixture(autouse=True)
def _never_start_a_real_adb(monkeypatch):
    """adbutils runs ``adb start-server`` when no server answers (the profiler's NoSpawnClient
    never lets it; other clients here might): make that a no-op."""
    monkeypatch.setenv("ADBUTILS_ADB_PATH", shutil.which("false") or "/bin/false")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)


@pytest.fixture
def adb_server(tmp_path):
    """Phone A: SM8550, 30 °C, schedutil. Phone B: no ro.soc.model, 41.5 °C, performance."""
    with AdbServer(tmp_path / "adb", max_shell_seconds=30) as srv:
        srv.add_device(SERIAL_A, props={"ro.product.model": "Pixel Test"})
        srv.add_device(SERIAL_B, props={"ro.product.model": "Galaxy Test", "ro.soc.model": "",
                                        "ro.board.platform": "taro", "ro.build.version.sdk": "31"},
                       battery_temp_c=41.5, governor="performance")
        yield srv


@pytest.fixture
def client(adb_server):
    return adb_server.client(socket_timeout=10)


@pytest.fixture
def session(client):
    from profiler.phone.adb import open_session
    return open_session(client, SERIAL_A, timeout=20)
