"""Fixtures: a fake SNPE SDK (tests/phone/fake_sdk.py), tiny ONNX modules, two identical phones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.phone.adb.adbserver import AdbServer

from .fake_sdk import make_fake_sdk
from .models import standard_specs, write_models

SERIAL_A = "PHONE0A"
SERIAL_B = "PHONE0B"
PHONE_PROPS = {"ro.product.model": "SM-S911B", "ro.soc.model": "SM8550"}


@pytest.fixture(autouse=True)
def _never_start_a_real_adb(monkeypatch):
    """adbutils runs ``adb start-server`` when no server answers (the profiler's NoSpawnClient
    never lets it; other clients here might): make that a no-op."""
    monkeypatch.setenv("ADBUTILS_ADB_PATH", shutil.which("false") or "/bin/false")
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    monkeypatch.delenv("SNPE_ROOT", raising=False)


@pytest.fixture
def phones(tmp_path):
    """Two identical emulated phones (same model and SoC), A at 30 °C and B at 31 °C."""
    with AdbServer(tmp_path / "adb", max_shell_seconds=60) as srv:
        srv.add_device(SERIAL_A, props=dict(PHONE_PROPS))
        srv.add_device(SERIAL_B, props=dict(PHONE_PROPS), battery_temp_c=31.0, governor="performance")
        yield srv


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
    """``make_target(sdk_root, **PhoneConfig fields)`` -> PhoneTarget on the loopback server."""
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
