"""The adbd emulator through the real adb server binary, adbutils and the real adb client."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest

from profiler.errors import DeviceError
from profiler.phone.adb.session import DeviceSession, open_session

from .harness import _wait

MiB = 1024 * 1024


def _dev(server, phone):
    return server.client(socket_timeout=20).device(phone.addr)


def _pids(d):
    """{pid: args} of every process, from ``ps`` run inside the device."""
    out = {}
    for line in d.shell("ps -A -o pid=,args=").splitlines():
        pid, _, args = line.strip().partition(" ")
        if pid.isdigit():
            out[int(pid)] = args.strip()
    return out


def test_connect_lists_device_with_props(adb_server, phone):
    infos = {i.serial: i.state for i in adb_server.client().list()}
    assert infos == {phone.addr: "device"}
    listing = adb_server.adb("devices", "-l").stdout.decode()
    line = next(ln for ln in listing.splitlines() if ln.startswith(phone.addr))
    assert "device product:emu_phone model:Pixel_Test device:emu" in line
    d = _dev(adb_server, phone)
    assert d.getprop("ro.serialno") == "EMU0001"
    assert "shell_v2" in d.get_features().split(",")
    info = open_session(adb_server.client(), phone.addr, timeout=20).info()
    assert (info.model, info.soc, info.sdk, info.abi) == ("Pixel Test", "SM8550", 33, "arm64-v8a")
    phone.set_prop("ro.product.model", "Renamed")
    assert d.shell("getprop ro.product.model; getprop no.such.prop fallback") == "Renamed\nfallback"


def test_shell_v1_v2_exit_codes_and_stderr(adb_server, phone):
    d = _dev(adb_server, phone)
    assert d.shell("echo out; echo err >&2") == "out\nerr"          # v1: merged, raw pty
    r1 = d.shell2("(echo one; exit 7)")                               # v1 + adbutils' marker
    assert (r1.returncode, r1.output) == (7, "one\n")
    r2 = d.shell2("echo out; echo err >&2; exit 3", v2=True)
    assert (r2.returncode, r2.stdout, r2.stderr) == (3, "out\n", "err\n")
    assert d.shell2("kill -9 $$", v2=True).returncode == 128 + 9
    cli = adb_server.adb("-s", phone.addr, "shell", "echo o; echo e >&2; exit 5")
    assert (cli.returncode, cli.stdout, cli.stderr) == (5, b"o\n", b"e\n")
    cat = adb_server.adb("-s", phone.addr, "shell", "cat; echo rc=$?", input=b"hello\n")
    assert cat.stdout == b"hello\nrc=0\n"                            # stdin, then close-stdin
    login = adb_server.adb("-s", phone.addr, "shell", input=b"echo $0 $TMPDIR; exit 6\n")
    assert (login.returncode, login.stdout) == (6, b"-/system/bin/sh /data/local/tmp\n")
    raw = adb_server.adb("-s", phone.addr, "exec-out", r"printf 'a\000\r\nb'")
    assert raw.stdout == b"a\x00\r\nb"                               # raw pty: bytes untouched
    assert d.shell("echo $TMPDIR; pwd; command -v getprop") == "/data/local/tmp\n/\n/system/bin/getprop"


def test_push_pull_multichunk_with_mode(adb_server, phone, tmp_path):
    d = _dev(adb_server, phone)
    blob = os.urandom(MiB + 12345)                                   # many 64 KiB sync chunks
    src = tmp_path / "big.bin"
    src.write_bytes(blob)
    remote = "/data/local/tmp/new/dir/big.bin"                       # parents do not exist yet
    assert d.sync.push(str(src), remote, mode=0o640) == len(blob)
    st = d.sync.stat(remote)
    assert stat.S_ISREG(st.mode) and st.mode & 0o777 == 0o640 and st.size == len(blob)
    assert phone.host_path(remote).read_bytes() == blob
    assert d.shell("md5sum " + remote).split()[0] == hashlib.md5(blob).hexdigest()
    back = tmp_path / "back.bin"
    d.sync.pull(remote, str(back))
    assert back.read_bytes() == blob
    # The real adb client: push keeps the local mode, pull of a dir uses ls_v2/stat_v2.
    exe = tmp_path / "tool.sh"
    exe.write_bytes(b"#!/system/bin/sh\necho tool-ran \"$@\"\n" + b"#" * 300000 + b"\n")
    exe.chmod(0o755)
    push = adb_server.adb("-s", phone.addr, "push", str(exe), "/data/local/tmp/bin/")
    assert push.returncode == 1                                      # as adbd: no such dir
    assert b"remote couldn't create file: Is a directory" in push.stderr
    d.shell("mkdir /data/local/tmp/bin")
    push = adb_server.adb("-s", phone.addr, "push", str(exe), "/data/local/tmp/bin/")
    assert push.returncode == 0, push.stderr
    assert d.sync.stat("/data/local/tmp/bin/tool.sh").mode & 0o777 == 0o755
    assert d.shell("/data/local/tmp/bin/tool.sh x") == "tool-ran x"  # #!/system/bin/sh works
    pull = adb_server.adb("-s", phone.addr, "pull", "/data/local/tmp/new", str(tmp_path / "got"))
    assert pull.returncode == 0, pull.stderr
    assert (tmp_path / "got" / "dir" / "big.bin").read_bytes() == blob
    missing = adb_server.adb("-s", phone.addr, "pull", "/data/local/tmp/nope", str(tmp_path))
    assert missing.returncode != 0 and b"No such file or directory" in missing.stderr


def test_sync_list_and_stat(adb_server, phone):
    d = _dev(adb_server, phone)
    d.shell("mkdir -p /data/local/tmp/l/sub && printf abc > /data/local/tmp/l/f.txt")
    entries = {e.path: e for e in d.sync.list("/data/local/tmp/l")}
    assert set(entries) == {".", "..", "sub", "f.txt"}
    assert entries["f.txt"].size == 3 and stat.S_ISDIR(entries["sub"].mode)
    assert stat.S_ISDIR(d.sync.stat("/data/local/tmp/l").mode)
    gone = d.sync.stat("/data/local/tmp/l/none")
    assert (gone.mode, gone.size, gone.mtime) == (0, 0, None)
    sess = DeviceSession(adb_server.client(), phone.addr, timeout=20)
    assert sess.list("/data/local/tmp/l") == ["f.txt", "sub"]
    assert sess.exists("/data/local/tmp/l/f.txt") and not sess.exists("/data/local/tmp/l/x")
    assert d.sync.read_text("/data/local/tmp/l/f.txt") == "abc"


def test_device_paths_are_real_paths(adb_server, phone, tmp_path):
    d = _dev(adb_server, phone)
    src = tmp_path / "x"
    src.write_text("pushed\n")
    d.sync.push(str(src), "/data/local/tmp/x", mode=0o644)
    # Inside the device the file is at the literal path (nothing rewrites the command)...
    assert d.shell("p=/data; cat \"$p/local/tmp/x\"; realpath /data/local/tmp/x") == \
        "pushed\n/data/local/tmp/x"
    assert phone.host_path("/data/local/tmp/x").read_text() == "pushed\n"
    # ...and what a command writes there is in the per-device host directory.
    d.shell("echo made > /data/local/tmp/y; echo card > /sdcard/z")
    assert (phone.root / "data/local/tmp/y").read_text() == "made\n"
    assert (phone.root / "sdcard/z").read_text() == "card\n"
    assert d.shell("ls /system/bin") .split() == ["dumpsys", "getprop", "sh"]


def test_perf_state_through_device_session(adb_server, phones):
    ph = phones("EMU0003", battery_temp_c=41.5, governor="performance")
    sess = DeviceSession(adb_server.client(), ph.addr, timeout=20)
    state = sess.device_state()
    assert (state.battery_temp_c, state.governor) == (41.5, "performance")
    ph.set_battery_temp(36.0)
    ph.set_governor(None)
    state = sess.device_state()
    assert (state.battery_temp_c, state.governor) == (36.0, None)


def test_two_devices_see_their_own_data(adb_servers, adb_server, phones):
    other = adb_servers()
    a = phones("EMU000A")
    b = phones("EMU000B", server=other, props={"ro.product.model": "Other"})
    c = phones("EMU000C")
    da, db, dc = _dev(adb_server, a), _dev(other, b), _dev(adb_server, c)
    for d, name in ((da, "A"), (db, "B"), (dc, "C")):
        d.shell("echo %s > /data/local/tmp/who" % name)
    assert [d.shell("cat /data/local/tmp/who") for d in (da, db, dc)] == ["A", "B", "C"]
    assert [p.host_path("/data/local/tmp/who").read_text() for p in (a, b, c)] == \
        ["A\n", "B\n", "C\n"]
    assert sorted(adb_server.states()) == sorted([a.addr, c.addr])
    assert other.states() == {b.addr: "device"}
    assert db.getprop("ro.serialno") == "EMU000B" and db.getprop("ro.product.model") == "Other"


HUP_SCRIPT = (
    "trap 'echo hup > /data/local/tmp/sh.hup; exit 129' HUP; "
    "echo $$ > /data/local/tmp/sh.pid; "
    "sleep 1000 & echo $! > /data/local/tmp/child.pid; "
    "echo started; wait")


def _close_once_started(d, script: str, v2: bool) -> None:
    """Run ``script`` on a host-side stream and close it once the script printed ``started`` (the
    trap is set by then, however slowly the shell came up), as a client giving up on it does."""
    c = d.open_transport(timeout=30)
    try:
        c.send_command(("shell,v2:" if v2 else "shell:") + script)
        c.check_okay()
        seen = b""
        while b"started" not in seen:
            if v2:                                   # shell protocol: id, little-endian length, data
                header = c.read_exact(5)
                data = c.read_exact(int.from_bytes(header[1:5], "little"))
                seen += data if header[0] == 1 else b""
            else:
                seen += c.recv(4096) or pytest.fail(f"stream ended before 'started': {seen!r}")
    finally:
        c.close()


def _started(phone):
    return phone.host_path("/data/local/tmp/child.pid").exists()


def test_host_closing_v2_shell_sighups_only_sh(adb_server, phone):
    d = _dev(adb_server, phone)
    _close_once_started(d, HUP_SCRIPT, v2=True)
    _wait(lambda: _started(phone) and phone.host_path("/data/local/tmp/sh.hup").exists(), 10,
          "sh to get SIGHUP")
    sh_pid = int(phone.host_path("/data/local/tmp/sh.pid").read_text())
    child = int(phone.host_path("/data/local/tmp/child.pid").read_text())
    _wait(lambda: sh_pid not in _pids(d), 10, "sh to exit")
    procs = _pids(d)
    assert procs.get(child) == "sleep 1000"        # the background child did not get SIGHUP
    assert child in phone.device_pids()


def test_host_closing_v1_shell_hangs_up_the_terminal(adb_server, phone):
    """No shell protocol: the pty's hangup reaches sh, then its process group on sh's exit;
    only a child that ignores SIGHUP survives (as with adbd's raw pty)."""
    d = _dev(adb_server, phone)
    script = HUP_SCRIPT.replace("sleep 1000 &",
                                "sleep 1001 & (trap '' HUP; exec sleep 1000) &")
    _close_once_started(d, script, v2=False)
    _wait(lambda: _started(phone) and phone.host_path("/data/local/tmp/sh.hup").exists(), 10,
          "sh to get SIGHUP")
    sh_pid = int(phone.host_path("/data/local/tmp/sh.pid").read_text())
    survivor = int(phone.host_path("/data/local/tmp/child.pid").read_text())
    _wait(lambda: "sleep 1001" not in _pids(d).values(), 10, "the plain child to be hung up")
    procs = _pids(d)
    assert sh_pid not in procs and procs.get(survivor) == "sleep 1000"


def test_unplug_makes_the_server_drop_the_device(adb_server, phone):
    d = _dev(adb_server, phone)
    assert d.shell("echo up") == "up"
    phone.kill()
    _wait(lambda: adb_server.states().get(phone.addr) != "device", 15, "the server to notice")
    state = adb_server.states().get(phone.addr)
    assert state in ("offline", None)
    cli = adb_server.adb("-s", phone.addr, "shell", "true")
    err = cli.stderr.decode()
    assert cli.returncode != 0
    assert ("device offline" in err) if state == "offline" else ("not found" in err), err
    with pytest.raises(DeviceError) as e:
        DeviceSession(adb_server.client(), phone.addr, timeout=10).shell("true")
    assert phone.addr in str(e.value) and ("offline" in str(e.value) or
                                            "disconnected" in str(e.value))


def test_replug_on_the_same_port_brings_the_device_back(adb_server, phone):
    phone.kill()
    _wait(lambda: adb_server.states().get(phone.addr) != "device", 15, "the server to notice")
    phone.start()                                   # same port: the server's reconnect finds it
    adb_server.wait_state(phone.addr, "device", timeout=30)
    assert _dev(adb_server, phone).shell("getprop ro.serialno") == "EMU0001"


def test_unauthorized_phone_and_request_log(adb_server, phones):
    locked = phones("LOCK0001", unauthorized=True)
    ok = phones("EMU0002")
    assert adb_server.states() == {locked.addr: "unauthorized", ok.addr: "device"}
    cli = adb_server.adb("-s", locked.addr, "shell", "true")
    assert cli.returncode == 1 and b"adb: device unauthorized." in cli.stderr
    assert locked.requests() == []  # nothing was opened on it
    d = _dev(adb_server, ok)
    d.shell("echo hi")
    d.sync.push(b"x", "/data/local/tmp/r.bin")
    # adbutils' push: a STAT of the destination, then a SEND, each on its own sync connection
    assert ok.requests() == [("shell", "echo hi"), ("sync", ""), ("STAT", "/data/local/tmp/r.bin"),
                             ("sync", ""), ("SEND", "/data/local/tmp/r.bin,33261")]
    assert ok.count("sync") == 2 and ok.host_path("/data/local/tmp/r.bin").read_bytes() == b"x"
