"""profiler.phone.adb sessions: adbutils -> the real adb server -> emulated phones (tests/emulator),
named ``127.0.0.1:PORT``; unplugging is the phone's process dying (the server then lists it
``offline``). Only the listing of a phone that vanishes from the server without going offline
uses the Python server (``fake_server``, see adbserver.py)."""

import os
import re
import sys
import threading
from pathlib import Path

import pytest

from profiler.phone.adb import (DeviceSession, DeviceState, list_devices, open_client, open_session,
                             parse_device_state, parse_getprop)
from profiler.errors import DeviceError, ToolError

TMP = "/data/local/tmp"


def _lists(*entries: str) -> str:
    """The regex of ``adb lists: ...`` as the real server orders devices (by serial)."""
    return re.escape("adb lists: " + ", ".join(sorted(entries, key=lambda e: e.split(" ")[0])))


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


# --- listing ----------------------------------------------------------------------------------

def test_list_devices_reads_props(adb_server, client):
    locked_phone = adb_server.add("LOCKED1", unauthorized=True)
    infos = {i.serial: i for i in list_devices(client)}
    a, b, locked = infos[adb_server.a.addr], infos[adb_server.b.addr], infos[locked_phone.addr]
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
    a, b = adb_server.a.addr, adb_server.b.addr
    with pytest.raises(DeviceError, match=r"^device R5CT123 not found \(%s\); plug it in" % _lists(a, b)):
        open_session(client, "R5CT123")
    locked = adb_server.add("LOCKED1", unauthorized=True)
    with pytest.raises(DeviceError, match=re.escape(locked.addr) + r" is unauthorized .*Allow USB debugging"):
        open_session(client, locked.addr)


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
    phone = adb_server.a if shell_v2 else adb_server.add("EMU0003", features=("cmd", "stat_v2"))
    s = open_session(client, phone.addr)
    assert s.shell("echo hi; exit 3") == (3, "hi\n")
    assert s.shell("echo out; echo err >&2; false") == (1, "out\nerr\n")
    assert s.shell(["echo", "a b", "&", "$HOME"]) == (0, "a b & $HOME\n")
    assert s.shell("echo x # trailing comment") == (0, "x\n")
    assert phone.count("shell,v2" if shell_v2 else "shell") == 4 and phone.count() == 4
    with pytest.raises(ToolError, match=re.escape(f"device {phone.addr}: 'ls /data/nope' exited with ") +
                       r"[12]: .*nope"):
        s.shell("ls /data/nope", check=True)


def test_shell_timeout_is_a_device_error_and_session_survives(session):
    with pytest.raises(DeviceError, match=re.escape(f"device {session.serial}: shell 'sleep 20' timed out after 0.5 s")):
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
    assert len(first.pushed) == 3 and adb_server.a.count("SEND") == 3

    second = session.push_tree(tmp_path / "sdk", f"{TMP}/sdk")
    assert second.pushed == [] and len(second.skipped) == 3 and second.bytes_pushed == 0
    assert adb_server.a.count("SEND") == 3  # nothing re-sent

    _write(tmp_path / "sdk" / "lib" / "lib1.so", b"changed")
    third = session.push_tree(tmp_path / "sdk", f"{TMP}/sdk")
    assert third.pushed == ["lib/lib1.so"]
    sends = adb_server.a.requests("SEND")
    assert len(sends) == 4 and sends[-1][1].startswith(f"{TMP}/sdk/lib/lib1.so,")

    other = DeviceSession(session.client, adb_server.b.addr)  # another phone gets its own copy
    assert len(other.push_tree(tmp_path / "sdk", f"{TMP}/sdk").pushed) == 3


def test_local_md5s_are_read_once_per_file_version_across_phones(adb_server, session, tmp_path, monkeypatch):
    import time
    import profiler.files as files
    reads = []
    real = files.file_digest
    monkeypatch.setattr(files, "file_digest", lambda p, a="sha256": reads.append(Path(p).name) or real(p, a))
    monkeypatch.setattr(files, "_clock_ns", lambda: time.time_ns() + 10 * 10**9)  # files look 10 s old
    for i in range(3):
        _write(tmp_path / "sdk" / f"lib{i}.so", b"%d" % i * 100)
    soon = time.time() + 9  # changed a moment ago by that clock: may change again unseen, not kept
    os.utime(_write(tmp_path / "sdk" / "fresh.raw", b"new"), (soon, soon))
    other = DeviceSession(session.client, adb_server.b.addr)
    assert len(session.push_tree(tmp_path / "sdk", f"{TMP}/md5c").pushed) == 4
    assert len(other.push_tree(tmp_path / "sdk", f"{TMP}/md5c").pushed) == 4
    assert sorted(reads) == ["fresh.raw"] * 2 + ["lib0.so", "lib1.so", "lib2.so"]
    mtime = os.stat(tmp_path / "sdk" / "lib1.so").st_mtime_ns
    _write(tmp_path / "sdk" / "lib1.so", b"X" * 100)  # same size, rewritten in place
    os.utime(tmp_path / "sdk" / "lib1.so", ns=(mtime, mtime))  # even with its old mtime (ctime moved)
    assert session.push_tree(tmp_path / "sdk", f"{TMP}/md5c").pushed == ["lib1.so"]
    assert reads.count("lib1.so") == 2


def test_missing_local_and_remote_files(session, tmp_path):
    with pytest.raises(ToolError, match="not a directory"):
        session.push_tree(tmp_path / "nope", f"{TMP}/x")
    with pytest.raises(ToolError, match="not a file"):
        session.push(tmp_path / "nope.bin", f"{TMP}/x")
    with pytest.raises(ToolError, match=re.escape(f"device {session.serial}: {TMP}/output/SNPEDiag_0.log does not "
                                                  "exist")):
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
    diag = (tmp_path / "diag.log").read_text()  # real device paths
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

def test_device_state(adb_server, client):
    assert open_session(client, adb_server.a.addr).device_state() == DeviceState(30.0, "schedutil")
    assert open_session(client, adb_server.b.addr).device_state() == DeviceState(41.5, "performance")


def test_device_state_without_governor_file(adb_server, session):
    adb_server.a.set_governor(None)
    assert session.device_state() == DeviceState(30.0, None)


def test_wait_cool_polls_until_cool(adb_server, client):
    dev = adb_server.b  # 41.5 °C
    now = [100.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s
        dev.set_battery_temp(dev.battery_temp_c - 2.0)

    res = open_session(client, dev.addr).wait_cool(38.0, timeout=60, poll=5,
                                                   clock=lambda: now[0], sleep=sleep)
    assert (res.cooled, res.state.battery_temp_c, res.waited_s, sleeps) == (True, 37.5, 10.0, [5, 5])


def test_wait_cool_gives_up_after_timeout(adb_server, client):
    now = [0.0]

    def sleep(s):
        now[0] += s

    res = open_session(client, adb_server.b.addr).wait_cool(38.0, timeout=12, poll=5,
                                                   clock=lambda: now[0], sleep=sleep)
    assert (res.cooled, res.state.battery_temp_c, res.waited_s) == (False, 41.5, 12.0)
    assert open_session(client, adb_server.a.addr).wait_cool(38.0, timeout=0).cooled is True


# --- unplugged devices and adb failures -----------------------------------------------------

def test_unplugged_device_raises_clear_device_error(adb_server, session, tmp_path):
    assert session.shell("true").exit_code == 0
    a, b = adb_server.a.addr, adb_server.b.addr
    adb_server.unplug(adb_server.a)
    msg = r"^device %s: became offline during {} \(%s\); replug the cable" % (
        re.escape(a), _lists(a + " [offline]", b))
    with pytest.raises(DeviceError, match=msg.format(r"shell 'echo hi'")):
        session.shell("echo hi")
    with pytest.raises(DeviceError, match=msg.format(f"stat {TMP}/x")):
        session.pull(f"{TMP}/x", tmp_path / "x")
    _write(tmp_path / "f.bin", b"x")
    with pytest.raises(DeviceError, match=msg.format(f"push f.bin -> {TMP}/f.bin")):
        session.push(tmp_path / "f.bin", f"{TMP}/f.bin")
    with pytest.raises(DeviceError, match="became offline"):
        session.device_state()
    with pytest.raises(DeviceError, match="became offline"):
        session.push_tree(tmp_path, f"{TMP}/t")
    # adb disconnect: the server forgets it, and the session says so
    adb_server.disconnect(adb_server.a)
    with pytest.raises(DeviceError, match=r"^device %s: disconnected during shell 'echo hi' \(%s\); reconnect it"
                       % (re.escape(a), _lists(b))):
        session.shell("echo hi")
    # plugged back in: the same session works again
    adb_server.replug(adb_server.a)
    assert session.shell("echo back") == (0, "back\n")


@pytest.mark.parametrize("shell_v2", [True, False], ids=["v2", "v1"])
def test_device_unplugged_as_a_command_arrives(adb_server, client, shell_v2):
    phone = adb_server.a if shell_v2 else adb_server.add("EMU0003", features=("cmd",))
    session = open_session(client, phone.addr, timeout=20)
    phone.die_on("shell,v2" if shell_v2 else "shell", "long-benchmark")
    others = [adb_server.b.addr] + ([adb_server.a.addr] if not shell_v2 else [])
    with pytest.raises(DeviceError, match=r"device %s: became offline during shell 'echo long-benchmark' \(%s\)"
                       % (re.escape(phone.addr), _lists(phone.addr + " [offline]", *others))):
        session.shell("echo long-benchmark")
    assert not phone.alive()


def test_device_unplugged_while_command_runs(adb_server, session):
    phone = adb_server.a
    timer = threading.Timer(0.5, phone.kill)
    timer.start()
    try:
        with pytest.raises(DeviceError, match=re.escape(f"device {phone.addr}: became offline during shell")):
            session.shell("echo started; sleep 20")
    finally:
        timer.cancel()
    assert not phone.alive()
    # like a phone whose cable was pulled, the command itself goes on running on the device
    assert any("sleep" in open("/proc/%d/cmdline" % pid).read() for pid in phone.device_pids())


def test_device_unplugged_during_push(adb_server, session, tmp_path):
    adb_server.a.die_on("SEND", after=2)  # as the second file starts
    for i in range(3):
        _write(tmp_path / "t" / f"f{i}", b"%d" % i)
    with pytest.raises(DeviceError, match=re.escape(f"device {session.serial}: became offline during push f1 -> ")):
        session.push_tree(tmp_path / "t", f"{TMP}/t")
    assert adb_server.a.host_path(f"{TMP}/t/f0").read_bytes() == b"0"
    assert not adb_server.a.host_path(f"{TMP}/t/f2").exists()


def test_adb_level_failure_of_present_device(adb_server, session):
    adb_server.a.refuse_on("shell,v2", "getprop")
    a, b = adb_server.a.addr, adb_server.b.addr
    with pytest.raises(DeviceError, match=r"^device %s: adb shell 'getprop' failed: closed \(%s\)"
                       % (re.escape(a), _lists(a, b))):
        session.getprops()


def test_list_devices_marks_device_lost_mid_query(adb_server, client):
    adb_server.b.die_on("shell,v2", "getprop")
    infos = list_devices(client)
    assert [(i.serial, i.state) for i in infos] == sorted([(adb_server.a.addr, "device"),
                                                           (adb_server.b.addr, "absent")])


def test_list_devices_marks_device_gone_mid_query_fake_server(fake_server, fake_client):
    """Gone from the listing (not offline) between the listing and getprop: the real server keeps
    a TCP device it loses listed as offline, so this needs the Python server."""
    fake_server.devices["EMU0002"].vanish_on("getprop")
    infos = list_devices(fake_client)
    assert [(i.serial, i.state) for i in infos] == [("EMU0001", "device"), ("EMU0002", "absent")]


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
    assert adb_server.a.count("SEND") == 4 and adb_server.a.count("STAT") == 0 and adb_server.a.count("sync") == 1
    back = [(f"{TMP}/many/sub{i % 2}/{f.name}", tmp_path / "down" / f.name) for i, f in enumerate(files)]
    opened.clear()
    assert session.pull_files(back) == [f.stat().st_size for f in files]
    assert len(opened) == 1 and adb_server.a.count("LIST") == 0 and adb_server.a.count("sync") == 2
    assert all((tmp_path / "down" / f.name).read_bytes() == f.read_bytes() for f in files)
    with pytest.raises(ToolError, match=re.escape(f"device {session.serial}: {TMP}/many/nope.log could not be pulled")):
        session.pull_files([(f"{TMP}/many/nope.log", tmp_path / "x.log")])


def test_pushes_are_pipelined_with_a_bound_on_unread_replies(adb_server, session, tmp_path, monkeypatch):
    """As adb's client: files go out back to back and their OKAYs are read later, at most
    MAX_DEFERRED (here 2) left unread; every file arrives intact (one over 64 KiB)."""
    from profiler.phone.adb import sync
    events = []
    real_send, real_ack = sync._send_file, sync._ack
    monkeypatch.setattr(sync, "_send_file", lambda c, l, r, m: (events.append("s" + l.name[1]), real_send(c, l, r, m))[1])
    monkeypatch.setattr(sync, "_ack", lambda c, r: (real_ack(c, r), events.append("a" + r[-1]))[0])
    monkeypatch.setattr(sync, "_readable", lambda c: False)  # only the bound makes it read early
    monkeypatch.setattr(sync, "MAX_DEFERRED", 2)
    files = [_write(tmp_path / "up" / f"f{i}", bytes([i + 1]) * (3 + 50000 * i)) for i in range(5)]
    session.push_files([(f, f"{TMP}/pipe/{f.name}{i}") for i, f in enumerate(files)])
    assert events == ["s0", "s1", "a0", "s2", "a1", "s3", "a2", "s4", "a3", "a4"]
    assert [adb_server.a.host_path(f"{TMP}/pipe/{f.name}{i}").read_bytes() for i, f in enumerate(files)] == \
        [f.read_bytes() for f in files]


def test_a_file_refused_mid_push_is_named_and_the_earlier_ones_are_there(adb_server, session, tmp_path):
    files = [_write(tmp_path / f"f{i}", b"%d" % i) for i in range(4)]
    adb_server.a.host_path(f"{TMP}/plain").parent.mkdir(parents=True, exist_ok=True)
    adb_server.a.host_path(f"{TMP}/plain").write_bytes(b"a file, not a folder")
    dests = [f"{TMP}/ok/f0", f"{TMP}/ok/f1", f"{TMP}/plain/f2", f"{TMP}/ok/f3"]
    with pytest.raises(ToolError, match=re.escape(f"device {session.serial}: push {TMP}/plain/f2 refused: ")):
        session.push_files(list(zip(files, dests)))
    assert [adb_server.a.host_path(d).read_bytes() for d in dests[:2]] == [b"0", b"1"]


def test_pulls_are_pipelined_and_a_missing_file_in_the_middle_is_named(adb_server, session, tmp_path):
    for i in (0, 1, 3):
        _write(adb_server.a.host_path(f"{TMP}/logs/r{i}.log"), b"log %d" % i)
    wanted = [(f"{TMP}/logs/r{i}.log", tmp_path / f"r{i}.log") for i in range(4)]
    assert session.pull_files([wanted[0], wanted[1], wanted[3]]) == [5, 5, 5]
    with pytest.raises(ToolError, match=re.escape(f"device {session.serial}: {TMP}/logs/r2.log could not be pulled")):
        session.pull_files(wanted)
    assert (tmp_path / "r1.log").read_bytes() == b"log 1"


def test_push_tree_is_one_md5_listing_and_one_sync_connection(adb_server, session, tmp_path, monkeypatch):
    for i in range(5):
        _write(tmp_path / "t" / f"f{i}", b"%d" % i)
    opened = _count_transports(session, monkeypatch)
    shells = adb_server.a.count("shell,v2")
    rep = session.push_tree(tmp_path / "t", f"{TMP}/tree5")
    assert len(rep.pushed) == 5 and adb_server.a.count("shell,v2") == shells + 1
    services = [c for c in opened if c is None]  # (the first shell also asks for the device's features)
    assert len(services) == 2  # the md5 listing (shell) and the sync connection


def test_inventory_replaces_the_md5_listing_of_pushes_under_it(adb_server, session, tmp_path):
    root = f"{TMP}/inv"
    _write(tmp_path / "a" / "x.bin", b"x")
    _write(tmp_path / "a" / "out" / "run.log", b"log")
    _write(tmp_path / "b" / "y.bin", b"y")
    assert session.push_tree(tmp_path / "a", f"{root}/m/a").pushed == ["out/run.log", "x.bin"]
    shells = adb_server.a.count("shell,v2")
    state = session.take_inventory([f"{root}/m", f"{root}/missing"], prune=[f"{root}/m/*/out"])
    assert state == DeviceState(30.0, "schedutil") and adb_server.a.count("shell,v2") == shells + 1
    rep = session.push_tree(tmp_path / "a", f"{root}/m/a")  # out/ was left out of the listing
    assert rep.skipped == ["x.bin"] and rep.pushed == ["out/run.log"]
    assert session.push_tree(tmp_path / "b", f"{root}/m/b").pushed == ["y.bin"]
    assert session.push_tree(tmp_path / "b", f"{root}/m/b").skipped == ["y.bin"]  # its own push recorded
    assert adb_server.a.count("shell,v2") == shells + 1  # no listing after the inventory
    # changed on the phone behind the session's back: the next listing (session) sees it
    adb_server.a.host_path(f"{root}/m/b/y.bin").write_bytes(b"changed")
    assert session.push_tree(tmp_path / "b", f"{root}/m/b").pushed == []
    session.take_inventory([f"{root}/m"])
    assert session.push_tree(tmp_path / "b", f"{root}/m/b").pushed == ["y.bin"]
    assert adb_server.a.host_path(f"{root}/m/b/y.bin").read_bytes() == b"y"
    # outside the inventory's folders a push lists the folder, as before
    shells = adb_server.a.count("shell,v2")
    assert session.push_tree(tmp_path / "b", f"{TMP}/elsewhere").pushed == ["y.bin"]
    assert adb_server.a.count("shell,v2") == shells + 1


def test_sync_connections_send_without_nagle_and_ask_for_quick_acks(adb_server, session, tmp_path, monkeypatch):
    import socket
    from profiler.phone.adb import sync
    seen = []
    real_read = sync._read_exact

    def reading(conn, n):  # the socket's options as each reply is read
        data = real_read(conn, n)
        seen.append(conn.conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return data

    monkeypatch.setattr(sync, "_read_exact", reading)
    quick = []
    real_quick = sync._quick_ack
    monkeypatch.setattr(sync, "_quick_ack", lambda conn: (quick.append(1), real_quick(conn)))
    f = _write(tmp_path / "a.bin", b"abc")
    session.push_files([(f, f"{TMP}/nd/a.bin")])
    session.pull_files([(f"{TMP}/nd/a.bin", tmp_path / "b.bin")])
    assert seen and all(seen) and (tmp_path / "b.bin").read_bytes() == b"abc"
    assert len(quick) == len(seen)  # every read of a reply first asks for quick ACKs


def test_client_asks_the_server_version_once_and_closes_without_sleeping(adb_server, monkeypatch):
    from adbutils import _adb
    from profiler.phone.adb.session import open_client
    client = open_client("127.0.0.1", adb_server.port)   # asks host:version: the server answers
    session = DeviceSession(client, adb_server.a.addr, timeout=20)
    made = []
    real = client.make_connection
    monkeypatch.setattr(client, "make_connection", lambda timeout=None: made.append(1) or real(timeout))
    sleeps = []
    monkeypatch.setattr(_adb.time, "sleep", lambda t: sleeps.append(t))
    assert session.shell("echo hi").output == "hi\n"   # the first call also asks the features
    assert len(made) == 2
    made.clear()
    assert session.shell("echo again").output == "again\n"
    # one connection per call: none for host:version; adbutils' 10 ms sleep on close not paid
    assert len(made) == 1 and sleeps == []
