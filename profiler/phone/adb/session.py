"""One adb device at a time, through adbutils only: listing, shell, push/pull, perf state.

Everything talks to the adb *server* through ``adbutils.AdbClient`` (no ``adb`` command lines,
no ``os.system``). Every adb failure leaves this module as a one-line :class:`DeviceError`
naming the serial, what adb currently lists and what to do; a missing local file or a missing
remote output is a :class:`ToolError`. Nothing here prints or exits.

``DeviceSession.push_tree`` pushes only files whose device copy has a different md5 (one
``find DIR -type f -exec md5sum {} +`` on the device per call, or none when the session took an
inventory of the folder, ``take_inventory``), so the SNPE SDK's binaries and libraries cross the
cable once per phone, not once per run. Device-side ``md5sum`` is toybox's, present from
Android 6 (API 23).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import posixpath
import re
import shlex
import socket
import stat as stat_mod
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import adbutils
from adbutils._adb import AdbConnection
from adbutils.errors import AdbError, AdbTimeout

from profiler.files import cached_digest
from profiler.errors import DeviceError, ProfilerError, ToolError
from profiler.phone.adb import sync

DEFAULT_TIMEOUT_S = 600.0
GOVERNOR_PATH = "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"

# What adbutils lets escape when a connection is refused, cut or garbled: its own errors,
# socket errors (OSError, incl. timeouts), short reads (EOFError, struct.error), the asserts
# in Sync.stat, int() on a truncated exit-code marker (ValueError), and the subprocess it
# spawns for "adb start-server" (NoSpawnClient below never lets it).
_ADB_FAILURES = (AdbError, OSError, EOFError, struct.error, AssertionError, ValueError,
                 subprocess.SubprocessError)

_PROP_RE = re.compile(r"^\[([^\]]+)\]: \[(.*)\]\s*$")
_MD5_LINE_RE = re.compile(r"^([0-9a-fA-F]{32})\s+\*?(.+)$")
_SEP = "@@profiler-device-state@@"
_MD5_SEP = "@@profiler-md5@@"
_STATE_CMD = f"dumpsys battery 2>/dev/null; echo {_SEP}; cat {GOVERNOR_PATH} 2>/dev/null"

# Every shell command is started with these two variables exported, so whatever it starts on
# the phone (children, grandchildren, reparented orphans) can be found in /proc/*/environ and
# stopped: adbd only sends SIGHUP to the ``sh`` of a closed stream, nothing else.
OWNER_VAR = "PROFILER_OWNER"      # = the device's serial: "processes of ours on this phone"
RUN_VAR = "PROFILER_RUN"          # = one tag per shell call
SERVERS_ENV = "PROFILER_ADB_SERVERS"


class StuckDeviceError(DeviceError):
    """A command of ours could not be stopped on a phone that is still connected: retire it."""


def _short(err: BaseException) -> str:
    text = " ".join(str(a) for a in err.args if not isinstance(a, bytes)) if err.args else ""
    text = " ".join((text or type(err).__name__).split())
    return text[:160] + ("..." if len(text) > 160 else "")


# --------------------------------------------------------------------------- client, listing

class _NoSpawnConnection(AdbConnection):
    """adbutils' connection without its fallback: on a refused connection ``AdbConnection``
    runs ``adb start-server`` (no ``-P``: a daemon on $ANDROID_ADB_SERVER_PORT or 5037, whatever
    port was asked) and leaves it running. Here a refused connection is just an error."""

    def _safe_connect(self):
        return self._create_socket()

    def close(self) -> None:
        """Half-close, then close, without adbutils' 10 ms sleep in between (paid twice per adb
        call): every caller here has read its reply to the end, so closing sends no RST."""
        sock = self._AdbConnection__conn  # adbutils keeps the socket in a private attribute
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
        self._AdbConnection__conn = None


class NoSpawnClient(adbutils.AdbClient):
    """An ``AdbClient`` that never starts an adb server (see :class:`_NoSpawnConnection`).

    It also asks the server's version once (adbutils asks it on a connection of its own before
    every transport) and sets ``TCP_NODELAY`` on its connections."""

    def __init__(self, host: Optional[str] = None, port: Optional[int] = None,
                 socket_timeout: Optional[float] = None):
        super().__init__(host=host, port=port, socket_timeout=socket_timeout)
        self._timeout = socket_timeout
        self._version: Optional[int] = None

    def server_version(self) -> int:
        if self._version is None:
            self._version = super().server_version()
        return self._version

    def make_connection(self, timeout: Optional[float] = None) -> AdbConnection:
        timeout = timeout or self._timeout
        try:
            conn = _NoSpawnConnection(self.host, self.port)
        except TimeoutError:
            raise AdbTimeout("connect to adb server timeout") from None
        if timeout:
            conn.conn.settimeout(timeout)
        try:
            conn.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        return conn


def no_server_hint(host: str, port: int) -> str:
    """What to do when nothing answers at ``host:port`` (pure)."""
    if is_loopback(host):
        return (f"start one with 'adb -P {port} start-server' (or, for phones on another host, "
                f"open the SSH tunnel to it: docs/phones.md)")
    return f"start 'adb -P {port} nodaemon server' on {host} or use an SSH tunnel (docs/phones.md)"


def open_client(host: Optional[str] = None, port: Optional[int] = None,
                socket_timeout: Optional[float] = 60.0) -> adbutils.AdbClient:
    """An adbutils client whose server answered ``host:version``; never starts a server.

    ``host``/``port`` default to ``$ANDROID_ADB_SERVER_HOST``/``$ANDROID_ADB_SERVER_PORT``
    (else 127.0.0.1:5037).
    """
    client = NoSpawnClient(host=host, port=port, socket_timeout=socket_timeout)
    try:
        client.server_version()
    except _ADB_FAILURES as e:
        raise DeviceError(f"no adb server at {client.host}:{client.port} ({_short(e)}): "
                          f"{no_server_hint(client.host, client.port)}") from e
    return client


def parse_server(text: str, what: str = "--adb-server") -> "tuple[str, int]":
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); ProfilerError naming ``what``."""
    raw = text.strip()
    host, sep, port_text = raw.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ProfilerError(f"{what} {text!r}: expected HOST:PORT with a port 1-65535, e.g. "
                            "127.0.0.1:15037")
    return host, int(port_text)


def resolve_servers(servers: Sequence[str] = (), host: Optional[str] = None,
                    port: Optional[int] = None) -> List["tuple[Optional[str], Optional[int]]"]:
    """The adb servers of a session: ``servers`` (HOST:PORT), else ``$PROFILER_ADB_SERVERS``
    (comma-separated), else the one server ``host``/``port`` (None: adbutils' defaults,
    ``$ANDROID_ADB_SERVER_HOST``/``PORT`` or 127.0.0.1:5037). Duplicates are dropped."""
    if servers:
        out = [parse_server(s) for s in servers]
    elif os.environ.get(SERVERS_ENV, "").strip():
        out = [parse_server(s, SERVERS_ENV) for s in os.environ[SERVERS_ENV].split(",") if s.strip()]
    else:
        return [(host, port)]
    return list(dict.fromkeys(out))


def is_loopback(host: Optional[str]) -> bool:
    """True for 127.0.0.0/8, ::1, ``localhost`` (and None, adbutils' 127.0.0.1 default)."""
    if host is None or host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def remote_servers_warning(servers: Sequence["tuple[Optional[str], Optional[int]]"]) -> Optional[str]:
    """One warning line when some adb servers are not on loopback, else None (pure)."""
    remote = [f"{h}:{p}" for h, p in servers if not is_loopback(h)]
    if not remote:
        return None
    return (f"warning: adb server {', '.join(remote)} is not a loopback address: an adb server open to "
            "the network lets anyone who reaches it run shell commands and install apps on its phones, "
            "with no authentication; prefer an SSH tunnel and --adb-server 127.0.0.1:PORT (docs/phones.md, "
            "'Phones on several hosts')")


def server_name(client: adbutils.AdbClient) -> str:
    return f"{client.host}:{client.port}"


def _adb_list(client: adbutils.AdbClient):
    try:
        return client.list()
    except _ADB_FAILURES:
        return None


def describe_listing(infos) -> str:
    """``adb lists: A, B [unauthorized]`` for error messages (pure)."""
    if infos is None:
        return "adb server not reachable"
    if not infos:
        return "adb lists: no devices"
    return "adb lists: " + ", ".join(
        i.serial if i.state == "device" else f"{i.serial} [{i.state}]" for i in infos)


def _state_hint(state: str) -> str:
    if state == "unauthorized":
        return "unlock the phone and accept the 'Allow USB debugging' prompt"
    if state == "offline":
        return "replug the cable or toggle USB debugging; then check 'adb devices'"
    return "check 'adb devices'"


@dataclass(frozen=True)
class DeviceInfo:
    """One ``adb devices`` entry plus what getprop says (None when unknown)."""

    serial: str
    state: str            # "device", "unauthorized", "offline", ... or "absent" (lost mid-query)
    model: Optional[str] = None
    soc: Optional[str] = None        # ro.soc.model, else ro.board.platform, else ro.product.board
    sdk: Optional[int] = None        # ro.build.version.sdk
    abi: Optional[str] = None        # ro.product.cpu.abi
    manufacturer: Optional[str] = None
    props: Dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ready(self) -> bool:
        return self.state == "device"


def parse_getprop(text: str) -> Dict[str, str]:
    """``[key]: [value]`` lines of ``getprop`` -> dict (pure)."""
    props = {}
    for line in text.splitlines():
        m = _PROP_RE.match(line.strip())
        if m:
            props[m.group(1)] = m.group(2)
    return props


def device_info_from_props(serial: str, state: str, props: Dict[str, str]) -> DeviceInfo:
    """Pure: pick model / SoC / SDK / ABI out of getprop values."""
    def get(*keys: str) -> Optional[str]:
        for k in keys:
            v = props.get(k, "").strip()
            if v:
                return v
        return None

    sdk_text = get("ro.build.version.sdk")
    return DeviceInfo(
        serial=serial, state=state, model=get("ro.product.model"),
        soc=get("ro.soc.model", "ro.board.platform", "ro.product.board"),
        sdk=int(sdk_text) if sdk_text and sdk_text.isdigit() else None,
        abi=get("ro.product.cpu.abi"), manufacturer=get("ro.product.manufacturer"),
        props=dict(props))


def list_devices(client: adbutils.AdbClient) -> List[DeviceInfo]:
    """Every device adb lists; getprop details for those in state ``device``."""
    infos = _adb_list(client)
    if infos is None:
        raise DeviceError(f"no adb server at {client.host}:{client.port}: "
                          f"{no_server_hint(client.host, client.port)}")
    out = []
    for info in infos:
        if info.state != "device":
            out.append(DeviceInfo(info.serial, info.state))
            continue
        try:
            props = DeviceSession(client, info.serial).getprops()
        except DeviceError:
            out.append(DeviceInfo(info.serial, "absent"))
            continue
        out.append(device_info_from_props(info.serial, info.state, props))
    return out


def open_session(client: adbutils.AdbClient, serial: str,
                 timeout: float = DEFAULT_TIMEOUT_S) -> "DeviceSession":
    """A session for ``serial`` after checking adb lists it in state ``device``."""
    infos = _adb_list(client)
    if infos is None:
        raise DeviceError(f"device {serial}: no adb server at {client.host}:{client.port}: "
                          f"{no_server_hint(client.host, client.port)}")
    states = {i.serial: i.state for i in infos}
    if serial not in states:
        raise DeviceError(f"device {serial} not found ({describe_listing(infos)}); plug it in, "
                          "enable USB debugging and check 'adb devices'")
    if states[serial] != "device":
        raise DeviceError(f"device {serial} is {states[serial]} ({describe_listing(infos)}); "
                          f"{_state_hint(states[serial])}")
    return DeviceSession(client, serial, timeout=timeout)


# --------------------------------------------------------------------------- session

class ShellResult(NamedTuple):
    exit_code: int
    output: str       # stdout and stderr merged, as adb shell v1 returns them


@dataclass(frozen=True)
class PushReport:
    pushed: List[str]      # paths relative to the tree root, posix style
    skipped: List[str]     # same md5 already on the device
    bytes_pushed: int


@dataclass(frozen=True)
class DeviceState:
    """Perf-relevant facts at one moment; None when the device does not expose them."""

    battery_temp_c: Optional[float]
    governor: Optional[str]

    def as_dict(self) -> Dict[str, object]:
        return {"battery_temp_c": self.battery_temp_c, "governor": self.governor}


@dataclass(frozen=True)
class CoolResult:
    cooled: Optional[bool]   # None: temperature not readable, so nothing was waited for
    state: DeviceState       # the last reading
    waited_s: float


def parse_device_state(text: str) -> DeviceState:
    """Output of ``dumpsys battery; echo SEP; cat scaling_governor`` -> DeviceState (pure)."""
    battery, _, governor_text = text.partition(_SEP)
    temp = None
    for line in battery.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key.strip() == "temperature":
            try:
                temp = int(value.strip()) / 10.0      # tenths of a degree Celsius
            except ValueError:
                temp = None
    governor = governor_text.strip() or None
    if governor is not None and (" " in governor or "\n" in governor):
        governor = None  # an error message, not a governor name
    return DeviceState(battery_temp_c=temp, governor=governor)


def _md5_cmd(remote_dir: str) -> str:
    q = _quote(remote_dir)
    return f"if [ -d {q} ]; then find {q} -type f -exec md5sum {{}} +; fi"


def parse_md5_listing(text: str, remote_dir: str) -> Dict[str, str]:
    """``md5sum`` lines of files under ``remote_dir`` -> ``{relative path: md5}`` (pure)."""
    prefix = posixpath.normpath(remote_dir).rstrip("/") + "/"
    return {path[len(prefix):]: md5 for path, md5 in parse_md5_paths(text).items() if path.startswith(prefix)}


def parse_md5_paths(text: str) -> Dict[str, str]:
    """``md5sum`` lines -> ``{device path: md5}`` (pure)."""
    out = {}
    for line in text.splitlines():
        m = _MD5_LINE_RE.match(line.strip())
        if m:
            out[posixpath.normpath(m.group(2))] = m.group(1).lower()
    return out


def _inventory_cmd(dirs: Sequence[str], prune: Sequence[str]) -> str:
    """md5 of every regular file under the existing ``dirs``, skipping what matches a ``prune``
    pattern (find's ``-path``); one ``find`` (toybox's has ``-path`` and ``-prune``)."""
    skip = ""
    if prune:
        skip = "\\( " + " -o ".join(f"-path {_quote(p)}" for p in prune) + " \\) -prune -o "
    return (f"set --; for d in {' '.join(_quote(d) for d in dirs)}; do "
            "if [ -d \"$d\" ]; then set -- \"$@\" \"$d\"; fi; done; "
            f"if [ $# -gt 0 ]; then find \"$@\" {skip}-type f -exec md5sum {{}} +; fi")


def _under(path: str, dirs: Sequence[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def _md5_file(path: Path) -> str:
    return cached_digest(path, "md5")


def _quote(path: str) -> str:
    return "'" + path.replace("'", "'\\''") + "'"


def _glob_quote(pattern: str) -> str:
    """Shell-quote ``pattern`` but leave ``* ? [ ]`` active for the device shell's globbing."""
    out = []
    for ch in pattern:
        if ch.isalnum() or ch in "*?[]/._-+,:@%=":
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)


class DeviceSession:
    """Operations on one phone. Cheap to create; talks to adb only when a method is called.

    ``timeout`` (seconds) bounds each shell command unless the call passes its own.
    """

    def __init__(self, client: adbutils.AdbClient, serial: str,
                 timeout: float = DEFAULT_TIMEOUT_S, name: Optional[str] = None):
        self.client = client
        self.serial = serial
        self.server = server_name(client)
        # how the session names the phone: the serial, or SERIAL@HOST:PORT with several servers
        self.name = name or serial
        self.timeout = timeout
        self.device = client.device(serial)
        self._shell_v2: Optional[bool] = None  # from the device's adb features, on first use
        # what this session knows the phone holds under some folders: {device path: md5}, from
        # one listing (take_inventory) and then the session's own pushes (see push_tree)
        self._inventory: Dict[str, str] = {}
        self._inventory_dirs: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"DeviceSession({self.name!r})"

    # -- error mapping
    def _error(self, what: str, err: BaseException) -> DeviceError:
        infos = _adb_list(self.client)
        listing = describe_listing(infos)
        if infos is None:
            return DeviceError(f"device {self.serial}: {what} failed: adb server at "
                               f"{self.client.host}:{self.client.port} not reachable "
                               f"({_short(err)}); {no_server_hint(self.client.host, self.client.port)}")
        states = {i.serial: i.state for i in infos}
        if self.serial not in states:
            return DeviceError(f"device {self.serial}: disconnected during {what} ({listing}); "
                               "reconnect it (cable, USB debugging) and resume")
        if states[self.serial] != "device":
            return DeviceError(f"device {self.serial}: became {states[self.serial]} during {what} "
                               f"({listing}); {_state_hint(states[self.serial])}")
        return DeviceError(f"device {self.serial}: adb {what} failed: {_short(err)} ({listing}); "
                           "replug the phone or restart adb ('adb kill-server') and resume")

    @contextlib.contextmanager
    def _adb(self, what: str, timeout: Optional[float] = None) -> Iterator[None]:
        try:
            yield
        except AdbTimeout as e:
            if timeout is not None:
                raise DeviceError(f"device {self.serial}: {what} timed out after {timeout:g} s; the "
                                  "command hangs or the phone stopped answering (check it, or raise "
                                  "the timeout)") from e
            raise self._error(what, e) from e
        except _ADB_FAILURES as e:
            raise self._error(what, e) from e

    # -- shell
    def _run(self, text: str, timeout: float, shown: str) -> ShellResult:
        with self._adb(f"shell '{shown}'", timeout):
            if self._shell_v2 is None:
                self._shell_v2 = "shell_v2" in self.device.get_features().split(",")
            if self._shell_v2:
                res = self.device.shell2(text, timeout=timeout, rstrip=False, v2=True)
            else:
                # v1 reads the exit code from an appended "; echo X4EXIT:$?", which an
                # "exit N" in cmd would skip: run cmd in a subshell (newlines keep comments
                # and a trailing "&" harmless).
                res = self.device.shell2("(\n" + text + "\n)", timeout=timeout, rstrip=False)
        return ShellResult(int(res.returncode), res.output)

    def shell(self, cmd: Union[str, Sequence[str]], timeout: Optional[float] = None,
              check: bool = False) -> ShellResult:
        """Run ``cmd`` (a string for the device shell, or argv to be quoted) -> (exit, output).

        Uses adb's shell protocol v2 when the device offers it (exit code in a packet), else
        v1 (adbutils' echoed exit-code marker). Output is stdout and stderr interleaved.

        The command runs with ``PROFILER_OWNER=<serial>`` and a fresh ``PROFILER_RUN`` tag
        exported. When it times out, everything carrying that tag is killed on the phone and
        checked gone before the DeviceError is raised (adbd would only SIGHUP its ``sh``); if
        something survives, :class:`StuckDeviceError` says so (the phone must be retired).

        With ``check=True`` a non-zero exit raises ToolError with the output's last line.
        """
        timeout = self.timeout if timeout is None else timeout
        text = cmd if isinstance(cmd, str) else " ".join(shlex.quote(str(a)) for a in cmd)
        shown = text if len(text) <= 80 else text[:77] + "..."
        tag = uuid.uuid4().hex
        wrapped = f"export {_quote(self._owner())} {RUN_VAR}={tag}\n" + text
        try:
            result = self._run(wrapped, timeout, shown)
        except DeviceError as e:
            if not isinstance(e.__cause__, AdbTimeout):
                raise
            left = self._stop_tagged(f"{RUN_VAR}={tag}")
            if left:
                raise StuckDeviceError(
                    f"device {self.name}: '{shown}' timed out after {timeout:g} s and processes "
                    f"{', '.join(map(str, left[:5]))} it started could not be killed; the phone is "
                    "retired so later measurements do not share it with them (reboot it)") from e
            raise DeviceError(f"{e} [what it started on the phone was killed]") from e
        if check and result.exit_code != 0:
            tail = [ln for ln in result.output.strip().splitlines() if ln.strip()][-1:]
            raise ToolError(f"device {self.name}: '{shown}' exited with {result.exit_code}"
                            + (f": {tail[0].strip()}" if tail else ""))
        return result

    def _owner(self) -> str:
        # "@@" ends the serial, so 127.0.0.1:5555 does not match 127.0.0.1:55551's processes
        return f"{OWNER_VAR}={self.serial}@@"

    def _tagged_pids(self, pattern: str, signal_name: Optional[str] = None) -> List[int]:
        """PIDs whose /proc/PID/environ holds the fixed string ``pattern``; optionally sending
        them ``signal_name`` first. One shell call, not itself tagged, and one ``grep -l`` over
        every environ (a grep per process costs a fork each: seconds on a phone)."""
        kill = f"kill -{signal_name} \"$p\" 2>/dev/null; " if signal_name else ""
        script = (f"for f in $(grep -lF {_quote(pattern)} /proc/[0-9]*/environ 2>/dev/null); do "
                  "p=${f#/proc/}; p=${p%/environ}; [ \"$p\" = \"$$\" ] && continue; "
                  f"{kill}echo \"pid:$p\"; done")
        res = self._run(script, min(self.timeout, 30.0), "stop tagged processes")
        return sorted({int(ln[4:]) for ln in res.output.split() if ln.startswith("pid:")
                       and ln[4:].isdigit()})

    def _stop_tagged(self, pattern: str) -> List[int]:
        """Kill what carries ``pattern`` (TERM, then KILL); the PIDs still alive after that."""
        for sig in ("TERM", "KILL", "KILL"):
            if not self._tagged_pids(pattern, sig):
                return []
            time.sleep(0.2)
        return self._tagged_pids(pattern)

    def stop_leftovers(self) -> List[int]:
        """Kill processes an earlier session of ours left on this phone (a host killed with
        SIGKILL, a cable pulled mid-run); returns their PIDs. StuckDeviceError if they survive."""
        found = self._tagged_pids(self._owner())
        if not found:
            return []
        left = self._stop_tagged(self._owner())
        if left:
            raise StuckDeviceError(f"device {self.name}: processes {', '.join(map(str, left[:5]))} left by an "
                                   "earlier profiler session could not be killed; reboot the phone")
        return found

    def clean(self, device_root: str, folders: Sequence[str]) -> List[str]:
        """Remove the profiler's ``folders`` under ``device_root`` (``DevicePaths.FOLDERS``),
        then the root itself if that leaves it empty; returns what was there."""
        root = posixpath.normpath(device_root)
        if root in ("/", "/data", "/data/local", "/data/local/tmp", "/sdcard") or not root.startswith("/"):
            raise ProfilerError(f"--device-root {device_root}: refusing to clean a folder the profiler "
                                "does not own; give the profiler's own folder")
        self.forget_inventory()
        parts = [posixpath.join(root, d) for d in folders]
        present = [p for p in parts if self.exists(p)]
        if present:
            self.shell("rm -rf " + " ".join(_quote(p) for p in present), check=True)
        self.shell(f"rmdir {_quote(root)} 2>/dev/null; true")
        return present

    def getprops(self) -> Dict[str, str]:
        """All ``getprop`` values (one shell call)."""
        return parse_getprop(self.shell("getprop", timeout=min(self.timeout, 60.0)).output)

    def info(self) -> DeviceInfo:
        return device_info_from_props(self.serial, "device", self.getprops())

    # -- files
    def exists(self, remote: str) -> bool:
        with self._adb(f"stat {remote}"):
            return self.device.sync.stat(remote).mtime is not None

    def list(self, remote_dir: str) -> List[str]:
        """Names in ``remote_dir`` (sorted, without . and ..); [] when it does not exist."""
        with self._adb(f"list {remote_dir}"):
            entries = self.device.sync.list(remote_dir)
        return sorted(e.path for e in entries if e.path not in (".", ".."))

    def glob(self, pattern: str) -> List[str]:
        """Device paths matching a shell glob such as ``/data/local/tmp/out/*.log`` (sorted)."""
        cmd = (f"for f in {_glob_quote(pattern)}; do "
               "if [ -e \"$f\" ]; then echo \"$f\"; fi; done")
        res = self.shell(cmd, timeout=min(self.timeout, 120.0))
        return sorted(ln for ln in res.output.splitlines() if ln)

    def push(self, local: Union[str, Path], remote: str, mode: Optional[int] = None) -> int:
        """Push one file; ``remote`` ending in ``/`` (or an existing directory) keeps the name.

        ``mode`` defaults to 0o755 for locally executable files, else 0o644. Returns bytes sent.
        """
        src = Path(local)
        if not src.is_file():
            raise ToolError(f"{src}: not a file; cannot push it to device {self.serial}")
        if mode is None:
            mode = 0o755 if src.stat().st_mode & stat_mod.S_IXUSR else 0o644
        if remote.endswith("/"):
            remote = remote + src.name
        with self._adb(f"push {src.name} -> {remote}"):
            return self.device.sync.push(str(src), remote, mode=mode)

    def remote_md5(self, remote_dir: str) -> Dict[str, str]:
        """``{relative path: md5}`` of every regular file under ``remote_dir`` ({} if absent)."""
        remote_dir = posixpath.normpath(remote_dir)
        return parse_md5_listing(self.shell(_md5_cmd(remote_dir)).output, remote_dir)

    def take_inventory(self, dirs: Sequence[str], prune: Sequence[str] = ()) -> DeviceState:
        """:meth:`device_state` and the md5 of every file under ``dirs`` in one shell call.

        The md5s (files matching a ``prune`` pattern, find's ``-path``, left out) become this
        session's inventory: :meth:`push_tree` into those folders compares with it instead of
        listing, and records what it pushes. So a file changed on the phone behind the
        session's back is noticed by the next session's listing, not by this one.
        """
        dirs = tuple(posixpath.normpath(d) for d in dirs)
        res = self.shell(f"{_STATE_CMD}; echo {_MD5_SEP}; {_inventory_cmd(dirs, prune)}",
                         timeout=min(self.timeout, 600.0))
        state_text, _, listing = res.output.partition(_MD5_SEP)
        self._inventory = {p: m for p, m in parse_md5_paths(listing).items() if _under(p, dirs)}
        self._inventory_dirs = dirs
        return parse_device_state(state_text)

    def forget_inventory(self) -> None:
        """Drop the inventory: later pushes list the device folder again."""
        self._inventory, self._inventory_dirs = {}, ()

    def push_tree(self, local_dir: Union[str, Path], remote_dir: str) -> PushReport:
        """Mirror the files of ``local_dir`` under ``remote_dir``, sending only changed ones.

        A file is skipped when the device already has the same md5 at the same relative path: the
        session's inventory when ``remote_dir`` lies under its folders (no shell call;
        :meth:`take_inventory`), else one shell call lists it. What is pushed under the
        inventory's folders is recorded in it (a push that fails drops its files from it, so
        they are sent again). Extra device files are left alone. Executable bits follow the
        local files.
        """
        return self.push_trees([(local_dir, remote_dir)])[0]

    def push_trees(self, trees: Sequence[Tuple[Union[str, Path], str]]) -> List[PushReport]:
        """:meth:`push_tree` of several ``(local_dir, remote_dir)`` pairs, their changed files
        over one sync connection (none when nothing changed)."""
        todo: List[Tuple[Path, str]] = []
        sums: Dict[str, str] = {}                  # device path -> md5, of what is sent
        tracked: set = set()
        reports = []
        for local_dir, remote_dir in trees:
            root = Path(local_dir)
            if not root.is_dir():
                raise ToolError(f"{root}: not a directory; cannot push it to device {self.serial}")
            remote_dir = posixpath.normpath(remote_dir)
            local = {p.relative_to(root).as_posix(): p
                     for p in sorted(root.rglob("*")) if p.is_file()}
            if _under(remote_dir, self._inventory_dirs):
                remote = {rel: self._inventory[dev] for rel in local
                          if (dev := posixpath.join(remote_dir, rel)) in self._inventory}
                tracked |= {posixpath.join(remote_dir, rel) for rel in local}
            else:
                remote = self.remote_md5(remote_dir)
            pushed, skipped, sent = [], [], 0
            for rel, path in local.items():
                md5 = _md5_file(path)
                if remote.get(rel) == md5:
                    skipped.append(rel)
                    continue
                pushed.append(rel)
                dev = posixpath.join(remote_dir, rel)
                todo.append((path, dev))
                sums[dev] = md5
                sent += path.stat().st_size
            reports.append(PushReport(pushed=pushed, skipped=skipped, bytes_pushed=sent))
        try:
            self.push_files(todo)
        except BaseException:
            for _, dev in todo:
                self._inventory.pop(dev, None)
            raise
        self._inventory.update({dev: md5 for dev, md5 in sums.items() if dev in tracked})
        return reports

    def push_files(self, files: Sequence[Tuple[Path, str]]) -> int:
        """Push ``(local file, device path)`` pairs over one sync connection (adbd makes the
        parent folders); modes as :meth:`push`. Returns bytes sent."""
        todo = []
        for src, remote in files:
            src = Path(src)
            if not src.is_file():
                raise ToolError(f"{src}: not a file; cannot push it to device {self.serial}")
            todo.append((src, remote, 0o755 if src.stat().st_mode & stat_mod.S_IXUSR else 0o644))
        if not todo:
            return 0
        current = {"what": f"push {todo[0][0].name} -> {todo[0][1]}"}

        def on_file(src: Path, remote: str) -> None:
            current["what"] = f"push {src.name} -> {remote}"
        try:
            try:
                return sync.push_files(self.device, todo, self.timeout, on_file=on_file)
            except (AdbTimeout,) + _ADB_FAILURES as e:
                with self._adb(current["what"], self.timeout):
                    raise e
        except sync.SyncFailure as e:
            raise ToolError(f"device {self.serial}: push {e.path} refused: {e.message}") from None

    def pull_files(self, files: Sequence[Tuple[str, Path]]) -> List[int]:
        """Pull ``(device path, local file)`` pairs by known name over one sync connection."""
        what = f"pull of {len(files)} file(s)"
        try:
            with self._adb(what, self.timeout):
                return sync.pull_files(self.device, [(r, Path(p)) for r, p in files], self.timeout)
        except sync.SyncFailure as e:
            raise ToolError(f"device {self.serial}: {e.path} could not be pulled ({e.message}); did the "
                            "command that should write it fail?") from None

    def pull(self, remote: str, local: Union[str, Path]) -> int:
        """Copy a device file to ``local`` (a file path), or a directory tree into ``local``."""
        dst = Path(local)
        with self._adb(f"stat {remote}"):
            info = self.device.sync.stat(remote)
        if info.mtime is None and info.mode == 0:
            raise ToolError(f"device {self.serial}: {remote} does not exist (did the command that "
                            "should write it fail?)")
        with self._adb(f"pull {remote}"):
            if stat_mod.S_ISDIR(info.mode):
                return self.device.sync.pull_dir(remote, dst, exist_ok=True)
            if dst.is_dir():
                dst = dst / posixpath.basename(remote)
            dst.parent.mkdir(parents=True, exist_ok=True)
            return self.device.sync.pull_file(remote, dst)

    # -- perf state
    def device_state(self) -> DeviceState:
        """Battery temperature (°C, from ``dumpsys battery``) and cpu0's cpufreq governor."""
        res = self.shell(_STATE_CMD, timeout=min(self.timeout, 60.0))
        return parse_device_state(res.output)

    def wait_cool(self, max_temp_c: float, timeout: float, poll: float = 10.0,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> CoolResult:
        """Poll ``device_state()`` until the battery is at or below ``max_temp_c``.

        Returns after at most ``timeout`` seconds (plus one poll's reading) with ``cooled``
        False if it is still hot; ``cooled`` is None when the temperature is not readable.
        """
        if poll <= 0:
            raise ValueError("poll must be > 0")
        start = clock()
        while True:
            state = self.device_state()
            waited = clock() - start
            if state.battery_temp_c is None:
                return CoolResult(None, state, waited)
            if state.battery_temp_c <= max_temp_c:
                return CoolResult(True, state, waited)
            if waited >= timeout:
                return CoolResult(False, state, waited)
            sleep(max(0.0, min(poll, timeout - waited)))
