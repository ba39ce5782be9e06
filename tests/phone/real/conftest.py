"""Phone tests through the real adb server (adbutils' adb 36 binary) and the device-side
emulator of tests/emulator (real /data/local/tmp paths, adbd's SIGHUP-on-close semantics).

Re-exports the emulator fixtures (``adb_server``, ``adb_servers``, ``phones``, ``phone``); the
emulator's ``phones`` factory overrides tests/phone/conftest.py's Python-server ``phones`` here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.emulator.conftest import _no_stray_adb, adb_server, adb_servers, phone, phones  # noqa: F401

PHONE_PROPS = {"ro.product.model": "SM-S911B", "ro.soc.model": "SM8550"}


@pytest.fixture
def make_real_target():
    """``make_real_target(sdk_root, servers, **PhoneConfig fields)`` -> PhoneTarget."""
    from profiler.phone.target import PhoneConfig, PhoneTarget

    def make(sdk_root: Path, servers, **kw):
        cfg = dict(snpe_root=str(sdk_root), adb_servers=tuple("127.0.0.1:%d" % s.port for s in servers),
                   runs=1, input_count=1, calibration_count=1)
        cfg.update(kw)
        return PhoneTarget(PhoneConfig(**cfg))

    return make
