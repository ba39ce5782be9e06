"""Fixtures: a real adb server (adbutils' binary) with two emulated phones (tests/emulator), and
the Python adb server of ``adbserver.py`` (``fake_server``) for what the real one cannot show."""

import shutil

import pytest

from tests.emulator.harness import AdbServer as RealAdbServer
from tests.phone.conftest import Lab

from .adbserver import AdbServer

PHONE_A = {"ro.product.model": "Pixel Test"}
PHONE_B = {"ro.product.model": "Galaxy Test", "ro.soc.model": "", "ro.board.platform": "taro",
           "ro.build.version.sdk": "31"}


@pytest.fixture(autouse=True)
def _never_start_a_real_adb(monkeypatch):
    """adbutils runs ``adb start-server`` when no server answers (the profiler's NoSpawnClient
    never lets it; other clients here might): make that a no-op."""
    monkeypatch.setenv("ADBUTILS_ADB_PATH", shutil.which("false") or "/bin/false")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)


@pytest.fixture
def adb_server(tmp_path):
    """Phone A: SM8550, 30 °C, schedutil. Phone B: no ro.soc.model, 41.5 °C, performance.
    Both behind a real adb server, named ``127.0.0.1:PORT`` (``adb_server.a.addr``)."""
    with RealAdbServer(tmp_path / "adb-server") as srv:
        lab = Lab(tmp_path, srv, base_props={})
        try:
            lab.a = lab.add("EMU0001", props=PHONE_A)
            lab.b = lab.add("EMU0002", props=PHONE_B, battery_temp_c=41.5, governor="performance")
            yield lab
        finally:
            lab.close()


@pytest.fixture
def client(adb_server):
    return adb_server.server.client(socket_timeout=10)


@pytest.fixture
def session(client, adb_server):
    from profiler.phone.adb import open_session
    return open_session(client, adb_server.a.addr, timeout=20)


@pytest.fixture
def fake_server(tmp_path):
    """The Python adb server with the same two phones, as serials EMU0001 and EMU0002."""
    with AdbServer(tmp_path / "adb", max_shell_seconds=30) as srv:
        srv.add_device("EMU0001", props=dict(PHONE_A))
        srv.add_device("EMU0002", props=dict(PHONE_B), battery_temp_c=41.5, governor="performance")
        yield srv


@pytest.fixture
def fake_client(fake_server):
    return fake_server.client(socket_timeout=10)
