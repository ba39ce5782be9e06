"""profiler.phone.adb sessions through the real adbutils client against the loopback server."""

import os
import sys
import threading
from pathlib import Path

import pytest

from profiler.phone.adb import (DeviceSession, DeviceState, list_devices, open_client, open_session,
                             parse_device_state, parse_getprop)
from profiler.errors import DeviceError, ToolError

SERIAL_A, SERIAL_B = "EMU0001", "EMU0002"  # the adb_server fixture's phones
TMP = "/data/local/tmp"


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


# --- listing ----------------------------------------------------------------------------------

def test_list_devices_reads_props(adb_server, client):
    adb_server.add_device("LOCKED1", state="unauthorized")
    infos = {i.serial: i for i in list_devices(client)}
    a, b, locked = infos[SERIAL_A], infos[SERIAL_B], infos["LOCKED1"]
    assert (a.state, a.model, a.soc, a.sdk, a.abi) == ("device", "Pixel Test", "SM8550", 33,
                                                       "arm64-v8a")
    assert (b.model, b.soc, b.sdk) == ("Galaxy Test", "taro", 31)  # no ro.soc.model -> platform
    assert a.props["ro.build.fingerprint"].startswith("profilertest/")
    assert (locked.state, locked.ready, locked.model) == ("unauthorized", False, None)


def test_parse_getprop_and_state_are_pure():
    props = parse_getprop("[ro.a]: [x y]\n[ro.empty]: []\ngarbage\n[ro.b]: [[1]]\n")
    assert props == {"ro.a": "x y", "ro.empty": "", "ro.b": "[1]"}
    assert parse_device_state("foo\n") == DeviceState(None, None)


def test_open_session_errors_name_serial_and_listing(adb_server, client):
    with pytest.raises(DeviceError, match=r"^device R5CT123 not found \(adb lists: EMU0001, "
                                          r"EMU0002\); plug it in"):
        open_session(client, "R5CT123")
    adb_server.add_device("LOCKED1", state="unauthorized")
    with pytest.raises(DeviceError, match=r"LOCKED1 is unauthorized .*Allow USB debugging"):
        open_session(client, "LOCKED1")


def test_open_client_reports_unreachable_server(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DeviceError, match=rf"no adb server at 127.0.0.1:{port} .*adb -P {port} start-server"):
        open_client("127.0.0.1", port, socket_timeout=2)


# --- shell ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shell_v2", [True, False], ids=["v2", "v1"])
def test_shell_exit_codes_and_output(adb_server, client, shell_v2):
    if not shell_v2:
        adb_server.devices[SERIAL_A].features = "cmd,stat_v2"
    s = open_session(client, SERIAL_A)
    assert s.shell("echo hi; exit 3") == (3, "hi\n")
    assert s.shell("echo out; echo err >&2; false") == (1, "out\nerr\n")
    assert s.shell(["echo", "a b", "&", "$HOME"]) == (0, "a b & $HOME\n")
    assert s.shell("echo x # trailing comment") == (0, "x\n")
    assert adb_server.count(SERIAL_A, "shell,v2" if shell_v2 else "shell") == 4
    with pytest.raises(ToolError, match=r"device EMU0001: 'ls /data/nope' exited with [12]: .*nope"):
        s.shell("ls /data/nope", check=True)


def test_shell_timeout_is_a_device_error_and_session_survives(session):
    with pytest.raises(DeviceError, match=r"device EMU0001: shell 'sleep 20' timed out after 0.5 s"):
        session.shell("sleep 20", timeout=0.5)
    assert session.shell("echo still here") == (0, "still here\n")


# --- files ------------------------------------------------------------------------------------

def test_push_pull_binary_file_round_trip(session, tmp_path):
    data = os.urandom(200_000) + bytes(range(256))
    src = _write(tmp_path / "in" / "weights.bin", data)
    assert session.push(src, f"{TMP}/rt/") == len(data)  # trailing slash keeps the name
    assert session.exists(f"{TMP}/rt/weights.bin")
    assert session.pull(f"{TMP}/rt/weights.bin", tmp_path / "out.bin") == len(data)
    assert (tmp_path / "out.bin").read_bytes() == data
    (tmp_path / "dir").mkdir()
    session.pull(f"{TMP}/rt/weights.bin", tmp_path / "dir")  # into an existing directory
    assert (tmp_path / "dir" / "weights.bin").read_bytes() == data


def test_push_tree_pull_tree_round_trip(session, tmp_path):
    tree = {"bin/snpe-net-run": (b"#!/bin/sh\necho run\n", 0o755),
            "lib/libSNPE.so": (os.urandom(70_000), 0o644),
            "lib/dsp/libSnpeHtpV73Skel.so": (b"\x7fELF" + bytes(range(256)) * 3, 0o644),
            "empty.txt": (b"", 0o644)}
    for rel, (data, mode) in tree.items():
        _write(tmp_path / "sdk" / rel, data, mode)
    report = session.push_tree(tmp_path / "sdk", f"{TMP}/art/")
    assert sorted(report.pushed) == sorted(tree) and report.skipped == []
    assert report.bytes_pushed == sum(len(d) for d, _ in tree.values())
    assert session.list(f"{TMP}/art") == ["bin", "empty.txt", "lib"]
    assert session.glob(f"{TMP}/art/lib/*.so") == [f"{TMP}/art/lib/libSNPE.so"]
    assert session.glob(f"{TMP}/art/nothing*") == []
    assert session.shell(f"[ -x {TMP}/art/bin/snpe-net-run ] && [ ! -x {TMP}/art/lib/libSNPE.so ]"
                         ).exit_code == 0
    session.pull(f"{TMP}/art", tmp_path / "back")
    for rel, (data, _) in tree.items():
        assert (tmp_path / "back" / rel).read_bytes() == data


def test_push_tree_skips_files_with_same_md5(adb_server, session, tmp_path):
    for i in range(3):
        _write(tmp_path / "sdk" / "lib" / f"lib{i}.so", os.urandom(5000 + i))
    first = session.push_tree(tmp_path / "sdk", f"{TMP}/sdk")
    assert len(first.pushed) == 3 and adb_server.count(SERIAL_A, "SEND") == 3

    second = session.push_tree(tmp_path / "sdk", f"{TMP}/sdk")
    assert second.pushed == [] and len(second.skipped) == 3 and second.bytes_pushed == 0
    assert adb_server.count(SERIAL_A, "SEND") == 3  # nothing re-sent

    _write(tmp_path / "sdk" / "lib" / "lib1.so", b"changed")
    third = session.push_tree(tmp_path / "sdk", f"{TMP}/sdk")
    assert third.pushed == ["lib/lib1.so"]
    sends = adb_server.requests(SERIAL_A, "SEND")
    assert len(sends) == 4 and sends[-1][2].startswith(f"{TMP}/sdk/lib/lib1.so,")

    other = DeviceSession(session.client, SERIAL_B)  # another phone gets its own copy
    assert len(other.push_tree(tmp_path / "sdk", f"{TMP}/sdk").pushed) == 3


def test_missing_local_and_remote_files(session, tmp_path):
    with pytest.raises(ToolError, match="not a directory"):
        session.push_tree(tmp_path / "nope", f"{TMP}/x")
    with pytest.raises(ToolError, match="not a file"):
        session.push(tmp_path / "nope.bin", f"{TMP}/x")
    with pytest.raises(ToolError, match=rf"device EMU0001: {TMP}/output/SNPEDiag_0.log does not "
                                        "exist"):
        session.pull(f"{TMP}/output/SNPEDiag_0.log", tmp_path / "d.log")
    assert session.list(f"{TMP}/nowhere") == []


# --- running pushed executables ---------------------------------------------------------------

FAKE_NET_RUN = """#!{python}
# An emulated snpe-net-run: checks its inputs (paths relative to cwd) and writes a diag log.
import os, sys
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
for key in ("--container", "--input_list"):
    if not os.path.isfile(args[key]):
        sys.stderr.write("error: cannot open %s\\n" % args[key])
        sys.exit(4)
os.makedirs(args["--output_dir"], exist_ok=True)
with open(os.path.join(args["--output_dir"], "SNPEDiag_0.log"), "w") as f:
    f.write("container=%s\\nlib=%s\\n" % (args["--container"], os.environ.get("LD_LIBRARY_PATH")))
print("Successfully executed!")
"""


def test_pushed_executable_runs_like_on_a_phone(session, tmp_path):
    art = f"{TMP}/snpebm/artifacts/aarch64-android"
    _write(tmp_path / "sdk" / "bin" / "snpe-net-run",
           FAKE_NET_RUN.format(python=sys.executable).encode(), 0o755)
    _write(tmp_path / "sdk" / "lib" / "libSNPE.so", b"lib")
    _write(tmp_path / "model" / "m.dlc", b"dlc")
    _write(tmp_path / "model" / "list.txt", b"cropped/a.raw\n")
    session.push_tree(tmp_path / "sdk", art)
    session.push_tree(tmp_path / "model", f"{TMP}/snpebm/M")

    run = (f"export LD_LIBRARY_PATH={art}/lib:$LD_LIBRARY_PATH && cd {TMP}/snpebm/M && "
           f"rm -rf output && {art}/bin/snpe-net-run --container m.dlc --input_list list.txt "
           "--output_dir output")
    assert session.shell(run) == (0, "Successfully executed!\n")
    session.pull(f"{TMP}/snpebm/M/output/SNPEDiag_0.log", tmp_path / "diag.log")
    diag = (tmp_path / "diag.log").read_text()  # env values hold sandbox paths (not rewritten)
    assert diag.startswith("container=m.dlc\nlib=/") and diag.endswith(f"{art}/lib:\n")

    code, out = session.shell(f"cd {TMP}/snpebm/M && {art}/bin/snpe-net-run --container x.dlc "
                              "--input_list list.txt --output_dir o")
    assert (code, out) == (4, "error: cannot open x.dlc\n")


def test_pushed_sh_script_with_device_paths(session, tmp_path):
    """snpe_bench style: a /system/bin/sh script full of device paths, run as 'sh <script>'."""
    script = ("#!/system/bin/sh\n"
              f"export LD_LIBRARY_PATH={TMP}/b/lib:$LD_LIBRARY_PATH\n"
              f'export ADSP_LIBRARY_PATH="{TMP}/b/lib;/system/lib/rfsa/adsp;/dsp"\n'
              f"cd {TMP}/b\n"
              "pwd\n"
              'echo "$ADSP_LIBRARY_PATH"\n'
              "exit 5\n")
    _write(tmp_path / "b" / "cmds.sh", script.encode())
    session.push_tree(tmp_path / "b", f"{TMP}/b")
    assert session.shell(f"sh {TMP}/b/cmds.sh") == (
        5, f"{TMP}/b\n{TMP}/b/lib;/system/lib/rfsa/adsp;/dsp\n")


# --- perf state -------------------------------------------------------------------------------

def test_device_state(client):
    assert open_session(client, SERIAL_A).device_state() == DeviceState(30.0, "schedutil")
    assert open_session(client, SERIAL_B).device_state() == DeviceState(41.5, "performance")


def test_device_state_without_governor_file(adb_server, session):
    adb_server.devices[SERIAL_A].set_governor(None)
    assert session.device_state() == DeviceState(30.0, None)


def test_wait_cool_polls_until_cool(adb_server, client):
    dev = adb_server.devices[SERIAL_B]  # 41.5 °C
    now = [100.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s
        dev.set_battery_temp(dev.battery_temp_c - 2.0)

    res = open_session(client, SERIAL_B).wait_cool(38.0, timeout=60, poll=5,
                                                   clock=lambda: now[0], sleep=sleep)
    assert (res.cooled, res.state.battery_temp_c, res.waited_s, sleeps) == (True, 37.5, 10.0, [5, 5])


def test_wait_cool_gives_up_after_timeout(client):
    now = [0.0]

    def sleep(s):
        now[0] += s

    res = open_session(client, SERIAL_B).wait_cool(38.0, timeout=12, poll=5,
                                                   clock=lambda: now[0], sleep=sleep)
    assert (res.cooled, res.state.battery_temp_c, res.waited_s) == (False, 41.5, 12.0)
    assert open_session(client, SERIAL_A).wait_cool(38.0, timeout=0).cooled is True


# --- vanishing devices and adb failures -------------------------------------------------------

def test_vanished_device_raises_clear_device_error(adb_server, session, tmp_path):
    assert session.shell("true").exit_code == 0
    adb_server.vanish(SERIAL_A)
    msg = r"^device EMU0001: disconnected during {} \(adb lists: EMU0002\); reconnect it"
    with pytest.raises(DeviceError, match=msg.format(r"shell 'echo hi'")):
        session.shell("echo hi")
    with pytest.raises(DeviceError, match=msg.format(f"stat {TMP}/x")):
        session.pull(f"{TMP}/x", tmp_path / "x")
    _write(tmp_path / "f.bin", b"x")
    with pytest.raises(DeviceError, match=msg.format(f"push f.bin -> {TMP}/f.bin")):
        session.push(tmp_path / "f.bin", f"{TMP}/f.bin")
    with pytest.raises(DeviceError, match="disconnected"):
        session.device_state()
    with pytest.raises(DeviceError, match="disconnected"):
        session.push_tree(tmp_path, f"{TMP}/t")


@pytest.mark.parametrize("shell_v2", [True, False], ids=["v2", "v1"])
def test_device_vanishing_during_a_command(adb_server, session, shell_v2):
    if not shell_v2:
        adb_server.devices[SERIAL_A].features = "cmd"
    adb_server.devices[SERIAL_A].vanish_on("long-benchmark")
    with pytest.raises(DeviceError, match=r"device EMU0001: disconnected during shell "
                                          r"'echo long-benchmark' \(adb lists: EMU0002\)"):
        session.shell("echo long-benchmark")


def test_device_unplugged_while_command_runs(adb_server, session):
    timer = threading.Timer(0.3, adb_server.vanish, args=(SERIAL_A,))
    timer.start()
    try:
        with pytest.raises(DeviceError, match=r"device EMU0001: disconnected during shell"):
            session.shell("echo started; sleep 20")
    finally:
        timer.cancel()
    assert not adb_server._procs  # the emulated phone's process died with it


def test_device_vanishing_during_push(adb_server, session, tmp_path):
    adb_server.devices[SERIAL_A].vanish_after(1, kind="SEND")
    for i in range(3):
        _write(tmp_path / "t" / f"f{i}", b"%d" % i)
    with pytest.raises(DeviceError, match=r"device EMU0001: disconnected during push f1 -> "):
        session.push_tree(tmp_path / "t", f"{TMP}/t")


def test_adb_level_failure_of_present_device(adb_server, session):
    adb_server.devices[SERIAL_A].fail_on("getprop", "closed")
    with pytest.raises(DeviceError, match=r"^device EMU0001: adb shell 'getprop' failed: closed "
                                          r"\(adb lists: EMU0001, EMU0002\)"):
        session.getprops()


def test_list_devices_marks_device_lost_mid_query(adb_server, client):
    adb_server.devices[SERIAL_B].vanish_on("getprop")
    infos = list_devices(client)
    assert [(i.serial, i.state) for i in infos] == [(SERIAL_A, "device"), (SERIAL_B, "absent")]


def _count_transports(session, monkeypatch):
    opened = []
    real = session.device.open_transport

    def counting(*args, **kwargs):
        opened.append(args[0] if args else kwargs.get("command"))
        return real(*args, **kwargs)
    monkeypatch.setattr(session.device, "open_transport", counting)
    return opened


def test_push_and_pull_many_files_over_one_sync_connection_each(adb_server, session, tmp_path, monkeypatch):
    files = [_write(tmp_path / "up" / f"f{i}.raw", bytes([i]) * (70000 * i + 3)) for i in range(4)]
    opened = _count_transports(session, monkeypatch)
    sent = session.push_files([(f, f"{TMP}/many/sub{i % 2}/{f.name}") for i, f in enumerate(files)])
    assert sent == sum(f.stat().st_size for f in files)
    assert len(opened) == 1                                   # one connection, folders made by SEND
    assert adb_server.count(SERIAL_A, "SEND") == 4 and adb_server.count(SERIAL_A, "STAT") == 0
    back = [(f"{TMP}/many/sub{i % 2}/{f.name}", tmp_path / "down" / f.name) for i, f in enumerate(files)]
    opened.clear()
    assert session.pull_files(back) == [f.stat().st_size for f in files]
    assert len(opened) == 1 and adb_server.count(SERIAL_A, "LIST") == 0
    assert all((tmp_path / "down" / f.name).read_bytes() == f.read_bytes() for f in files)
    with pytest.raises(ToolError, match=rf"device EMU0001: {TMP}/many/nope.log could not be pulled"):
        session.pull_files([(f"{TMP}/many/nope.log", tmp_path / "x.log")])


def test_push_tree_is_one_md5_listing_and_one_sync_connection(adb_server, session, tmp_path, monkeypatch):
    for i in range(5):
        _write(tmp_path / "t" / f"f{i}", b"%d" % i)
    opened = _count_transports(session, monkeypatch)
    shells = adb_server.count(SERIAL_A, "shell,v2")
    rep = session.push_tree(tmp_path / "t", f"{TMP}/tree5")
    assert len(rep.pushed) == 5 and adb_server.count(SERIAL_A, "shell,v2") == shells + 1
    services = [c for c in opened if c is None]  # (the first shell also asks for the device's features)
    assert len(services) == 2  # the md5 listing (shell) and the sync connection
