"""Fixtures: a fake SNPE SDK (tests/phone/fake_sdk.py), tiny ONNX modules, and two identical
emulated phones (tests/emulator/adbd.py) behind a real adb server (adbutils' binary), each
named ``127.0.0.1:PORT`` by the server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.emulator.harness import AdbServer, Phone, host_query

from .fake_sdk import make_fake_sdk
from .models import standard_specs, write_models

PHONE_PROPS = {"ro.product.model": "SM-S911B", "ro.soc.model": "SM8550"}


class Lab:
    """One real adb server and the emulated phones ``adb connect``ed to it.

    ``a`` (30 °C, schedutil) and ``b`` (31 °C, performance) are started by the fixture; ``add``
    starts more. ``unplug(phone)`` kills the phone's emulator (the server then lists it
    ``offline``); ``unplug_after(phone, n, kind, text)`` makes the phone die as its ``n``-th
    request of ``kind`` whose detail contains ``text`` arrives, i.e. in the middle of what the
    session does;
    ``disconnect(phone)`` is ``adb disconnect`` (gone from the listing);
    ``replug(phone)`` starts it again on its port and waits until the server lists it ``device``.
    """

    def __init__(self, workdir: Path, server: AdbServer, base_props: Optional[Dict[str, str]] = None) -> None:
        self.workdir = workdir
        self.base_props = PHONE_PROPS if base_props is None else base_props
        self.server = server
        self.port = server.port
        self.devices: Dict[str, Phone] = {}

    def add(self, serial: str, props: Optional[Dict[str, str]] = None, **kw) -> Phone:
        ph = Phone(self.workdir / ("phone-" + serial), serial, props=dict(self.base_props, **(props or {})), **kw)
        ph.start()
        self.devices[ph.addr] = ph
        self.server.connect(ph)
        return ph

    def listed(self) -> List[str]:
        """The serials the server lists as ready (state ``device``)."""
        return sorted(s for s, state in self.server.states().items() if state == "device")

    def unplug(self, phone: Phone, wait: bool = True) -> None:
        phone.kill()
        if wait:
            self.server.wait_state(phone.addr, "offline")

    def unplug_after(self, phone: Phone, n: int, kind: Optional[str] = None, text: str = "") -> None:
        phone.die_on(kind, text, after=n)

    def disconnect(self, phone: Phone) -> None:
        """``adb disconnect``: the server forgets the phone (no longer listed)."""
        host_query(self.port, "host:disconnect:" + phone.addr)
        self.server.wait_state(phone.addr, None)

    def replug(self, phone: Phone) -> None:
        if phone.alive():
            phone.kill()
        phone.start()
        if phone.addr in self.server.states():  # the server reconnects by itself
            self.server.wait_state(phone.addr, "device")
        else:  # after a disconnect: adb connect again
            self.server.connect(phone)

    def close(self) -> None:
        for ph in self.devices.values():
            ph.cleanup()


@pytest.fixture(autouse=True)
def _never_start_a_real_adb(monkeypatch):
    """adbutils runs ``adb start-server`` when no server answers (the profiler's NoSpawnClient
    never lets it; other clients here might): make that a no-op."""
    monkeypatch.setenv("ADBUTILS_ADB_PATH", shutil.which("false") or "/bin/false")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    monkeypatch.delenv("SNPE_ROOT", raising=False)


@pytest.fixture
def lab_server(tmp_path):
    with AdbServer(tmp_path / "adb-server") as srv:
        yield srv


@pytest.fixture
def phones(tmp_path, lab_server):
    """Two identical emulated phones (same model and SoC): A at 30 °C, B at 31 °C (performance)."""
    lab = Lab(tmp_path, lab_server)
    try:
        lab.a = lab.add("PHONE0A")
        lab.b = lab.add("PHONE0B", battery_temp_c=31.0, governor="performance")
        yield lab
    finally:
        lab.close()


@pytest.fixture
def sdk2(tmp_path) -> Path:
    return make_fake_sdk(tmp_path / "sdk", "2.10.0.4541")


@pytest.fixture
def sdk1(tmp_path) -> Path:
    return make_fake_sdk(tmp_path / "sdk", "1.54.2.2899")


@pytest.fixture
def models(tmp_path) -> Path:
    return write_models(tmp_path / "models", standard_specs(3))


@pytest.fixture
def make_target(phones):
    """``make_target(sdk_root, **PhoneConfig fields)`` -> PhoneTarget on the lab's adb server."""
    from profiler.phone.target import PhoneConfig, PhoneTarget

    def make(sdk_root, **kw):
        cfg = dict(snpe_root=str(sdk_root) if sdk_root else None, adb_host="127.0.0.1", adb_port=phones.port, runs=2,
                   input_count=2, calibration_count=2)
        cfg.update(kw)
        return PhoneTarget(PhoneConfig(**cfg))

    return make


def session_config(runtimes, batch_size=8, remeasure=0, timeout_s=60.0):
    from profiler.session.target import SessionConfig
    return SessionConfig(runtimes=list(runtimes), batch_size=batch_size, remeasure=remeasure, timeout_s=timeout_s)
