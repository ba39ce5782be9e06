"""A device-side adbd emulator: one emulated phone that the *real* adb server connects to.

Run as a process (the helper in ``tests/emulator/harness.py`` does this)::

    python -m tests.emulator.adbd --port 0 --root DIR --serial EMU0001 \
        --prop ro.product.model=Pixel_Test --ready-file DIR/port

and attach it with ``adb connect 127.0.0.1:PORT``. It speaks adb's transport protocol over
TCP the way adbd does (AOSP ``adb/protocol.txt``): 24-byte little-endian message headers
(command, arg0, arg1, data length, data checksum, magic = command ^ 0xffffffff), the
``CNXN`` handshake answered at once (no ``AUTH``: like a phone with ``ro.adb.secure=0``; no
``STLS``: TLS is not offered; with ``--unauthorized`` it answers ``AUTH TOKEN`` instead and
rejects every signature and key, so the server lists it ``unauthorized``), and ``OPEN``/``OKAY``/``WRTE``/``CLSE`` streams with local and
remote ids and one unacknowledged ``WRTE`` per direction (an ``OKAY`` is sent for a received
``WRTE`` only once the service has consumed it).

Services (``adb/SERVICES.TXT``, ``adb/SYNC.TXT``, ``adb/daemon/shell_service.cpp``)
    ``shell:<cmd>`` and ``exec:<cmd>``
        no shell protocol: like adbd the command runs on a pseudo-terminal in raw mode (adbd
        cannot run a raw pipe without the protocol), so stdout and stderr are merged and, when
        the host closes the stream, closing the pty master makes the *kernel* hang up the
        session (SIGHUP to the session leader ``sh``; its foreground process group gets one
        when it exits). An empty ``shell:`` is an interactive login shell on a cooked pty.
    ``shell,v2[,raw|,pty][,TERM=x]:<cmd>``
        the shell protocol (``adb/shell_protocol.h``): packets ``id:u8 length:u32le data`` with
        0 stdin, 1 stdout, 2 stderr, 3 exit, 4 close stdin, 5 window size. Raw (default with a
        command) uses separate socketpairs for stdin+stdout and stderr; pty (default without
        a command) one terminal. When the host closes the stream (``CLSE``, or the server
        connection drops) the emulator sends SIGHUP to the ``sh`` it started and to nothing
        else, and closes its ends of the child's sockets -- adbd's "protocol FD died, sending
        SIGHUP". A background child that does not get or ignores SIGHUP keeps running.
    ``sync:``
        ``STAT`` (lstat), ``STA2`` (stat) / ``LST2`` (lstat), ``LIST`` and ``LIS2`` (with
        ``.`` and ``..`` as readdir returns them), ``SEND`` (``path,mode``; parents created;
        an existing regular file is replaced by a new one; ``DONE`` sets the mtime), ``RECV``,
        ``QUIT``. Not ``SND2``/``RCV2`` (``sendrecv_v2`` is not advertised).
    anything else (``reboot:``, ``abb:``, ``tcpip:``, ``jdwp``, ...) is refused with ``CLSE``,
    which the adb client reports as ``error: closed``.

Real device paths, no rewriting
    Before it listens, the process enters a private mount namespace (``unshare(CLONE_NEWNS)``
    via ctypes, mounts made private) and builds a root of its own on a tmpfs: every top-level
    entry of the host's ``/`` is bind-mounted (recursively) or symlinked into it, then
    ``DIR/data`` is bound onto ``/data``, ``DIR/sdcard`` onto ``/sdcard`` and ``DIR/system``
    onto ``/system``, and ``DIR/sys/.../cpu0`` over ``/sys/devices/system/cpu/cpu0``; then it
    ``chroot``s there. So ``/data/local/tmp/x`` inside the device *is* ``DIR/data/local/tmp/x``
    on the host, for the sync service and every command alike, and nothing is created in the
    host's ``/`` (no host ``/data`` or ``/system`` appears). ``/proc`` is the host's, so ``ps``
    lists every process, as the brief allows.

    ``/system/bin`` (first on ``PATH``) holds ``sh`` (a link to the host's ``/bin/sh``, so
    ``#!/system/bin/sh`` scripts run), ``getprop`` (``[key]: [value]`` lines, or one value)
    and ``dumpsys`` (``battery`` with ``temperature`` in tenths of a degree, like Android).
    They read ``/system/etc/adbemu.json`` (props, battery temperature), which the host-side
    helper may rewrite at any time. ``md5sum``, ``ps``, ``find``, ``cat``... are the host's.

With ``--request-log FILE`` (a host path) every service request and sync request is appended
to FILE as one JSON line ``{"kind": ..., "detail": ...}`` (see ``Phone.requests``). With
``--faults FILE`` the process kills itself (``die``: an unplug at an exact request) or refuses a
service (``refuse``) on the N-th matching request (see :func:`record`, ``Phone.die_on``).

Needs root (CAP_SYS_ADMIN) for the namespace; it is a test fixture, not a sandbox.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import threading
import tty
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

# ---------------------------------------------------------------------- protocol constants

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
A_VERSION = 0x01000001          # the version from which checksums may be skipped
MAX_PAYLOAD = 1024 * 1024
HEADER = struct.Struct("<6I")   # command, arg0, arg1, data_length, data_check, magic
COMMAND_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY",
                 A_CLSE: "CLSE", A_WRTE: "WRTE", A_AUTH: "AUTH", A_STLS: "STLS"}

FEATURES = ("shell_v2", "cmd", "stat_v2", "ls_v2", "fixed_push_mkdir")

SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINSIZE = range(6)

SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024

DEVICE_PATH = "/system/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATE_FILE = "system/etc/adbemu.json"          # relative to the device dir (and to /)
GOVERNOR_DIR = "sys/devices/system/cpu/cpu0"   # bound over the real one inside the device


def checksum(data: bytes) -> int:
    """adb's "crc32" field is really the byte sum; peers at A_VERSION ignore it."""
    return sum(data) & 0xFFFFFFFF


def default_props(serial: str) -> Dict[str, str]:
    """getprop values of a plausible Snapdragon 8 Gen 2 phone (as tests/phone/adb/adbserver.py)."""
    return {
        "ro.serialno": serial,
        "ro.product.model": "Emulated Phone",
        "ro.product.manufacturer": "ProfilerTest",
        "ro.product.brand": "profilertest",
        "ro.product.name": "emu_phone",
        "ro.product.device": "emu",
        "ro.product.board": "kalama",
        "ro.board.platform": "kalama",
        "ro.soc.manufacturer": "QTI",
        "ro.soc.model": "SM8550",
        "ro.build.version.sdk": "33",
        "ro.build.version.release": "13",
        "ro.build.fingerprint": "profilertest/emu_phone/emu:13/TQ3A/1:user/release-keys",
        "ro.product.cpu.abi": "arm64-v8a",
        "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    }


def log(msg: str) -> None:
    sys.stderr.write("adbd[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


_requests = None  # the --request-log file, opened before the namespace is entered
_requests_lock = threading.Lock()


_faults_path: Optional[str] = None  # --faults FILE: rules the host may (re)write at any time
_faults_seen: Tuple[float, int] = (0.0, -1)
_faults: List[Dict[str, object]] = []


def _load_faults() -> None:
    global _faults_seen, _faults
    try:
        st = os.stat(_faults_path)
    except OSError:
        _faults = []
        return
    if (st.st_mtime, st.st_size) != _faults_seen:
        with open(_faults_path, encoding="utf-8") as f:
            _faults = [dict(rule, seen=0) for rule in json.load(f)]
        _faults_seen = (st.st_mtime, st.st_size)


def record(kind: str, detail: str) -> Optional[str]:
    """Log one service or sync request (``--request-log``) and apply the ``--faults`` rules:
    ``{"kind": K or null, "text": T, "after": N, "action": "die" | "refuse"}`` fires on the
    N-th request of kind K whose detail contains T. ``die`` SIGKILLs this process there and then
    (an unplug at an exact point; the commands it started keep running); ``refuse`` is returned
    so the service is refused (``CLSE``: what adbd does when a service cannot start)."""
    with _requests_lock:
        if _requests is not None:
            _requests.write(json.dumps({"kind": kind, "detail": detail}) + "\n")
            _requests.flush()
        if _faults_path is None:
            return None
        _load_faults()
        for rule in _faults:
            if rule.get("kind") not in (None, kind) or str(rule.get("text", "")) not in detail:
                continue
            rule["seen"] = int(rule["seen"]) + 1
            if rule["seen"] < int(rule.get("after", 1)):
                continue
            if rule.get("action") == "die":
                log("fault: dying at %s %r" % (kind, detail[:80]))
                os.kill(os.getpid(), signal.SIGKILL)
            return str(rule.get("action"))
    return None


# ---------------------------------------------------------------------- mount namespace

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE = 1, 4096, 16384, 1 << 18
MNT_DETACH = 2


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def _mount(libc, src: Optional[str], dst: str, fstype: Optional[str], flags: int,
           data: Optional[str] = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           "mount %s on %s" % (src, dst))


def enter_device_root(root: str) -> None:
    """Private mount namespace whose ``/data``, ``/sdcard``, ``/system`` are ``root``'s.

    Must run while the process is single-threaded (namespaces are per thread).
    """
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    newroot = os.path.join(root, ".rootfs")
    os.makedirs(newroot, exist_ok=True)
    _mount(libc, "adbemu", newroot, "tmpfs", 0, "mode=0755")
    own = {"data", "sdcard", "system"}
    for name in sorted(os.listdir("/")):
        if name in own:
            continue
        src, dst = "/" + name, os.path.join(newroot, name)
        if os.path.islink(src):
            os.symlink(os.readlink(src), dst)
        elif os.path.isdir(src):
            os.mkdir(dst)
            _mount(libc, src, dst, None, MS_BIND | MS_REC)
        elif os.path.isfile(src):
            open(dst, "wb").close()
            _mount(libc, src, dst, None, MS_BIND)
    # The recursive bind of the top-level dir holding ``root`` copied our tmpfs into itself.
    nested = newroot + newroot
    if os.path.ismount(nested):
        _check(libc.umount2(nested.encode(), MNT_DETACH), "umount " + nested)
    for name in sorted(own):
        os.mkdir(os.path.join(newroot, name))
        _mount(libc, os.path.join(root, name), os.path.join(newroot, name), None, MS_BIND)
    gov_src = os.path.join(root, GOVERNOR_DIR)
    gov_dst = os.path.join(newroot, GOVERNOR_DIR)
    if os.path.isdir(gov_src) and os.path.isdir(gov_dst):
        _mount(libc, gov_src, gov_dst, None, MS_BIND)
    os.chroot(newroot)
    os.chdir("/")


# ---------------------------------------------------------------------- device tools

_TOOL_HEAD = "#!%s -I\nimport json, sys\nstate = json.load(open(%r))\nargs = sys.argv[1:]\n"

_GETPROP = """props = state["props"]
if not args:
    for k in sorted(props):
        print("[%s]: [%s]" % (k, props[k]))
else:
    print(props.get(args[0], args[1] if len(args) > 1 else ""))
"""

_DUMPSYS = """if args[:1] != ["battery"]:
    sys.stderr.write("Can't find service: %s\\n" % (args[0] if args else ""))
    sys.exit(1)
print("Current Battery Service state:")
for line in ("AC powered: false", "USB powered: true", "Wireless powered: false",
             "Max charging current: 500000", "Max charging voltage: 5000000",
             "Charge counter: 3000000", "status: 2", "health: 2", "present: true",
             "level: %d" % state.get("battery_level", 85), "scale: 100", "voltage: 4190",
             "temperature: %d" % round(float(state["battery_temp_c"]) * 10),
             "technology: Li-ion"):
    print("  " + line)
"""


def write_state(root: str, props: Dict[str, str], battery_temp_c: float) -> None:
    """(Re)write the file the device's getprop/dumpsys read; atomic, safe while running."""
    path = os.path.join(root, STATE_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"props": props, "battery_temp_c": battery_temp_c}, f)
    os.replace(tmp, path)


def prepare_device_dir(root: str, props: Dict[str, str], battery_temp_c: float,
                       governor: Optional[str]) -> None:
    """Create the per-device tree: data/local/tmp, sdcard, system/bin tools, governor file."""
    for d in ("data/local/tmp", "sdcard", "system/bin", "system/etc", GOVERNOR_DIR):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    write_state(root, props, battery_temp_c)
    state_in_device = "/" + STATE_FILE
    for name, body in (("getprop", _GETPROP), ("dumpsys", _DUMPSYS)):
        path = os.path.join(root, "system/bin", name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(_TOOL_HEAD % (sys.executable, state_in_device) + body)
        os.chmod(path, 0o755)
    sh = os.path.join(root, "system/bin/sh")
    if not os.path.lexists(sh):
        os.symlink("/bin/sh", sh)
    set_governor(root, governor)


def set_governor(root: str, governor: Optional[str]) -> None:
    """Write (None: remove) cpu0's cpufreq/scaling_governor as the device sees it."""
    path = os.path.join(root, GOVERNOR_DIR, "cpufreq", "scaling_governor")
    if governor is None:
        if os.path.exists(path):
            os.unlink(path)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(governor + "\n")


# ---------------------------------------------------------------------- transport, streams

class StreamClosed(Exception):
    pass


class Stream:
    """One adb stream (an OPENed service) on a transport."""

    def __init__(self, transport: "Transport", local_id: int, remote_id: int):
        self.t = transport
        self.local_id = local_id
        self.remote_id = remote_id
        self._cv = threading.Condition()
        self._inbox: Deque[bytes] = deque()
        self._pending = b""
        self._can_send = True
        self.closed = False            # either side closed it
        self._on_close: List[Callable[[], None]] = []

    # -- called by the transport's reader thread
    def _data(self, data: bytes) -> None:
        with self._cv:
            if self.closed:
                return
            self._inbox.append(data)
            self._cv.notify_all()

    def _okay(self) -> None:
        with self._cv:
            self._can_send = True
            self._cv.notify_all()

    def _peer_closed(self) -> None:
        with self._cv:
            if self.closed:
                return
            self.closed = True
            self._cv.notify_all()
            hooks = list(self._on_close)
        for hook in hooks:
            try:
                hook()
            except Exception as e:  # a hook must not kill the reader thread
                log("close hook failed: %r" % (e,))

    # -- used by services
    def on_close(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (once) when the host closes the stream or the connection drops."""
        with self._cv:
            if not self.closed:
                self._on_close.append(hook)
                return
        hook()

    def write(self, data: bytes) -> None:
        """WRTE ``data`` in chunks of the negotiated size, one unacknowledged at a time."""
        view = memoryview(data)
        while view:
            chunk = bytes(view[:self.t.max_payload])
            view = view[len(chunk):]
            with self._cv:
                while not self._can_send and not self.closed:
                    self._cv.wait()
                if self.closed:
                    raise StreamClosed()
                self._can_send = False
            self.t.send(A_WRTE, self.local_id, self.remote_id, chunk)

    def read_some(self) -> bytes:
        """Next received chunk (OKAY is sent as it is taken); b"" once closed."""
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        with self._cv:
            while not self._inbox and not self.closed:
                self._cv.wait()
            if not self._inbox:
                return b""
            data = self._inbox.popleft()
        self.t.send(A_OKAY, self.local_id, self.remote_id)
        return data

    def read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            data = self.read_some()
            if not data:
                raise StreamClosed()
            buf += data
        buf, self._pending = buf[:n], buf[n:] + self._pending
        return buf

    def close(self) -> None:
        """Close from the device side (CLSE to the host)."""
        with self._cv:
            if self.closed:
                return
            self.closed = True
            self._cv.notify_all()
        self.t.forget(self)
        self.t.send(A_CLSE, self.local_id, self.remote_id)


class Transport:
    """One TCP connection from the adb server."""

    def __init__(self, sock: socket.socket, device: "Device"):
        self.sock = sock
        self.device = device
        self.max_payload = MAX_PAYLOAD
        self.version = A_VERSION
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._streams: Dict[int, Stream] = {}
        self._next_id = 1
        self._dead = False

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        header = HEADER.pack(command, arg0, arg1, len(data), checksum(data),
                             command ^ 0xFFFFFFFF)
        with self._send_lock:
            if self._dead:
                return
            try:
                self.sock.sendall(header + data)
            except OSError:
                self._dead = True

    def forget(self, stream: Stream) -> None:
        with self._lock:
            self._streams.pop(stream.local_id, None)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError()
            buf += chunk
        return bytes(buf)

    def run(self) -> None:
        try:
            while True:
                cmd, arg0, arg1, length, check, magic = HEADER.unpack(self._recv_exact(24))
                if magic != cmd ^ 0xFFFFFFFF:
                    log("bad magic, dropping the connection")
                    return
                if length > MAX_PAYLOAD:
                    log("oversized packet (%d), dropping the connection" % length)
                    return
                data = self._recv_exact(length) if length else b""
                if self.version < A_VERSION and check != checksum(data):
                    log("bad checksum, dropping the connection")
                    return
                self._handle(cmd, arg0, arg1, data)
        except (EOFError, OSError):
            pass
        finally:
            with self._send_lock:
                self._dead = True
            with self._lock:
                streams = list(self._streams.values())
                self._streams.clear()
            for s in streams:
                s._peer_closed()
            try:
                self.sock.close()
            except OSError:
                pass

    def _handle(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.version = min(arg0, A_VERSION)
            self.max_payload = max(4096, min(arg1, MAX_PAYLOAD))
            if self.device.unauthorized:
                self.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
            else:
                self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, self.device.banner())
        elif cmd == A_AUTH and self.device.unauthorized:
            # A locked phone: every signature is rejected with a new token; an offered public
            # key waits for a tap on "Allow" that never comes.
            if arg0 == AUTH_SIGNATURE:
                self.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
        elif cmd == A_OPEN:
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            with self._lock:
                local_id = self._next_id
                self._next_id += 1
                stream = Stream(self, local_id, arg0)
                self._streams[local_id] = stream
            threading.Thread(target=self.device.serve, args=(stream, service),
                             name="svc-%d" % local_id, daemon=True).start()
        elif cmd in (A_OKAY, A_WRTE, A_CLSE):
            with self._lock:
                stream = self._streams.get(arg1)
            if stream is None or (stream.remote_id != arg0 and cmd != A_CLSE):
                if cmd == A_WRTE:  # data for a stream we closed: tell the host again
                    self.send(A_CLSE, arg1, arg0)
                return
            if cmd == A_OKAY:
                stream._okay()
            elif cmd == A_WRTE:
                stream._data(data)
            else:
                self.forget(stream)
                stream._peer_closed()
        # AUTH / STLS / SYNC from a host are otherwise ignored: no keys asked for, no TLS.


# ---------------------------------------------------------------------- the device

def _child_env(term: Optional[str]) -> Dict[str, str]:
    env = {"PATH": DEVICE_PATH, "HOME": "/", "TMPDIR": "/data/local/tmp",
           "SHELL": "/system/bin/sh", "USER": "root", "LOGNAME": "root",
           "HOSTNAME": "localhost", "ANDROID_ROOT": "/system", "ANDROID_DATA": "/data",
           "EXTERNAL_STORAGE": "/sdcard", "LANG": "C.UTF-8"}
    if term:
        env["TERM"] = term
    return env


def _sh_argv(command: str) -> List[str]:
    return ["/system/bin/sh", "-c", command] if command else ["-/system/bin/sh"]


def _set_ctty() -> None:
    """In the child (after setsid): make stdin, a pty slave, the controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _exit_code(returncode: int) -> int:
    return (0x80 | -returncode) if returncode < 0 else returncode & 0xFF


class Device:
    def __init__(self, serial: str, props: Dict[str, str], features: Tuple[str, ...],
                 unauthorized: bool = False):
        self.serial = serial
        self.unauthorized = unauthorized
        self.props = props
        self.features = features
        self._lock = threading.Lock()
        self.children: Dict[int, subprocess.Popen] = {}

    def banner(self) -> bytes:
        keys = ("ro.product.name", "ro.product.model", "ro.product.device")
        parts = ["%s=%s" % (k, self.props.get(k, "")) for k in keys]
        parts.append("features=" + ",".join(self.features))
        return ("device::" + ";".join(parts) + ";").encode()

    # -- dispatch
    def serve(self, stream: Stream, service: str) -> None:
        try:
            if service.startswith("shell") and ":" in service:
                opts, _, command = service.partition(":")
                args = opts.split(",")[1:] if opts != "shell" else []
                if opts.split(",")[0] != "shell":
                    return self._refuse(stream)
                if record("shell,v2" if "v2" in args else "shell", command) == "refuse":
                    return self._refuse(stream)
                self._shell(stream, command, args)
            elif service.startswith("exec:"):
                if record("exec", service[5:]) == "refuse":
                    return self._refuse(stream)
                self._shell(stream, service[5:], ["raw"], exec_service=True)
            elif service == "sync:":
                if record("sync", "") == "refuse":
                    return self._refuse(stream)
                stream.t.send(A_OKAY, stream.local_id, stream.remote_id)
                SyncService(stream).run()
                stream.close()
            else:
                self._refuse(stream)
        except StreamClosed:
            stream.close()
        except Exception as e:
            log("service %r failed: %r" % (service, e))
            stream.close()

    def _refuse(self, stream: Stream) -> None:
        stream.t.forget(stream)
        stream.closed = True
        stream.t.send(A_CLSE, 0, stream.remote_id)

    # -- shell
    def _shell(self, stream: Stream, command: str, args: List[str],
               exec_service: bool = False) -> None:
        v2 = "v2" in args and not exec_service
        term = next((a[5:] for a in args if a.startswith("TERM=")), None)
        if "raw" in args:
            use_pty = False
        elif "pty" in args:
            use_pty = True
        else:
            use_pty = not command
        stream.t.send(A_OKAY, stream.local_id, stream.remote_id)
        if v2:
            ShellV2(self, stream, command, use_pty, term).run()
        else:
            # No protocol: adbd runs even "raw" on a pty, in raw mode (shell_service.cpp).
            ShellV1(self, stream, command, raw=not use_pty, term=term).run()

    def spawn(self, command: str, stdin, stdout, stderr, term: Optional[str],
              ctty: bool) -> subprocess.Popen:
        proc = subprocess.Popen(
            _sh_argv(command), executable="/system/bin/sh", stdin=stdin, stdout=stdout,
            stderr=stderr, cwd="/", env=_child_env(term), start_new_session=True,
            preexec_fn=_set_ctty if ctty else None, close_fds=True,
            restore_signals=True)
        with self._lock:
            self.children[proc.pid] = proc
        return proc

    def reaped(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self.children.pop(proc.pid, None)


class _Wake:
    """A pipe to wake a select() loop from another thread."""

    def __init__(self):
        self.r, self.w = os.pipe()
        self.set = False

    def fire(self) -> None:
        self.set = True
        try:
            os.write(self.w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


class _Shared:
    """fds used by an output loop and an input thread, closed once both are done with them
    (so the input thread never writes to a closed -- maybe reused -- fd number)."""

    def __init__(self, close: Callable[[], None], users: int = 2):
        self._close, self._users, self._lock = close, users, threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last:
            self._close()


def _write_all(fd: int, data: bytes, wake: _Wake) -> bool:
    """Write to a non-blocking fd; give up (False) when the stream closes meanwhile."""
    view = memoryview(data)
    while view:
        if wake.set:
            return False
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            select.select([], [fd], [], 0.2)
        except OSError:
            return False
    return True


class ShellV1:
    """``shell:cmd`` / ``exec:cmd``: a pty (raw mode for commands), no protocol."""

    def __init__(self, device: Device, stream: Stream, command: str, raw: bool,
                 term: Optional[str]):
        self.d, self.s, self.command, self.raw, self.term = device, stream, command, raw, term

    def run(self) -> None:
        master, slave = os.openpty()
        if self.raw:
            tty.setraw(slave)
        try:
            proc = self.d.spawn(self.command, slave, slave, slave, self.term or "dumb",
                                ctty=True)
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        wake = _Wake()
        shared = _Shared(lambda: os.close(master))
        self.s.on_close(wake.fire)
        threading.Thread(target=self._input, args=(master, wake, shared), daemon=True).start()
        try:
            while not wake.set:
                ready, _, _ = select.select([master, wake.r], [], [])
                if wake.r in ready:
                    break
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    continue
                except OSError:   # EIO: every slave fd is closed
                    data = b""
                if not data:
                    break
                try:
                    self.s.write(data)
                except StreamClosed:
                    break
        finally:
            # Host gone: closing the master hangs the terminal up (the kernel's SIGHUP).
            shared.release()
            wake.close()
            threading.Thread(target=self._reap, args=(proc,), daemon=True).start()
            self.s.close()

    def _input(self, master: int, wake: _Wake, shared: _Shared) -> None:
        try:
            while not wake.set:
                data = self.s.read_some()
                if not data or not _write_all(master, data, wake):
                    return
        finally:
            shared.release()

    def _reap(self, proc: subprocess.Popen) -> None:
        proc.wait()
        self.d.reaped(proc)


class ShellV2:
    """``shell,v2[,raw|,pty]:cmd``: the shell protocol."""

    def __init__(self, device: Device, stream: Stream, command: str, use_pty: bool,
                 term: Optional[str]):
        self.d, self.s, self.command, self.pty, self.term = device, stream, command, use_pty, term

    def run(self) -> None:
        if self.pty:
            master, slave = os.openpty()
            try:
                proc = self.d.spawn(self.command, slave, slave, slave, self.term, ctty=True)
            finally:
                os.close(slave)
            outs = {master: SHELL_STDOUT}
            stdin_fd = master
        else:
            inout_p, inout_c = socket.socketpair()
            err_p, err_c = socket.socketpair()
            try:
                proc = self.d.spawn(self.command, inout_c.fileno(), inout_c.fileno(),
                                    err_c.fileno(), self.term, ctty=False)
            finally:
                inout_c.close()
                err_c.close()
            self._sockets = (inout_p, err_p)
            outs = {inout_p.fileno(): SHELL_STDOUT, err_p.fileno(): SHELL_STDERR}
            stdin_fd = inout_p.fileno()
        self.proc = proc
        for fd in outs:
            os.set_blocking(fd, False)
        wake = _Wake()
        shared = _Shared(lambda: self._close_fds(outs))
        self.s.on_close(wake.fire)
        threading.Thread(target=self._input, args=(stdin_fd, wake, shared), daemon=True).start()
        host_gone = False
        try:
            live = dict(outs)
            while live:
                ready, _, _ = select.select(list(live) + [wake.r], [], [])
                if wake.r in ready:
                    host_gone = True
                    break
                for fd in ready:
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        live.pop(fd)
                        continue
                    self.s.write(bytes([live[fd]]) + struct.pack("<I", len(data)) + data)
        except StreamClosed:
            host_gone = True
        if host_gone:
            # adbd: "protocol FD died, sending SIGHUP" -- to the shell's pid, nothing else.
            try:
                os.kill(proc.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass
            shared.release()
            wake.close()
            threading.Thread(target=self._reap, daemon=True).start()
            self.s.close()
            return
        shared.release()
        code = _exit_code(proc.wait())
        self.d.reaped(proc)
        try:
            self.s.write(bytes([SHELL_EXIT]) + struct.pack("<I", 1) + bytes([code]))
        except StreamClosed:
            pass
        wake.fire()
        wake.close()
        self.s.close()

    def _close_fds(self, outs: Dict[int, int]) -> None:
        if self.pty:
            for fd in outs:
                try:
                    os.close(fd)
                except OSError:
                    pass
        else:
            for sock in self._sockets:
                sock.close()

    def _input(self, stdin_fd: int, wake: _Wake, shared: _Shared) -> None:
        buf = b""
        try:
            while not wake.set:
                while len(buf) >= 5:
                    pid, n = buf[0], struct.unpack("<I", buf[1:5])[0]
                    if len(buf) < 5 + n:
                        break
                    data, buf = buf[5:5 + n], buf[5 + n:]
                    if pid == SHELL_STDIN:
                        if not _write_all(stdin_fd, data, wake):
                            return
                    elif pid == SHELL_CLOSE_STDIN and not self.pty:
                        self._sockets[0].shutdown(socket.SHUT_WR)
                    elif pid == SHELL_WINSIZE and self.pty:
                        try:
                            rows, rest = data.decode().split("x", 1)
                            cols, rest = rest.split(",", 1)
                            xp, yp = rest.rstrip("\0").split("x", 1)
                            fcntl.ioctl(stdin_fd, termios.TIOCSWINSZ,
                                        struct.pack("HHHH", int(rows), int(cols), int(xp), int(yp)))
                        except (ValueError, OSError):
                            pass
                more = self.s.read_some()
                if not more:
                    return
                buf += more
        except OSError:
            return
        finally:
            shared.release()

    def _reap(self) -> None:
        self.proc.wait()
        self.d.reaped(self.proc)


# ---------------------------------------------------------------------- sync

def _parse_mode(text: str) -> int:
    """strtoul(text, 0): 0x.. hex, 0.. octal, else decimal."""
    t = text.strip()
    if t.lower().startswith("0x"):
        return int(t[2:], 16)
    if len(t) > 1 and t.startswith("0"):
        return int(t[1:], 8)
    return int(t or "0")


class SyncService:
    def __init__(self, stream: Stream):
        self.s = stream

    def _fail(self, message: str) -> None:
        raw = message.encode()
        self.s.write(b"FAIL" + struct.pack("<I", len(raw)) + raw)

    def run(self) -> None:
        while True:
            head = self.s.read_exact(8)
            rid, n = head[:4], struct.unpack("<I", head[4:])[0]
            if rid == b"QUIT":
                return
            if n > SYNC_PATH_MAX:
                self._fail("path too long")
                return
            path = self.s.read_exact(n).decode("utf-8", "surrogateescape") if n else ""
            if record(rid.decode("latin-1"), path) == "refuse":
                self._fail("refused by the test")
                return
            if rid == b"STAT":
                self._stat_v1(path)
            elif rid in (b"STA2", b"LST2"):
                self._stat_v2(rid, path)
            elif rid == b"LIST":
                self._list(path, v2=False)
            elif rid == b"LIS2":
                self._list(path, v2=True)
            elif rid == b"SEND":
                if not self._send(path):
                    return
            elif rid == b"RECV":
                if not self._recv(path):
                    return
            else:
                self._fail("unknown command %r" % rid.decode("latin-1"))
                return

    def _stat_v1(self, path: str) -> None:
        try:
            st = os.lstat(path)
            body = struct.pack("<III", st.st_mode, st.st_size & 0xFFFFFFFF,
                               int(st.st_mtime) & 0xFFFFFFFF)
        except OSError:
            body = struct.pack("<III", 0, 0, 0)
        self.s.write(b"STAT" + body)

    @staticmethod
    def _v2_fields(st: Optional[os.stat_result], err: int) -> bytes:
        if st is None:
            return struct.pack("<IQQIIIIQqqq", err, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return struct.pack("<IQQIIIIQqqq", 0, st.st_dev, st.st_ino, st.st_mode, st.st_nlink,
                           st.st_uid, st.st_gid, st.st_size, int(st.st_atime),
                           int(st.st_mtime), int(st.st_ctime))

    def _stat_v2(self, rid: bytes, path: str) -> None:
        try:
            st = os.stat(path) if rid == b"STA2" else os.lstat(path)
            self.s.write(rid + self._v2_fields(st, 0))
        except OSError as e:
            self.s.write(rid + self._v2_fields(None, e.errno or errno.EIO))

    def _list(self, path: str, v2: bool) -> None:
        try:
            names = [".", ".."] + os.listdir(path)
        except OSError:
            names = []
        out = []
        for name in names:
            try:
                st = os.lstat(os.path.join(path, name))
            except OSError:
                continue
            raw = name.encode("utf-8", "surrogateescape")
            if v2:
                out.append(b"DNT2" + self._v2_fields(st, 0) + struct.pack("<I", len(raw)) + raw)
            else:
                out.append(b"DENT" + struct.pack("<IIII", st.st_mode, st.st_size & 0xFFFFFFFF,
                                                 int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw)
            if sum(map(len, out)) >= SYNC_DATA_MAX:
                self.s.write(b"".join(out))
                out = []
        done = b"DONE" + (b"\0" * (len(self._v2_fields(None, 0)) + 4) if v2 else b"\0" * 16)
        self.s.write(b"".join(out) + done)

    def _send(self, spec: str) -> bool:
        path, comma, mode_text = spec.rpartition(",")
        if not comma:
            path, mode_text = spec, "0644"
        try:
            mode = _parse_mode(mode_text)
        except ValueError:
            self._fail("bad mode %r" % mode_text)
            return False
        error = None
        fd = -1
        is_link = stat.S_ISLNK(mode)
        try:
            parent = os.path.dirname(path)
            if parent:
                os.makedirs(parent, exist_ok=True)   # fixed_push_mkdir
            try:
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode) or (stat.S_ISLNK(st.st_mode) and not is_link):
                    os.unlink(path)
            except FileNotFoundError:
                pass
            if not is_link:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             mode & 0o777)
                os.fchmod(fd, mode & 0o7777)
        except OSError as e:
            error = "couldn't create file: %s" % (e.strerror or e)
            self._fail(error)
        link_target = b""
        try:
            while True:
                head = self.s.read_exact(8)
                rid, n = head[:4], struct.unpack("<I", head[4:])[0]
                if rid == b"DONE":
                    mtime = n
                    break
                if rid != b"DATA" or n > SYNC_DATA_MAX:
                    if error is None:
                        self._fail("invalid data message")
                    return False
                data = self.s.read_exact(n)
                if error is not None:
                    continue
                if is_link:
                    link_target += data
                    continue
                view = memoryview(data)
                while view:
                    try:
                        view = view[os.write(fd, view):]
                    except OSError as e:
                        error = "write failed: %s" % e.strerror
                        self._fail(error)
                        break
        finally:
            if fd >= 0:
                os.close(fd)
        if error is not None:
            try:
                os.unlink(path)
            except OSError:
                pass
            return False
        try:
            if is_link:
                os.symlink(link_target.rstrip(b"\0").decode("utf-8", "surrogateescape"), path)
            os.utime(path, (mtime, mtime), follow_symlinks=not is_link)
        except OSError as e:
            self._fail("%s: %s" % (path, e.strerror))
            return False
        self.s.write(b"OKAY" + b"\0" * 4)
        return True

    def _recv(self, path: str) -> bool:
        try:
            f = open(path, "rb")
        except OSError as e:
            self._fail(e.strerror or str(e))
            return True
        with f:
            while True:
                try:
                    chunk = f.read(SYNC_DATA_MAX)
                except OSError as e:
                    self._fail(e.strerror or str(e))
                    return True
                if not chunk:
                    break
                self.s.write(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        self.s.write(b"DONE" + b"\0" * 4)
        return True


# ---------------------------------------------------------------------- main

def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.emulator.adbd", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free)")
    ap.add_argument("--root", required=True, help="per-device host dir (data/, sdcard/, system/)")
    ap.add_argument("--serial", required=True, help="ro.serialno")
    ap.add_argument("--prop", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--battery-temp", type=float, default=30.0, help="degrees Celsius")
    ap.add_argument("--governor", default="schedutil", help="cpu0 governor ('' for none)")
    ap.add_argument("--features", default=",".join(FEATURES))
    ap.add_argument("--ready-file", help="write the listening port here once listening")
    ap.add_argument("--unauthorized", action="store_true",
                    help="answer CNXN with AUTH and reject every key (a phone whose user never allows it)")
    ap.add_argument("--request-log", help="append one JSON line per request here (a host path)")
    ap.add_argument("--faults", help="a JSON list of fault rules, re-read when it changes (see record())")
    ap.add_argument("--no-namespace", action="store_true",
                    help="do not build the private root (paths are then the host's)")
    a = ap.parse_args(argv)

    root = os.path.abspath(a.root)
    props = default_props(a.serial)
    for item in a.prop:
        key, eq, value = item.partition("=")
        if not eq:
            ap.error("--prop wants KEY=VALUE, got %r" % item)
        props[key] = value
    prepare_device_dir(root, props, a.battery_temp, a.governor or None)
    global _requests, _faults_path
    if a.request_log:
        _requests = open(a.request_log, "a", encoding="utf-8")
    if a.faults:
        _faults_path = os.path.abspath(a.faults)  # a host path, also visible inside the namespace
    if not a.no_namespace:
        enter_device_root(root)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # adbd starts from init with default dispositions: a signal the host ignored (nohup, a CI
    # runner) must not reach the device's shells ignored, where sh could not even trap it.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
        if signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.SIG_DFL)

    device = Device(a.serial, props, tuple(f for f in a.features.split(",") if f), a.unauthorized)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    log("serial %s listening on 127.0.0.1:%d, root %s" % (a.serial, port, root))
    if a.ready_file:
        # The ready file is written from inside the namespace: use a path outside /data etc.
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.ready_file)
    while True:
        conn, _ = lsock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Transport(conn, device).run, name="transport",
                         daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
