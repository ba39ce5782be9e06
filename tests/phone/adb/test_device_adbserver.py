"""The Python adb server (adbserver.py) itself, driven by the real adbutils client: it is kept
for the faults the real server cannot show (see its docstring)."""

import io
import threading

import pytest
from adbutils.errors import AdbError

from .adbserver import (AdbServer, _Unrewriter, device_to_host, rewrite_command)

SERIAL_A, SERIAL_B = "EMU0001", "EMU0002"  # the fake_server fixture's phones


@pytest.fixture
def adb_server(fake_server):
    """In this module: the Python server, not the real one."""
    return fake_server


@pytest.fixture
def client(fake_client):
    return fake_client


def test_rewrite_command_prefixes_device_paths_only():
    root = "/tmp/r"
    cmd = ("cd /data/local/tmp && LD=/data/a:/vendor/lib64:$LD ./x --o '/sdcard/o' >/dev/null; "
           "cat /proc/cpuinfo /sys/x \"/data/q\"; echo /database /datax a/data")
    assert rewrite_command(cmd, root) == (
        "cd /tmp/r/data/local/tmp && LD=/tmp/r/data/a:/tmp/r/vendor/lib64:$LD ./x --o "
        "'/tmp/r/sdcard/o' >/dev/null; cat /proc/cpuinfo /tmp/r/sys/x \"/tmp/r/data/q\"; "
        "echo /database /datax a/data")
    # a sandbox that itself lives under a rewritten prefix is not rewritten twice
    assert rewrite_command("ls /data/h/root/data/x", "/data/h/root") == "ls /data/h/root/data/x"
    assert rewrite_command(rewrite_command("ls /data", "/data/h"), "/data/h") == "ls /data/h/data"


def test_unrewriter_handles_root_split_across_chunks():
    u = _Unrewriter("/tmp/sandbox/root")
    out = u.feed(b"abc  /tmp/sand") + u.feed(b"box/root/data/x\n/tmp/sandbox/ro") + u.feed(b"ot")
    out += u.flush()
    assert out == b"abc  /data/x\n/"


def test_device_paths_cannot_climb_out_of_the_sandbox(tmp_path):
    assert device_to_host(tmp_path, "/../../etc/passwd") == tmp_path / "etc" / "passwd"
    assert device_to_host(tmp_path, "/") == tmp_path


def test_host_services(adb_server, client):
    assert client.server_version() == 41
    assert [(i.serial, i.state) for i in client.list()] == [(SERIAL_A, "device"),
                                                          (SERIAL_B, "device")]
    longl = {i.serial: i.tags for i in client.list(extended=True)}
    assert longl[SERIAL_A]["model"] == "Pixel_Test"
    assert longl[SERIAL_B]["transport_id"] == "2"
    d = client.device(SERIAL_A)
    assert d.get_state() == "device"
    assert d.get_serialno() == SERIAL_A
    assert "shell_v2" in d.get_features()
    assert d.prop.model == "Pixel Test"
    assert client.device(SERIAL_B).getprop("ro.board.platform") == "taro"


def test_unknown_and_unauthorized_devices(adb_server, client):
    adb_server.add_device("LOCKED1", state="unauthorized")
    assert ("LOCKED1", "unauthorized") in [(i.serial, i.state) for i in client.list()]
    with pytest.raises(AdbError, match="unauthorized"):
        client.device("LOCKED1").shell("true")
    with pytest.raises(AdbError, match="device 'NOPE' not found"):
        client.device("NOPE").shell("true")


def test_shell_v1_and_v2(adb_server, client):
    d = client.device(SERIAL_A)
    assert d.shell("echo hello; echo oops >&2") == "hello\noops"
    r = d.shell2("echo out; echo err >&2; exit 7", v2=True)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = d.shell2("cd /data/local/tmp && pwd && false")
    assert (r.returncode, r.output) == (1, "/data/local/tmp\n")
    assert adb_server.count(SERIAL_A, "shell") == 2
    assert adb_server.count(SERIAL_A, "shell,v2") == 1


def test_emulated_tools(adb_server, client):
    d = client.device(SERIAL_B)
    assert "[ro.board.platform]: [taro]" in d.shell("getprop")
    assert d.battery().temperature == 41.5
    adb_server.devices[SERIAL_B].set_battery_temp(35.3)
    assert d.battery().temperature == 35.3
    assert d.shell("cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") == "performance"
    d.sync.push(b"abc", "/data/local/tmp/f.txt")
    assert d.shell("md5sum /data/local/tmp/f.txt") == \
        "900150983cd24fb0d6963f7d28e17f72  /data/local/tmp/f.txt"


def test_sync_round_trip_and_listing(adb_server, client):
    d = client.device(SERIAL_A)
    payload = bytes(range(256)) * 700  # > 64 KiB: several DATA chunks each way
    assert d.sync.push(io.BytesIO(payload), "/data/local/tmp/new/dir/blob.bin", 0o644) == len(payload)
    host = adb_server.devices[SERIAL_A].host_path("/data/local/tmp/new/dir/blob.bin")
    assert host.read_bytes() == payload and (host.stat().st_mode & 0o777) == 0o644
    assert d.sync.read_bytes("/data/local/tmp/new/dir/blob.bin") == payload
    st = d.sync.stat("/data/local/tmp/new/dir/blob.bin")
    assert st.size == len(payload) and st.mtime is not None
    assert d.sync.stat("/data/local/tmp/missing").mtime is None
    names = {f.path for f in d.sync.list("/data/local/tmp/new/dir")}
    assert names == {".", "..", "blob.bin"}
    with pytest.raises(AdbError):
        d.sync.read_bytes("/data/local/tmp/missing")
    assert adb_server.count(SERIAL_A, "SEND") == 1


def test_vanish_drops_device_and_cuts_transport(adb_server, client):
    adb_server.vanish(SERIAL_A)
    assert [i.serial for i in client.list()] == [SERIAL_B]
    with pytest.raises(AdbError, match="not found"):
        client.device(SERIAL_A).shell("true")
    adb_server.restore(SERIAL_A)
    assert client.device(SERIAL_A).shell("echo back") == "back"


def test_fail_on_answers_fail(adb_server, client):
    adb_server.devices[SERIAL_A].fail_on("flaky", "closed")
    with pytest.raises(AdbError, match="closed"):
        client.device(SERIAL_A).shell("run flaky")


def test_track_devices_reports_vanish(adb_server, client):
    events = client.track_devices()
    try:
        first = {next(events).serial, next(events).serial}
        assert first == {SERIAL_A, SERIAL_B}
        adb_server.vanish(SERIAL_B)
        ev = next(events)
        assert (ev.serial, ev.status, ev.present) == (SERIAL_B, "absent", False)
    finally:
        events.close()


def test_stop_kills_running_commands_and_closes_connections(tmp_path):
    srv = AdbServer(tmp_path / "adb").start()
    srv.add_device("S1")
    client = srv.client(socket_timeout=10)
    box = {}

    def run():
        try:
            box["out"] = client.device("S1").shell("echo started; sleep 30")
        except Exception as e:  # noqa: BLE001 - the connection is cut, any adb error will do
            box["err"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    for _ in range(200):
        if srv.count("S1", "shell"):
            break
        t.join(0.01)
    srv.stop()
    t.join(10)
    assert not t.is_alive()
    assert not srv._procs and not srv._socks
