"""A loopback adb server for tests: emulated phones behind adb's real host protocol.

Kept only for what the real adb server cannot show. Phone tests run through the real server
(adbutils' adb 36 binary) and device-side emulators (``tests/emulator/``): push/pull, shell v1
and v2, sharding, unplugging (the phone's process dies, ``Phone.die_on`` at an exact request),
the real server's ``offline``/``unauthorized`` states and its wording, refused services. What
still uses this module, and why:

* a phone that *leaves the listing* between ``adb devices`` and a query on it
  (``test_list_devices_marks_device_gone_mid_query_fake_server``): the real server keeps a
  TCP-connected phone that it loses listed as ``offline`` (it retries the connection) until
  ``adb disconnect``; only a USB phone leaves the listing when unplugged, and there is no USB
  bus here;
* ``FAIL`` replies with an arbitrary message (``fail_on``): the real server reports a service
  the phone refuses as ``closed`` and nothing else (that case runs on the real server,
  ``Phone.refuse_on``);
* its own tests (``test_device_adbserver.py``: the path rewriting, ``vanish``/``restore``,
  ``track-devices`` ``absent`` events, ``stop()`` cleaning up);
* ``bench/phone_overhead.py --harness python``, so that figures stay comparable with the
  earlier runs on that bench (docs/performance.md); its default is the real server.

The real ``adbutils.AdbClient(host="127.0.0.1", port=server.port)`` talks to it unchanged.
It speaks the smart-socket *host protocol* (4-hex-digit length-prefixed requests, ``OKAY``
/ ``FAIL`` + length-prefixed message replies) and, after a transport is selected, the device
services adbutils uses:

host services
    ``host:version`` (41), ``host:devices``, ``host:devices-l``, ``host:track-devices``,
    ``host:features``, ``host:transport:<serial>``, ``host:tport:serial:<serial>`` (OKAY +
    8-byte transport id; adbutils sends it because the version is >= 41),
    ``host:transport-id:<n>``, ``host:transport-any``, ``host-serial:<serial>:<query>`` and
    ``host-transport-id:<n>:<query>`` with query ``get-state``, ``get-serialno``,
    ``get-devpath`` or ``features``.
device services
    ``shell:<cmd>`` (v1: merged stdout+stderr, then close), ``shell,v2[,raw]:<cmd>`` (packets
    1=stdout, 2=stderr, 3=exit), ``exec:<cmd>`` (like v1), and ``sync:`` with STAT, LIST,
    SEND (``path,mode``; DATA chunks; DONE mtime -> OKAY), RECV (DATA/DONE or FAIL), QUIT.

How shell commands run (the emulation is real, not scripted)
    Each device has a sandbox directory ``root`` on the host. Device paths map to host paths by
    prefixing: ``/data/local/tmp/x`` <-> ``<root>/data/local/tmp/x``. A shell command is run by
    the host's ``/bin/sh -c`` with cwd ``<root>`` (the device's ``/``) after a textual rewrite:
    every absolute path that starts a word (after whitespace, a quote, ``= : ; | & ( < >`` or a
    backquote) and whose first component is one of ``DEVICE_TOP_DIRS`` (``/data``, ``/sdcard``,
    ``/sys``, ``/system``, ``/vendor``, ...) gets ``<root>`` in front. ``/dev`` and ``/proc``
    are *not* rewritten, so ``/dev/null`` works. Output going back to the client has
    ``<root>`` turned back into ``/``, so ``md5sum``/``find``/``pwd`` print device paths.

    ``<root>/system/bin`` comes first on ``PATH`` and holds small emulated tools (shell
    wrappers that run this file with ``--tool``): ``getprop`` (``[key]: [value]`` listing or one
    value), ``dumpsys battery`` (temperature in tenths of a degree, like Android), ``md5sum``
    and ``sh``. The ``sh`` tool applies the same path rewrite to a script file or ``-c`` string
    before handing it to ``/bin/sh``, so a pushed ``snpe-bench_cmds.sh`` full of device paths
    runs as ``sh /data/local/tmp/.../snpe-bench_cmds.sh`` just as on a phone. Everything else
    (``cat``, ``find``, ``mkdir``, ``rm``, ``chmod``, ``ls``) is the host's.

    Limits: the kernel does not rewrite ``#!`` lines, so a pushed script must be run through
    ``sh <script>`` when its first line is ``#!/system/bin/sh``; directly executed fakes should
    use a host interpreter (``#!/bin/sh`` or ``#!<sys.executable>``). Paths built at run time
    from pieces (``"/da""ta"``) and paths inside data files are not rewritten. Commands run as
    the test user, confined by convention only: this is a test fixture, not a sandbox.

Faults
    ``server.vanish(serial)`` drops a device from the listings, cuts its open connections and
    kills its running commands; later transport requests fail with ``device '<serial>' not
    found`` like adb's. ``device.vanish_on(text)`` / ``device.vanish_after(n)`` trigger that
    when a matching shell command or sync request arrives; ``device.fail_on(text, message)``
    answers a matching request with ``FAIL``. ``server.restore(serial)`` plugs it back in.

Every request is recorded: ``server.count(serial, "SEND")`` and ``server.requests(...)``.
Use it as a context manager; ``stop()`` always closes sockets and kills processes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import re
import selectors
import shlex
import signal
import socket
import socketserver
import stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

ADB_SERVER_VERSION = 41
DEVICE_TOP_DIRS = ("data", "sdcard", "storage", "sys", "system", "vendor", "mnt", "odm",
                   "product", "apex", "cache", "config")
HOST_FEATURES = ("shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,abb,"
                 "fixed_push_symlink_timestamp,abb_exec,remount_shell,track_app,"
                 "sendrecv_v2,sendrecv_v2_brotli,sendrecv_v2_lz4,sendrecv_v2_zstd,"
                 "sendrecv_v2_dry_run_send,openscreen_mdns,delayed_ack")
DEVICE_FEATURES = ("shell_v2,cmd,stat_v2,ls_v2,fixed_push_mkdir,apex,abb,"
                   "fixed_push_symlink_timestamp,abb_exec,remount_shell,track_app,"
                   "sendrecv_v2,sendrecv_v2_brotli,sendrecv_v2_lz4,sendrecv_v2_zstd,"
                   "sendrecv_v2_dry_run_send")
SYNC_MAX_CHUNK = 64 * 1024
TOOLS = ("getprop", "dumpsys", "md5sum", "sh")
GOVERNOR_FILE = "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"


def default_props(serial: str) -> Dict[str, str]:
    """getprop values of a plausible Snapdragon 8 Gen 2 phone."""
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


# --------------------------------------------------------------------------- path rewriting

_PATH_RE = re.compile(r"(?<![^\s'\"=:;|&(<>`])/(?:%s)(?=/|$|[\s'\"`;|&)<>:,])"
                      % "|".join(DEVICE_TOP_DIRS))


def rewrite_command(text: str, root: str) -> str:
    """Put ``root`` in front of every device absolute path that starts a word in ``text``."""
    root = root.rstrip("/")

    def sub(m: "re.Match[str]") -> str:
        if text.startswith(root, m.start()):  # already a host path (root under /data, /mnt...)
            return m.group(0)
        return root + m.group(0)

    return _PATH_RE.sub(sub, text)


class _Unrewriter:
    """Streaming ``<root>/x -> /x`` and ``<root> -> /`` over output chunks."""

    def __init__(self, root: str):
        self.root = root.rstrip("/").encode()
        self.held = b""

    def _swap(self, data: bytes) -> bytes:
        return data.replace(self.root + b"/", b"/").replace(self.root, b"/")

    def feed(self, data: bytes) -> bytes:
        data = self.held + data
        keep = 0
        for k in range(min(len(self.root), len(data)), 0, -1):
            if data.endswith(self.root[:k]):
                keep = k
                break
        self.held = data[len(data) - keep:] if keep else b""
        return self._swap(data[:len(data) - keep])

    def flush(self) -> bytes:
        data, self.held = self.held, b""
        return self._swap(data)


def device_to_host(root: Path, device_path: str) -> Path:
    """Map an absolute device path into the sandbox; ``..`` cannot climb above ``root``."""
    norm = posixpath.normpath("/" + device_path.lstrip("/"))
    norm = norm.lstrip("/")
    return root / norm if norm and norm != "." else root


# --------------------------------------------------------------------------- devices

class _Closed(Exception):
    """The peer closed the connection (or it was cut)."""


class EmulatedDevice:
    """One phone: serial, getprop values, battery temperature, governor, sandbox root."""

    def __init__(self, server: "AdbServer", serial: str, root: Path, state_file: Path,
                 props: Dict[str, str], battery_temp_c: float, governor: Optional[str],
                 state: str, transport_id: int):
        self.server = server
        self.serial = serial
        self.root = root
        self.state_file = state_file
        self.props = props
        self.battery_temp_c = battery_temp_c
        self.state = state
        self.transport_id = transport_id
        self.present = True
        self.features = DEVICE_FEATURES  # drop "shell_v2" to force adbutils' v1 shell path
        self._triggers: List[Tuple[Callable[[str, str], bool], str, str]] = []
        self._counts: Dict[str, int] = {}
        for d in ("data/local/tmp", "sdcard", "system/bin", "sys/class/thermal", "vendor/lib64"):
            (root / d).mkdir(parents=True, exist_ok=True)
        for tool in TOOLS:
            path = root / "system" / "bin" / tool
            path.write_text("#!/bin/sh\nexec %s %s --tool %s \"$@\"\n" % (
                shlex.quote(sys.executable), shlex.quote(str(Path(__file__).resolve())), tool))
            path.chmod(0o755)
        self.set_governor(governor)
        self._write_state()

    # -- state visible to the emulated tools
    def _write_state(self) -> None:
        doc = {"serial": self.serial, "props": self.props, "battery_temp_c": self.battery_temp_c}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.state_file)

    def set_battery_temp(self, celsius: float) -> None:
        self.battery_temp_c = celsius
        self._write_state()

    def set_prop(self, key: str, value: str) -> None:
        self.props[key] = value
        self._write_state()

    def set_governor(self, governor: Optional[str]) -> None:
        """Write (or with None remove) cpu0's scaling_governor file in the sandbox."""
        path = self.root / GOVERNOR_FILE
        if governor is None:
            if path.exists():
                path.unlink()
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(governor + "\n")

    def host_path(self, device_path: str) -> Path:
        return device_to_host(self.root, device_path)

    # -- fault injection
    def vanish_on(self, text: str) -> None:
        """Vanish when a shell command or sync path containing ``text`` arrives."""
        self._triggers.append((lambda kind, detail: text in detail, "vanish", ""))

    def vanish_after(self, n: int, kind: str = "shell") -> None:
        """Serve ``n`` requests of ``kind`` ("shell", "SEND", ...), vanish on the next one."""
        self._triggers.append((lambda k, detail: k == kind and self._counts.get(kind, 0) > n,
                               "vanish", ""))

    def fail_on(self, text: str, message: str = "closed") -> None:
        """Answer a matching shell command / sync request with ``FAIL <message>``."""
        self._triggers.append((lambda kind, detail: text in detail, "fail", message))

    def _note(self, kind: str, detail: str) -> Optional[Tuple[str, str]]:
        """Count a request; return the first triggered fault ``(action, message)``."""
        self._counts[kind] = self._counts.get(kind, 0) + 1
        for pred, action, message in self._triggers:
            if pred(kind, detail):
                return action, message
        return None

    def shell_env(self) -> Dict[str, str]:
        root = str(self.root)
        return {
            "PATH": "%s/system/bin:%s" % (root, os.environ.get("PATH", "/usr/bin:/bin")),
            "HOME": root,
            "TMPDIR": root + "/data/local/tmp",
            "LANG": "C.UTF-8",
            "ANDROID_ROOT": root + "/system",
            "ADBEMU_ROOT": root,
            "ADBEMU_STATE": str(self.state_file),
        }


# --------------------------------------------------------------------------- server

class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class AdbServer:
    """The loopback adb server; start() it (or use ``with``), then ``add_device(...)``."""

    def __init__(self, workdir, host: str = "127.0.0.1", port: int = 0,
                 max_shell_seconds: float = 60.0, io_timeout: float = 30.0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the test adb server listens on loopback only")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = "127.0.0.1"
        self._want_port = port
        self.max_shell_seconds = max_shell_seconds
        self.io_timeout = io_timeout
        self.devices: Dict[str, EmulatedDevice] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._log: List[Tuple[str, str, str]] = []
        self._socks: Dict[socket.socket, Optional[str]] = {}
        self._procs: Dict[subprocess.Popen, str] = {}
        self._handlers = 0
        self._next_tid = 1
        self._stopping = False
        self._tcp: Optional[_TCPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle
    def start(self) -> "AdbServer":
        if self._tcp is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"adb": self})
        self._tcp = _TCPServer((self.host, self._want_port), handler)
        self._thread = threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="adbserver", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._tcp is None:
            raise RuntimeError("server not started")
        return self._tcp.server_address[1]

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._changed.notify_all()
        if self._tcp is not None:
            self._tcp.shutdown()
            self._tcp.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
        with self._lock:
            socks = list(self._socks)
            procs = list(self._procs)
        for s in socks:
            _cut(s)
        for p in procs:
            _kill(p)
        deadline = time.monotonic() + 5
        with self._lock:
            while self._handlers and time.monotonic() < deadline:
                self._changed.wait(0.05)
        self._tcp = None

    def __enter__(self) -> "AdbServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client(self, socket_timeout: float = 10.0):
        """A real ``adbutils.AdbClient`` pointed at this server."""
        import adbutils
        return adbutils.AdbClient(host=self.host, port=self.port, socket_timeout=socket_timeout)

    # -- devices
    def add_device(self, serial: str, *, props: Optional[Dict[str, str]] = None,
                   battery_temp_c: float = 30.0, governor: Optional[str] = "schedutil",
                   state: str = "device", root=None) -> EmulatedDevice:
        """Register a phone; ``props`` override/extend ``default_props(serial)``."""
        base = self.workdir / serial
        base.mkdir(parents=True, exist_ok=True)
        root_path = Path(root) if root is not None else base / "root"
        root_path.mkdir(parents=True, exist_ok=True)
        all_props = default_props(serial)
        all_props.update(props or {})
        with self._lock:
            tid = self._next_tid
            self._next_tid += 1
            dev = EmulatedDevice(self, serial, root_path.resolve(), base / "state.json", all_props,
                                 battery_temp_c, governor, state, tid)
            self.devices[serial] = dev
            self._changed.notify_all()
        return dev

    def vanish(self, serial: str) -> None:
        """Unplug: drop from listings, cut its connections, kill its commands."""
        with self._lock:
            dev = self.devices[serial]
            dev.present = False
            socks = [s for s, ser in self._socks.items() if ser == serial]
            procs = [p for p, ser in self._procs.items() if ser == serial]
            self._changed.notify_all()
        for p in procs:
            _kill(p)
        for s in socks:
            _cut(s)

    def restore(self, serial: str) -> None:
        """Plug a vanished device back in."""
        with self._lock:
            self.devices[serial].present = True
            self._changed.notify_all()

    def listed(self) -> List[EmulatedDevice]:
        with self._lock:
            return [d for d in self.devices.values() if d.present]

    # -- request log
    def _record(self, serial: str, kind: str, detail: str) -> None:
        with self._lock:
            self._log.append((serial, kind, detail))

    def requests(self, serial: Optional[str] = None, kind: Optional[str] = None
                 ) -> List[Tuple[str, str, str]]:
        """Recorded ``(serial, kind, detail)``; kind is "shell", "shell,v2", or a sync id."""
        with self._lock:
            return [r for r in self._log
                    if (serial is None or r[0] == serial) and (kind is None or r[1] == kind)]

    def count(self, serial: Optional[str] = None, kind: Optional[str] = None) -> int:
        return len(self.requests(serial, kind))

    # -- bookkeeping used by handlers
    def _enter(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping:
                return False
            self._socks[sock] = None
            self._handlers += 1
            return True

    def _leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.pop(sock, None)
            self._handlers -= 1
            self._changed.notify_all()

    def _bind(self, sock: socket.socket, serial: str) -> None:
        with self._lock:
            self._socks[sock] = serial

    def _add_proc(self, proc: subprocess.Popen, serial: str) -> None:
        with self._lock:
            self._procs[proc] = serial

    def _drop_proc(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._procs.pop(proc, None)

    def _devices_text(self, long: bool) -> str:
        lines = []
        for d in self.listed():
            if long:
                model = d.props.get("ro.product.model", "").replace(" ", "_")
                lines.append("%-22s %s product:%s model:%s device:%s transport_id:%d" % (
                    d.serial, d.state, d.props.get("ro.product.name", ""), model,
                    d.props.get("ro.product.device", ""), d.transport_id))
            else:
                lines.append("%s\t%s" % (d.serial, d.state))
        return "".join(line + "\n" for line in lines)

    def _lookup(self, serial: Optional[str] = None, tid: Optional[int] = None
                ) -> Tuple[Optional[EmulatedDevice], str]:
        """A usable device, or None and adb's error text."""
        listed = self.listed()
        if serial is not None:
            found = [d for d in listed if d.serial == serial]
            what = "device '%s' not found" % serial
        elif tid is not None:
            found = [d for d in listed if d.transport_id == tid]
            what = "no device with transport id '%d'" % tid
        else:
            found = listed
            if len(found) > 1:
                return None, "more than one device/emulator"
            what = "no devices/emulators found"
        if not found:
            return None, what
        dev = found[0]
        if dev.state == "unauthorized":
            return None, ("device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
                          "Try 'adb kill-server' if that seems wrong.\n"
                          "Otherwise check for a confirmation dialog on your device.")
        if dev.state != "device":
            return None, "device %s" % dev.state
        return dev, ""


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- protocol handler

_QUERIES = ("get-state", "get-serialno", "get-devpath", "features")


class _Handler(socketserver.BaseRequestHandler):
    adb: AdbServer  # set on the bound subclass

    # -- socket helpers
    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.request.recv(n - len(buf))
            except OSError:
                chunk = b""
            if not chunk:
                raise _Closed()
            buf += chunk
        return buf

    def _send(self, data: bytes) -> None:
        try:
            self.request.sendall(data)
        except OSError:
            raise _Closed() from None

    def _okay(self, payload: Optional[str] = None) -> None:
        data = b"OKAY"
        if payload is not None:
            raw = payload.encode()
            data += b"%04x" % len(raw) + raw
        self._send(data)

    def _fail(self, message: str) -> None:
        raw = message.encode()
        self._send(b"FAIL" + b"%04x" % len(raw) + raw)

    def _read_request(self) -> Optional[str]:
        try:
            head = self._recv_exact(4)
        except _Closed:
            return None
        size = int(head.decode("ascii", "replace"), 16)
        return self._recv_exact(size).decode("utf-8", "replace")

    # -- entry point
    def handle(self) -> None:
        sock: socket.socket = self.request
        if not self.adb._enter(sock):
            return
        try:
            sock.settimeout(self.adb.io_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no delayed-ACK stalls
            req = self._read_request()
            if req is None:
                return
            dev = self._host(req)
            if dev is None:
                return
            self.adb._bind(sock, dev.serial)
            req = self._read_request()
            if req is not None and dev.present:
                self._device_service(dev, req)
        except (_Closed, ValueError, OSError):
            pass
        finally:
            self.adb._leave(sock)
            try:
                sock.close()
            except OSError:
                pass

    # -- host services; return a device when the connection switches to its transport
    def _host(self, req: str) -> Optional[EmulatedDevice]:
        adb = self.adb
        if req == "host:version":
            self._okay("%04x" % ADB_SERVER_VERSION)
        elif req in ("host:devices", "host:devices-l"):
            self._okay(adb._devices_text(long=req.endswith("-l")))
        elif req == "host:track-devices":
            self._track_devices()
        elif req in ("host:features", "host:host-features"):
            self._okay(HOST_FEATURES)
        elif req.startswith("host:transport:"):
            return self._select(serial=req[len("host:transport:"):])
        elif req.startswith("host:tport:serial:"):
            return self._select(serial=req[len("host:tport:serial:"):], tport=True)
        elif req.startswith("host:transport-id:"):
            return self._select(tid=int(req[len("host:transport-id:"):]))
        elif req.startswith("host:tport:transport-id:"):
            return self._select(tid=int(req[len("host:tport:transport-id:"):]), tport=True)
        elif req in ("host:transport-any", "host:transport-usb", "host:transport-local"):
            return self._select()
        elif req in ("host:tport:any", "host:tport:usb", "host:tport:local"):
            return self._select(tport=True)
        elif req.startswith("host-serial:") or req.startswith("host-transport-id:"):
            self._query(req)
        else:
            self._fail("unknown host service '%s'" % req)
        return None

    def _select(self, serial: Optional[str] = None, tid: Optional[int] = None,
                tport: bool = False) -> Optional[EmulatedDevice]:
        dev, err = self.adb._lookup(serial, tid)
        if dev is None:
            self._fail(err)
            return None
        self._send(b"OKAY" + (struct.pack("<Q", dev.transport_id) if tport else b""))
        return dev

    def _query(self, req: str) -> None:
        prefix, rest = req.split(":", 1)
        m = re.match(r"^(.*):(%s)$" % "|".join(re.escape(q) for q in _QUERIES), rest)
        if not m:
            self._fail("unsupported host service '%s'" % req)
            return
        key, query = m.group(1), m.group(2)
        with self.adb._lock:
            if prefix == "host-serial":
                found = [d for d in self.adb.listed() if d.serial == key]
                missing = "device '%s' not found" % key
            else:
                found = [d for d in self.adb.listed() if str(d.transport_id) == key]
                missing = "no device with transport id '%s'" % key
        if not found:
            self._fail(missing)
            return
        dev = found[0]
        if query == "get-state":
            self._okay(dev.state)
        elif query == "get-serialno":
            self._okay(dev.serial)
        elif query == "get-devpath":
            self._okay("usb:emulated-%d" % dev.transport_id)
        else:
            self._okay(dev.features)

    def _track_devices(self) -> None:
        """OKAY, then the device list now and after every change, until the client leaves."""
        adb = self.adb
        self._send(b"OKAY")
        last = None
        while True:
            with adb._lock:
                if adb._stopping:
                    return
                text = adb._devices_text(long=False)
            if text != last:
                raw = text.encode()
                self._send(b"%04x" % len(raw) + raw)
                last = text
            ready = selectors.DefaultSelector()
            try:
                ready.register(self.request, selectors.EVENT_READ)
                if ready.select(timeout=0.05):
                    try:
                        if not self.request.recv(64):
                            return
                    except OSError:
                        return
            finally:
                ready.close()
            with adb._lock:
                adb._changed.wait(0.05)

    # -- device services
    def _device_service(self, dev: EmulatedDevice, req: str) -> None:
        if req.startswith("shell,") or req.startswith("shell:") or req.startswith("exec:"):
            service, _, cmd = req.partition(":")
            opts = service.split(",")[1:]
            v2 = "v2" in opts
            kind = "shell,v2" if v2 else "shell"
            self.adb._record(dev.serial, kind, cmd)
            fault = dev._note("shell", cmd)
            if self._apply_fault(dev, fault):
                return
            if not cmd.strip():
                self._fail("interactive shells are not supported by the test adb server")
                return
            self._send(b"OKAY")
            self._run_shell(dev, cmd, v2=v2)
        elif req == "sync:":
            self._send(b"OKAY")
            self._sync(dev)
        else:
            self._fail("unsupported device service '%s'" % req.split(":", 1)[0])

    def _apply_fault(self, dev: EmulatedDevice, fault: Optional[Tuple[str, str]]) -> bool:
        if fault is None:
            return False
        action, message = fault
        if action == "fail":
            self._fail(message)
        else:  # vanish: the request was accepted, then the cable was pulled
            self._send(b"OKAY")
            self.adb.vanish(dev.serial)
        return True

    def _run_shell(self, dev: EmulatedDevice, cmd: str, v2: bool) -> None:
        root = str(dev.root)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", rewrite_command(cmd, root)], cwd=root, env=dev.shell_env(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if v2 else subprocess.STDOUT, start_new_session=True)
        self.adb._add_proc(proc, dev.serial)
        if not dev.present:  # vanished between OKAY and here
            _kill(proc)
        sel = selectors.DefaultSelector()
        try:
            streams = {proc.stdout: 1}
            if v2:
                streams[proc.stderr] = 2
            unrew = {sid: _Unrewriter(root) for sid in streams.values()}
            for f, sid in streams.items():
                sel.register(f, selectors.EVENT_READ, sid)
            sel.register(self.request, selectors.EVENT_READ, 0)
            open_streams = len(streams)
            deadline = time.monotonic() + self.adb.max_shell_seconds
            while open_streams:
                left = deadline - time.monotonic()
                if left <= 0:
                    _kill(proc)
                    break
                for key, _ in sel.select(timeout=min(left, 0.5)):
                    if key.data == 0:  # client data (ignored stdin) or EOF
                        try:
                            data = self.request.recv(4096)
                        except OSError:
                            data = b""
                        if not data:
                            raise _Closed()
                        continue
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                        self._emit(key.data, unrew[key.data].flush(), v2)
                        continue
                    self._emit(key.data, unrew[key.data].feed(chunk), v2)
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _kill(proc)
                code = proc.wait(timeout=5)
            if not dev.present:
                raise _Closed()
            if v2:
                self._send(bytes([3]) + struct.pack("<I", 1) + bytes([code & 0xFF]))
        finally:
            sel.close()
            _kill(proc)
            for f in (proc.stdout, proc.stderr):
                if f is not None:
                    f.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.adb._drop_proc(proc)

    def _emit(self, stream_id: int, data: bytes, v2: bool) -> None:
        if not data:
            return
        if v2:
            self._send(bytes([stream_id]) + struct.pack("<I", len(data)) + data)
        else:
            self._send(data)

    # -- sync
    def _sync_fail(self, message: str) -> None:
        raw = message.encode()
        self._send(b"FAIL" + struct.pack("<I", len(raw)) + raw)

    def _sync(self, dev: EmulatedDevice) -> None:
        while True:
            try:
                head = self._recv_exact(8)
            except _Closed:
                return
            sid = head[:4].decode("ascii", "replace")
            size = struct.unpack("<I", head[4:])[0]
            if sid == "QUIT":
                return
            if size > 4096:
                self._sync_fail("path too long")
                return
            arg = self._recv_exact(size).decode("utf-8", "replace")
            self.adb._record(dev.serial, sid, arg)
            fault = dev._note(sid, arg)
            if fault is not None:
                if fault[0] == "fail":
                    self._sync_fail(fault[1])
                else:
                    self.adb.vanish(dev.serial)
                return
            if sid == "STAT":
                self._sync_stat(dev, arg)
            elif sid == "LIST":
                self._sync_list(dev, arg)
            elif sid == "SEND":
                self._sync_send(dev, arg)
            elif sid == "RECV":
                self._sync_recv(dev, arg)
            else:
                self._sync_fail("unsupported sync request '%s'" % sid)
                return

    def _sync_stat(self, dev: EmulatedDevice, path: str) -> None:
        try:
            st = os.lstat(dev.host_path(path))
            values = (st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime))
        except OSError:
            values = (0, 0, 0)
        self._send(b"STAT" + struct.pack("<III", *values))

    def _sync_list(self, dev: EmulatedDevice, path: str) -> None:
        host = dev.host_path(path)
        try:
            names = [".", ".."] + sorted(os.listdir(host))
        except OSError:
            names = []
        for name in names:
            try:
                st = os.lstat(host / name)
            except OSError:
                continue
            raw = name.encode()
            self._send(b"DENT" + struct.pack("<IIII", st.st_mode & 0xFFFFFFFF,
                                             st.st_size & 0xFFFFFFFF, int(st.st_mtime), len(raw))
                       + raw)
        self._send(b"DONE" + b"\0" * 16)

    def _sync_send(self, dev: EmulatedDevice, arg: str) -> None:
        path, _, mode_text = arg.rpartition(",")
        if not path:
            path, mode_text = arg, str(stat.S_IFREG | 0o644)
        try:
            mode = int(mode_text)
        except ValueError:
            mode = stat.S_IFREG | 0o644
        host = dev.host_path(path)
        tmp = host.with_name(".%s.adbtmp" % host.name)
        error = None
        out = None
        try:
            try:
                host.parent.mkdir(parents=True, exist_ok=True)
                if host.is_dir():
                    raise IsADirectoryError(errno.EISDIR, "Is a directory")
                out = open(tmp, "wb")
            except OSError as e:
                error = "couldn't create file: %s" % (e.strerror or e)
            while True:
                head = self._recv_exact(8)
                sid, value = head[:4], struct.unpack("<I", head[4:])[0]
                if sid == b"DATA":
                    if value > SYNC_MAX_CHUNK:
                        self._sync_fail("chunk too large")
                        return
                    data = self._recv_exact(value)
                    if out is not None:
                        out.write(data)
                elif sid == b"DONE":
                    break
                else:
                    self._sync_fail("bad sync packet %r" % sid)
                    return
            if out is not None:
                out.close()
                out = None
                os.chmod(tmp, mode & 0o7777)
                os.utime(tmp, (value, value))
                os.replace(tmp, host)
        finally:
            if out is not None:
                out.close()
            if tmp.exists():
                tmp.unlink()
        if error:
            self._sync_fail(error)
        else:
            self._send(b"OKAY" + b"\0" * 4)

    def _sync_recv(self, dev: EmulatedDevice, path: str) -> None:
        host = dev.host_path(path)
        try:
            f = open(host, "rb")
        except OSError as e:
            self._sync_fail(e.strerror or str(e))
            return
        with f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                self._sync_fail("not a regular file")
                return
            while True:
                chunk = f.read(SYNC_MAX_CHUNK)
                if not chunk:
                    break
                self._send(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        self._send(b"DONE" + b"\0" * 4)


# --------------------------------------------------------------------------- emulated tools
# Run as ``python adbserver.py --tool NAME ARGS...`` by the wrappers in <root>/system/bin.

def _tool_state() -> dict:
    with open(os.environ["ADBEMU_STATE"], encoding="utf-8") as f:
        return json.load(f)


def _tool_getprop(args: List[str]) -> int:
    props = _tool_state()["props"]
    if not args:
        for key in sorted(props):
            sys.stdout.write("[%s]: [%s]\n" % (key, props[key]))
        return 0
    value = props.get(args[0], args[1] if len(args) > 1 else "")
    sys.stdout.write(value + "\n")
    return 0


def _tool_dumpsys(args: List[str]) -> int:
    if args[:1] != ["battery"]:
        sys.stderr.write("Can't find service: %s\n" % (args[0] if args else ""))
        return 1
    temp = int(round(float(_tool_state()["battery_temp_c"]) * 10))
    sys.stdout.write(
        "Current Battery Service state:\n  AC powered: false\n  USB powered: true\n"
        "  Wireless powered: false\n  Max charging current: 500000\n"
        "  Max charging voltage: 5000000\n  Charge counter: 3000000\n  status: 2\n"
        "  health: 2\n  present: true\n  level: 85\n  scale: 100\n  voltage: 4190\n"
        "  temperature: %d\n  technology: Li-ion\n" % temp)
    return 0


def _tool_md5sum(args: List[str]) -> int:
    code = 0
    for name in args:
        if name.startswith("-"):
            continue
        try:
            h = hashlib.md5()
            with open(name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            sys.stdout.write("%s  %s\n" % (h.hexdigest(), name))
        except OSError as e:
            sys.stderr.write("md5sum: %s: %s\n" % (name, e.strerror))
            code = 1
    return code


def _tool_sh(args: List[str]) -> int:
    """``sh`` that rewrites device paths in its script before running the host's /bin/sh."""
    root = os.environ["ADBEMU_ROOT"]
    opts: List[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in ("-c", "-", "--"):
        opts.append(args[i])
        i += 1
    if i < len(args) and args[i] == "-c":
        cmd = rewrite_command(args[i + 1], root) if i + 1 < len(args) else ""
        os.execv("/bin/sh", ["sh"] + opts + ["-c", cmd] + args[i + 2:])
    if i < len(args) and args[i] == "--":
        i += 1
    if i < len(args) and args[i] != "-":
        script = args[i]
        try:
            with open(script, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            sys.stderr.write("sh: %s: %s\n" % (script, e.strerror))
            return 127
        os.execv("/bin/sh", ["sh"] + opts + ["-c", rewrite_command(text, root), script]
                 + args[i + 1:])
    os.execv("/bin/sh", ["sh"] + opts + args[i:])
    return 127  # not reached


def _tool_main(argv: List[str]) -> int:
    tools = {"getprop": _tool_getprop, "dumpsys": _tool_dumpsys, "md5sum": _tool_md5sum,
             "sh": _tool_sh}
    if len(argv) < 2 or argv[0] != "--tool" or argv[1] not in tools:
        sys.stderr.write("usage: adbserver.py --tool {%s} ARGS...\n" % ",".join(tools))
        return 2
    return tools[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(_tool_main(sys.argv[1:]))
