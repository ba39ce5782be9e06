"""Two adb servers that both list a phone ``PHONE0A`` (two phone hosts, same serial): the session
names them ``SERIAL@HOST:PORT`` (issue 16). Uses the Python adb server of tests/phone/adb: the
real server names a TCP-connected emulated phone by its address, which cannot clash on one host."""

from __future__ import annotations

import pytest

from profiler.cli.main import main
from profiler.errors import DeviceError
from profiler.phone.target import PhoneConfig, PhoneTarget
from profiler.session.loop import run_session
from profiler.session.store import read_store
from tests.phone.adb.adbserver import AdbServer

from .conftest import PHONE_PROPS, SERIAL_A, session_config
from .models import standard_specs, write_models


@pytest.fixture
def two_hosts(tmp_path):
    with AdbServer(tmp_path / "h1", max_shell_seconds=60) as h1, AdbServer(tmp_path / "h2", max_shell_seconds=60) as h2:
        h1.add_device(SERIAL_A, props=dict(PHONE_PROPS))
        h2.add_device(SERIAL_A, props=dict(PHONE_PROPS))
        yield h1, h2


def test_same_serial_on_two_servers(tmp_path, two_hosts, sdk2, capsys):
    h1, h2 = two_hosts
    servers = (f"127.0.0.1:{h1.port}", f"127.0.0.1:{h2.port}")
    names = {f"{SERIAL_A}@{s}" for s in servers}

    def target(**kw):
        return PhoneTarget(PhoneConfig(snpe_root=str(sdk2), adb_servers=servers, runs=1, input_count=1, **kw))
    out = tmp_path / "c.results"
    summary = run_session(write_models(tmp_path / "m", standard_specs(2)), out, target(), session_config(["CPU"]))
    assert summary.failed == []
    assert set(read_store(out).meta["devices"]) == names
    assert {r["device_state"]["adb_server"] for r in read_store(out).records} == set(servers)
    # the bare serial is ambiguous: one line asking for SERIAL@HOST:PORT
    with pytest.raises(DeviceError, match=r"device PHONE0A is listed by several adb servers .*SERIAL@HOST:PORT"):
        target(devices=(SERIAL_A,)).devices()
    assert [i.serial for i in target(devices=(f"{SERIAL_A}@{servers[1]}",)).devices()] == [SERIAL_A]
    # devices: both rows, told apart by the server column
    assert main(["devices", "--adb-server", servers[0], "--adb-server", servers[1]]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[1:]]
    assert sorted((r[0], r[-1]) for r in rows) == sorted((SERIAL_A, s) for s in servers)
    # clean: ambiguous bare serial refused, SERIAL@HOST:PORT cleans only that phone
    assert main(["clean", "--device", SERIAL_A, "--adb-server", servers[0], "--adb-server", servers[1]]) == 2
    assert "listed by several adb servers" in capsys.readouterr().err
    assert main(["clean", "--device", f"{SERIAL_A}@{servers[0]}", "--adb-server", servers[0],
                 "--adb-server", servers[1]]) == 0
    assert f"device {SERIAL_A}@{servers[0]}: removed" in capsys.readouterr().err
    assert not h1.devices[SERIAL_A].host_path("/data/local/tmp/profiler").exists()
    assert h2.devices[SERIAL_A].host_path("/data/local/tmp/profiler/bin").is_dir()
