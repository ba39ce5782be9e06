"""Fixtures: real adb servers (the binary in adbutils' wheel) and emulated phones.

``adb_server``      one real server on a free loopback port; ``ANDROID_ADB_SERVER_PORT``
                    points adbutils at it. Killed at the end (nothing is left on 5037).
``adb_servers``     factory for more servers: ``adb_servers()`` -> a started AdbServer.
``phones``          factory: ``phones("EMU0001", props={...}, server=srv)`` starts an emulator
                    and (unless ``connect=False``) ``adb connect``s it to ``server`` (default:
                    ``adb_server``) and waits for state ``device``. Every phone is killed, with
                    whatever it left running, at the end.
``phone``           one phone ``EMU0001`` on ``adb_server``.
"""

from __future__ import annotations

import shutil

import pytest

from .harness import AdbServer, Phone


@pytest.fixture(autouse=True)
def _no_stray_adb(monkeypatch):
    """adbutils runs ``adb start-server`` when no server answers (the profiler's NoSpawnClient
    never lets it; other clients here might): make that a no-op."""
    monkeypatch.setenv("ADBUTILS_ADB_PATH", shutil.which("false") or "/bin/false")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)


@pytest.fixture
def adb_servers(tmp_path):
    started = []

    def make() -> AdbServer:
        srv = AdbServer(tmp_path / ("adb-server-%d" % len(started)))
        started.append(srv)
        return srv.start()

    try:
        yield make
    finally:
        for srv in started:
            srv.stop()


@pytest.fixture
def adb_server(adb_servers, monkeypatch):
    srv = adb_servers()
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(srv.port))
    return srv


@pytest.fixture
def phones(tmp_path, adb_server):
    started = []

    def make(serial: str, server: AdbServer = None, connect: bool = True, **kw) -> Phone:
        ph = Phone(tmp_path / ("phone-%s" % serial), serial, **kw)
        started.append(ph)
        ph.start()
        if connect:
            (server or adb_server).connect(ph)
        return ph

    try:
        yield make
    finally:
        for ph in started:
            ph.cleanup()


@pytest.fixture
def phone(phones):
    return phones("EMU0001", props={"ro.product.model": "Pixel Test"})
