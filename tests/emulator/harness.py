"""Host-side helpers: emulated phones (``adbd.py`` processes) behind real adb servers.

``Phone(workdir, serial, props=...)``
    ``start()`` runs ``python -m tests.emulator.adbd`` as a subprocess and waits until it
    listens; ``addr`` (``127.0.0.1:PORT``) is what the adb server lists it as. ``kill()`` is
    unplugging: SIGKILL to the emulator only, so commands it started keep running like on a
    phone whose cable was pulled; the server then lists it ``offline`` (``adb: device
    offline``) while it retries the connection, and ``start()``/``replug()`` on the same port
    brings it back to ``device``. ``cleanup()`` also kills every process left in the
    device's mount namespace. ``requests(kind)``/``count(kind)`` read the requests it served (its
    ``--request-log``); ``die_on(kind, text, after)`` makes it die exactly at a request (an
    unplug mid-command), ``refuse_on`` makes it refuse matching services (``--faults``). ``host_path("/data/local/tmp/x")`` is the host file behind a
    device path; ``set_prop``/``set_battery_temp``/``set_governor`` change what the device's
    ``getprop``, ``dumpsys battery`` and cpufreq file say, while it runs.

``AdbServer(workdir)``
    the real adb binary shipped in adbutils' wheel, run as ``adb -P PORT nodaemon server`` on a
    free loopback port with a private ``HOME``, ``ADB_VENDOR_KEYS`` and ``TMPDIR`` (its log).
    ``connect(phone)`` is ``adb connect`` + waiting for state ``device`` (``unauthorized`` for a
    ``Phone(..., unauthorized=True)``, which asks for a key and rejects every one); ``client()`` is an
    ``adbutils.AdbClient`` on that port; ``adb(*args)`` runs the real adb client against it.
    ``stop()`` sends ``kill-server`` and makes sure the process is gone.

Both are context managers and clean up in ``finally`` paths.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import adbutils

from . import adbd

REPO = Path(__file__).resolve().parents[2]
ADB = Path(adbutils.__file__).resolve().parent / "binaries" / "adb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def host_query(port: int, request: str, timeout: float = 10.0) -> str:
    """One smart-socket request to an adb server, by hand: never auto-starts a server
    (adbutils runs ``adb start-server`` on a refused connection, on 5037 by default)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        raw = request.encode()
        s.sendall(b"%04x" % len(raw) + raw)
        f = s.makefile("rb")
        status = f.read(4)
        size = f.read(4)
        body = f.read(int(size, 16)).decode() if len(size) == 4 else ""
        if status != b"OKAY":
            raise RuntimeError("adb server: %s %s" % (request, body or status))
        return body


def _mnt_ns(pid: int) -> Optional[str]:
    try:
        return os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return None


class Phone:
    """One emulated phone process."""

    def __init__(self, workdir, serial: str, props: Optional[Dict[str, str]] = None,
                 battery_temp_c: float = 30.0, governor: Optional[str] = "schedutil",
                 features: Optional[Sequence[str]] = None, unauthorized: bool = False):
        self.workdir = Path(workdir)
        self.serial = serial
        self.root = self.workdir / "root"
        self.props = adbd.default_props(serial)
        self.props.update(props or {})
        self.battery_temp_c = battery_temp_c
        self.governor = governor
        self.features = tuple(adbd.FEATURES if features is None else features)
        self.unauthorized = unauthorized
        self.proc: Optional[subprocess.Popen] = None
        self.port: Optional[int] = None
        self.ns: Optional[str] = None
        self.log_path = self.workdir / "adbd.log"
        self.request_log = self.workdir / "requests.jsonl"
        self.faults_file = self.workdir / "faults.json"

    @property
    def addr(self) -> str:
        """The serial the adb server gives a TCP device: ``127.0.0.1:PORT``."""
        return "127.0.0.1:%d" % self.port

    def start(self, timeout: float = 15.0) -> "Phone":
        """Run the emulator; a phone started before comes back on its old port (a replug)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.clear_faults()  # a replugged phone comes back without them
        ready = self.workdir / "port"
        if ready.exists():
            ready.unlink()
        argv = [sys.executable, "-m", "tests.emulator.adbd", "--port", str(self.port or 0),
                "--root", str(self.root), "--serial", self.serial,
                "--battery-temp", str(self.battery_temp_c),
                "--governor", self.governor or "", "--features", ",".join(self.features),
                "--ready-file", str(ready), "--request-log", str(self.request_log),
                "--faults", str(self.faults_file)]
        for k, v in self.props.items():
            argv += ["--prop", "%s=%s" % (k, v)]
        if self.unauthorized:
            argv.append("--unauthorized")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(argv, cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf)
        try:
            def listening():
                if self.proc.poll() is not None:
                    raise RuntimeError("emulator %s exited with %s: %s" % (
                        self.serial, self.proc.returncode, self.log_text()[-2000:]))
                return ready.exists() and ready.read_text().strip()
            self.port = int(_wait(listening, timeout, "emulator %s to listen" % self.serial))
            self.ns = _mnt_ns(self.proc.pid)
        except BaseException:
            self.cleanup()
            raise
        return self

    def replug(self, timeout: float = 15.0) -> "Phone":
        """Unplug, then start again on the same port (the server reconnects by itself)."""
        self.kill()
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def requests(self, kind: Optional[str] = None) -> List[Tuple[str, str]]:
        """Every request this phone served, ``(kind, detail)`` in order, over all its lives:
        kind "shell" (detail: the command), "shell,v2", "exec", "sync" (a sync connection) or a
        sync request id ("SEND" with ``path,mode``, "RECV", "STAT", "LIST", "STA2", ...)."""
        try:
            lines = self.request_log.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        out = []
        for line in lines:
            try:
                r = json.loads(line)
            except ValueError:  # a line being written
                continue
            if kind is None or r["kind"] == kind:
                out.append((r["kind"], r["detail"]))
        return out

    def count(self, kind: Optional[str] = None) -> int:
        return len(self.requests(kind))

    def _add_fault(self, rule: Dict[str, object]) -> None:
        try:
            rules = json.loads(self.faults_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rules = []
        tmp = self.faults_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(rules + [rule]), encoding="utf-8")
        os.replace(tmp, self.faults_file)

    def die_on(self, kind: Optional[str] = None, text: str = "", after: int = 1) -> None:
        """Unplug at an exact point: the emulator SIGKILLs itself when the ``after``-th request
        of ``kind`` whose detail contains ``text`` arrives (counted from now)."""
        self._add_fault({"kind": kind, "text": text, "after": after, "action": "die"})

    def refuse_on(self, kind: Optional[str] = None, text: str = "", after: int = 1) -> None:
        """Refuse matching services (``CLSE``; the client reports ``closed``) from the
        ``after``-th one on, while the phone stays connected."""
        self._add_fault({"kind": kind, "text": text, "after": after, "action": "refuse"})

    def clear_faults(self) -> None:
        try:
            self.faults_file.unlink()
        except FileNotFoundError:
            pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """Unplug: SIGKILL the emulator (not the commands it started)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def device_pids(self) -> List[int]:
        """Processes living in this device's mount namespace (its commands), not the emulator."""
        if self.ns is None:
            return []
        me = self.proc.pid if self.proc is not None else -1
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != me and _mnt_ns(int(name)) == self.ns:
                out.append(int(name))
        return out

    def cleanup(self) -> None:
        """Kill the emulator and every process left in its namespace."""
        self.kill()
        for _ in range(3):
            pids = self.device_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def __enter__(self) -> "Phone":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- device state the host can change while it runs
    def host_path(self, device_path: str) -> Path:
        """The host file behind ``/data/...``, ``/sdcard/...`` or ``/system/...``."""
        rel = os.path.normpath("/" + device_path.lstrip("/")).lstrip("/")
        if rel.split("/", 1)[0] not in ("data", "sdcard", "system"):
            raise ValueError("%s is not under /data, /sdcard or /system" % device_path)
        return self.root / rel

    def set_prop(self, key: str, value: str) -> None:
        self.props[key] = value
        adbd.write_state(str(self.root), self.props, self.battery_temp_c)

    def set_battery_temp(self, celsius: float) -> None:
        self.battery_temp_c = celsius
        adbd.write_state(str(self.root), self.props, self.battery_temp_c)

    def set_governor(self, governor: Optional[str]) -> None:
        self.governor = governor
        adbd.set_governor(str(self.root), governor)


class AdbServer:
    """The real adb server (adbutils' bundled binary) on a private loopback port."""

    def __init__(self, workdir, port: Optional[int] = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.workdir / "server.log"

    @property
    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        for key in ("ANDROID_SERIAL", "ADB_SERVER_SOCKET", "ANDROID_ADB_SERVER_ADDRESS"):
            env.pop(key, None)
        env.update(HOME=str(self.workdir / "home"), ADB_VENDOR_KEYS=str(self.workdir / "keys"),
                   TMPDIR=str(self.workdir / "tmp"), ANDROID_ADB_SERVER_PORT=str(self.port),
                   ADB_MDNS_AUTO_CONNECT="", ADB_LIBUSB="0")
        return env

    def start(self, timeout: float = 20.0) -> "AdbServer":
        for d in ("home", "keys", "tmp"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([str(ADB), "-P", str(self.port), "nodaemon", "server"],
                                         env=self.env, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, start_new_session=True)
        try:
            def up():
                if self.proc.poll() is not None:
                    raise RuntimeError("adb server exited with %s: %s" % (
                        self.proc.returncode, self.log_text()[-2000:]))
                try:
                    return int(host_query(self.port, "host:version", 2), 16) > 0
                except (OSError, ValueError):
                    return False
            _wait(up, timeout, "adb server on port %d" % self.port, interval=0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def client(self, socket_timeout: float = 20.0) -> adbutils.AdbClient:
        return adbutils.AdbClient(host="127.0.0.1", port=self.port, socket_timeout=socket_timeout)

    def adb(self, *args: str, timeout: float = 30.0, input: Optional[bytes] = None
            ) -> subprocess.CompletedProcess:
        """Run the real adb client against this server."""
        return subprocess.run([str(ADB), "-P", str(self.port)] + list(args), env=self.env,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)

    def states(self) -> Dict[str, str]:
        lines = host_query(self.port, "host:devices", 5).splitlines()
        return dict(line.split("\t", 1) for line in lines if "\t" in line)

    def wait_state(self, serial: str, state: Optional[str], timeout: float = 15.0) -> None:
        """Wait until ``serial`` is listed in ``state`` (None: until it is not listed)."""
        _wait(lambda: self.states().get(serial) == state, timeout,
              "%s to be %s" % (serial, state or "gone"), interval=0.1)

    def connect(self, phone: Phone, timeout: float = 15.0) -> str:
        answer = host_query(self.port, "host:connect:" + phone.addr, timeout)
        expected = "failed to authenticate" if phone.unauthorized else "connected to"
        if expected not in answer:
            raise RuntimeError("adb connect %s: %s" % (phone.addr, answer))
        self.wait_state(phone.addr, "unauthorized" if phone.unauthorized else "device", timeout)
        return answer

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                try:
                    self.adb("kill-server", timeout=10)
                except (subprocess.TimeoutExpired, OSError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self.proc = None

    def __enter__(self) -> "AdbServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


