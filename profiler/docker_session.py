"""Docker engine I/O: the bench-runner image and bench sessions run inside a container.

Everything that talks to the engine goes through the ``docker`` Python SDK (imported lazily).
This module never prints: build and container output go to ``on_log``/``on_output`` callbacks,
failures are :class:`~profiler.errors.ToolError` with a one-line message.

A containerised session sees the host's files at the **same absolute paths** (models, the
files its manifest names, the results store's directory), runs as the caller's uid:gid, and
reaches phones either through ``/dev/bus/usb`` (an adb server inside the container) or through
an adb server on the host's loopback (``--network host``). See docs/docker.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from profiler import __version__
from profiler.errors import ToolError

DEFAULT_BASE_IMAGE = "ubuntu:22.04"
DEFAULT_TAG = f"profiler-bench:{__version__}"
SESSION_LABEL = "profiler.session"  # on every container a session starts
CONTAINER_HOME = "/profiler-home"  # HOME inside when the host's ~/.android is mounted
USB_DIR = "/dev/bus/usb"
USB_CGROUP_RULE = "c 189:* rmw"  # USB device nodes (major 189), replugged phones included
ADB_DEFAULT_PORT = 5037
ADB_MODES = ("auto", "none", "usb", "host-server")

# Context files (relative to the repository root) that make up the image, besides the SDK/wheels.
_CONTEXT_FILES = ("docker/Dockerfile", "docker/entrypoint.sh", "docker/install-os-deps.sh",
                  "docker/requirements-bench.txt", "docker/empty/README.md",
                  "pyproject.toml", "README.md")
_CONTEXT_TREES = ("profiler",)
# Paths a bind mount must never cover: it would hide the image's own files.
_RESERVED = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/opt", "/proc",
             "/run", "/sbin", "/sys", "/usr", "/var", "/opt/profiler-venv", "/opt/sdk", "/opt/snpe")

OnLog = Callable[[str], None]
OnOutput = Callable[[str, bytes], None]


# --- engine -------------------------------------------------------------------------------

def engine_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _first_line(err: BaseException, limit: int = 240) -> str:
    explanation = getattr(err, "explanation", None)  # APIError: the engine's own message
    text = " ".join(str(explanation or err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unreachable_message(err: BaseException) -> str:
    """One line saying the engine cannot be reached, why, and what to do (pure)."""
    text = str(err)
    where = engine_address()
    if "Permission denied" in text or "PermissionError" in text:
        hint = ("no permission on the docker socket: add your user to the 'docker' group "
                "(then log in again) or run as root")
    elif any(s in text for s in ("No such file", "FileNotFoundError", "Connection refused",
                                 "ConnectionRefused", "Name or service not known")):
        hint = ("is the docker engine running? start it ('systemctl start docker' or 'dockerd &') "
                "or set DOCKER_HOST")
    else:
        hint = _first_line(err)
    return f"docker engine not reachable at {where}: {hint}"


def connect(timeout: float = 60.0) -> Any:
    """A ``docker.DockerClient`` talking to a live engine, or :class:`ToolError`."""
    try:
        import docker
        import docker.errors
    except ImportError:
        raise ToolError("the 'docker' Python package is missing (pip install 'docker>=6')") from None
    try:
        client = docker.from_env(timeout=int(timeout))
        client.ping()
    except docker.errors.DockerException as e:
        raise ToolError(unreachable_message(e)) from None
    except Exception as e:  # noqa: BLE001 - requests/urllib3 errors from ping
        raise ToolError(unreachable_message(e)) from None
    return client


# --- sources, build context and build -----------------------------------------------------

def source_root() -> Path:
    """The checkout the package runs from (holds docker/Dockerfile), or :class:`ToolError`."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "docker" / "Dockerfile").is_file() or not (root / "pyproject.toml").is_file():
        raise ToolError(f"{root}: no docker/Dockerfile next to the profiler package; building the "
                        "image needs a source checkout of profiler")
    return root


def _skip(name: str) -> bool:
    return name == "__pycache__" or name.endswith((".pyc", ".pyo")) or name.startswith(".#")


def context_files(root: Path) -> List[Tuple[Path, str]]:
    """(file, name in the context) for the image's sources, sorted, SDK and wheels excluded."""
    out = [(root / rel, rel) for rel in _CONTEXT_FILES]
    for tree in _CONTEXT_TREES:
        for dirpath, dirnames, filenames in os.walk(root / tree):
            dirnames[:] = sorted(d for d in dirnames if not _skip(d))
            for name in sorted(filenames):
                if not _skip(name):
                    path = Path(dirpath) / name
                    out.append((path, path.relative_to(root).as_posix()))
    missing = [str(p) for p, _ in out if not p.is_file()]
    if missing:
        raise ToolError(f"build context incomplete: {', '.join(missing[:3])} missing")
    return sorted(out, key=lambda t: t[1])


def source_hash(root: Path) -> str:
    """sha256 (16 hex) over the image's source files: names and contents."""
    h = hashlib.sha256()
    for path, name in context_files(root):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _tar_filter(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
    if any(_skip(part) for part in info.name.split("/")):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def check_snpe_sdk(path: Path) -> Path:
    """An SNPE/QAIRT SDK root (with bin/ and lib/), resolved, or :class:`ToolError`."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ToolError(f"{root}: SNPE SDK directory does not exist")
    if not (root / "bin").is_dir() or not (root / "lib").is_dir():
        raise ToolError(f"{root}: not an SNPE SDK root (expected bin/ and lib/ inside; point at the "
                        "folder containing bin/x86_64-linux-clang)")
    return root.resolve()


def snpe_version(root: Path) -> Optional[str]:
    from profiler.snpe.sdk import version_from_files
    try:
        v = version_from_files(root)
    except ToolError:
        return None
    return str(v) if v is not None else None


def wheel_count(path: Path) -> int:
    return len(list(Path(path).glob("*.whl"))) if Path(path).is_dir() else 0


def write_context(fileobj: Any, root: Path, snpe_sdk: Optional[Path], wheels: Optional[Path]) -> Dict[str, str]:
    """Write the build context tar to ``fileobj``; return the build args that point into it."""
    args: Dict[str, str] = {}
    with tarfile.open(fileobj=fileobj, mode="w") as tar:
        for path, name in context_files(root):
            tar.add(str(path), arcname=name, recursive=False, filter=_tar_filter)
        if wheels is not None:
            for whl in sorted(Path(wheels).glob("*.whl")):
                tar.add(str(whl), arcname=f"wheels/{whl.name}", filter=_tar_filter)
            args["WHEELS"] = "wheels"
        if snpe_sdk is not None:
            tar.add(str(snpe_sdk), arcname="snpe-sdk", recursive=True, filter=_tar_filter)
            args["SNPE_SDK"] = "snpe-sdk"
            args["SNPE_DIRNAME"] = snpe_sdk.name
    return args


@dataclass
class BuildSpec:
    base_image: str = DEFAULT_BASE_IMAGE
    tag: str = DEFAULT_TAG
    snpe_sdk: Optional[Path] = None
    wheels: Optional[Path] = None
    no_cache: bool = False


@dataclass
class ImageInfo:
    ref: str
    id: str
    labels: Dict[str, str]
    size: int = 0

    @property
    def source(self) -> str:
        return self.labels.get("profiler.source", "")

    @property
    def build(self) -> Dict[str, Any]:
        try:
            return json.loads(self.labels.get("profiler.build") or "{}")
        except ValueError:
            return {}

    @property
    def runtimes(self) -> List[str]:
        return [r for r in self.labels.get("profiler.runtimes", "").split(",") if r]


def find_image(client: Any, ref: str) -> ImageInfo:
    """The local image ``ref``, or :class:`ToolError` saying how to build it."""
    import docker.errors
    try:
        img = client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise ToolError(f"docker image {ref!r} not found locally; build it with "
                        f"'profiler docker build --tag {ref}' (or add --docker-build)") from None
    except docker.errors.APIError as e:
        raise ToolError(f"docker image {ref!r}: {_first_line(e)}") from None
    return ImageInfo(ref, img.id, dict(img.labels or {}), int(img.attrs.get("Size") or 0))


def image_exists(client: Any, ref: str) -> bool:
    try:
        find_image(client, ref)
        return True
    except ToolError:
        return False


def ensure_base_image(client: Any, ref: str, on_log: Optional[OnLog] = None) -> None:
    """Use ``ref`` if local, else pull it; :class:`ToolError` when neither works."""
    import docker.errors
    try:
        client.images.get(ref)
        return
    except docker.errors.ImageNotFound:
        pass
    if on_log:
        on_log(f"base image {ref} is not local; pulling it")
    try:
        client.images.pull(ref)
    except docker.errors.DockerException as e:
        raise ToolError(f"base image {ref!r} is not available locally and could not be pulled "
                        f"({_first_line(e, 160)}); pass --base-image with a local image "
                        "(docs/docker.md: building one without a registry)") from None


def python_in_image(client: Any, ref: str) -> Optional[str]:
    """``major.minor`` of the image's ``python3`` (None when it has none)."""
    import docker.errors
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        out = client.containers.run(ref, entrypoint=["python3", "-c", code], remove=True,
                                    network_mode="none", stdout=True, stderr=False)
    except docker.errors.DockerException:
        return None
    text = out.decode(errors="replace").strip() if isinstance(out, bytes) else str(out).strip()
    return text if text.count(".") == 1 else None


def _manylinux_platforms(machine: str) -> List[str]:
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine.lower())
    return [f"manylinux_2_28_{arch}", f"manylinux_2_27_{arch}", f"manylinux_2_17_{arch}",
            f"manylinux2014_{arch}", f"manylinux1_{arch}"]


def download_wheels(dest: Path, python_version: str, machine: Optional[str] = None) -> int:
    """Fill ``dest`` with wheels of docker/requirements-bench.txt for CPython ``X.Y`` (pip
    download on this host, binary wheels only); return how many wheels it holds."""
    req = source_root() / "docker" / "requirements-bench.txt"
    major, minor = python_version.split(".")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", f"{major}.{minor}",
           "--abi", f"cp{major}{minor}", "-d", str(dest), "-r", str(req)]
    for plat in _manylinux_platforms(machine or platform.machine()):
        cmd += ["--platform", plat]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(l for l in proc.stderr.strip().splitlines() if "WARNING" not in l)[-300:]
        raise ToolError(f"pip download of the image's wheels (Python {python_version}) failed: {tail}")
    return wheel_count(dest)


def build_image(client: Any, spec: BuildSpec, on_log: Optional[OnLog] = None) -> ImageInfo:
    """Build the bench-runner image from this checkout (classic builder, layer cache kept)."""
    import docker.errors
    root = source_root()
    sdk = check_snpe_sdk(spec.snpe_sdk) if spec.snpe_sdk else None
    wheels = Path(spec.wheels).expanduser().resolve() if spec.wheels else None
    if wheels is not None and wheel_count(wheels) == 0:
        raise ToolError(f"{wheels}: no wheels in it (see docs/docker.md for filling a wheelhouse)")
    ensure_base_image(client, spec.base_image, on_log)
    record = {"base_image": spec.base_image, "snpe_sdk": str(sdk) if sdk else None,
              "snpe_version": snpe_version(sdk) if sdk else None,
              "wheels": str(wheels) if wheels else None, "profiler": __version__}
    with tempfile.TemporaryFile(prefix="profiler-docker-context-") as ctx:
        buildargs = write_context(ctx, root, sdk, wheels)
        buildargs.update(BASE_IMAGE=spec.base_image, PROFILER_SOURCE=source_hash(root),
                         PROFILER_BUILD=json.dumps(record, sort_keys=True))
        ctx.seek(0)
        last: List[str] = []
        try:
            for chunk in client.api.build(fileobj=ctx, custom_context=True, dockerfile="docker/Dockerfile",
                                          tag=spec.tag, buildargs=buildargs, rm=True, forcerm=True,
                                          nocache=spec.no_cache, pull=False, decode=True):
                if "error" in chunk:
                    detail = (chunk.get("errorDetail") or {}).get("message") or chunk["error"]
                    context = " | ".join(l for l in last[-3:] if l)
                    raise ToolError(f"docker build failed: {' '.join(detail.split())}"
                                    + (f" (last output: {context[-400:]})" if context else ""))
                text = chunk.get("stream") or chunk.get("status") or ""
                for line in text.splitlines():
                    line = line.rstrip()
                    if line:
                        last.append(line)
                        del last[:-10]
                        if on_log:
                            on_log(line)
        except docker.errors.DockerException as e:
            raise ToolError(f"docker build failed: {_first_line(e)}") from None
    return find_image(client, spec.tag)


# --- planning a containerised session (pure, apart from reading the manifest) ------------

@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


@dataclass
class RunPlan:
    """Everything ``containers.create`` needs, decided before touching the engine."""

    image: str
    command: List[str]
    mounts: List[Mount]
    user: str
    working_dir: str
    adb_mode: str
    network_mode: str = "none"
    environment: Dict[str, str] = field(default_factory=dict)
    group_add: List[str] = field(default_factory=list)
    device_cgroup_rules: List[str] = field(default_factory=list)
    hostname: Optional[str] = None
    tty: bool = False
    tty_size: Optional[Tuple[int, int]] = None  # (rows, columns)
    labels: Dict[str, str] = field(default_factory=dict)


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _check_mountable(path: str) -> None:
    for reserved in _RESERVED:
        if path == reserved or (reserved != "/" and _under(reserved, path)):
            raise ToolError(f"{path}: cannot be mounted into the container (it would hide the image's "
                            f"own {reserved}); keep models and results under a work directory")


def plan_mounts(paths: Iterable[Tuple[str, bool]]) -> List[Mount]:
    """Bind mounts (same path inside) for (absolute dir, writable) pairs, minimal and ordered.

    A directory under another mounted one is dropped unless it must be writable inside a
    read-only one (then both are kept; the engine mounts parents first).
    """
    wanted: Dict[str, bool] = {}
    for path, writable in paths:
        p = os.path.normpath(path)
        if not os.path.isabs(p):
            raise ValueError(f"mount path must be absolute: {path}")
        _check_mountable(p)
        wanted[p] = wanted.get(p, False) or writable
    keep: List[Mount] = []
    for p in sorted(wanted, key=lambda s: (s.count("/"), s)):
        covering = [m for m in keep if _under(p, m.target)]
        if covering and (not wanted[p] or any(not m.read_only for m in covering)):
            continue
        keep.append(Mount(p, p, not wanted[p]))
    return keep


def _dirs_of(path: Path) -> List[str]:
    """The directory holding ``path`` and, when a symlink leads elsewhere, its target's."""
    absolute = Path(os.path.abspath(path))
    out = [str(absolute.parent)]
    real = Path(os.path.realpath(absolute))
    if real.parent != absolute.parent:
        out.append(str(real.parent))
    return out


def bench_paths(models: Path, out: Path) -> List[Tuple[str, bool]]:
    """Host directories a bench session over ``models`` into ``out`` reads (ro) and writes (rw)."""
    from profiler.manifest import entry_file, read_manifest
    doc = read_manifest(models)
    models_dir = os.path.abspath(doc["_dir"])
    paths: List[Tuple[str, bool]] = [(models_dir, False)]
    real = os.path.realpath(models_dir)
    if real != models_dir:
        paths.append((real, False))
    for entry in doc["entries"]:
        for kind in entry.get("files", {}):
            for d in _dirs_of(entry_file(doc, entry, kind)):
                paths.append((d, False))
    for d in _dirs_of(out):
        paths.append((d, True))
    return paths


def resolve_adb_mode(requested: str, target: str, server_answers: Callable[[], bool]) -> str:
    """``auto``: none for the host target; for phones an adb server on the host if one answers,
    else USB passthrough with an adb server inside the container."""
    if requested not in ADB_MODES:
        raise ToolError(f"--adb-mode {requested}: choose from {', '.join(ADB_MODES)}")
    if requested != "auto":
        return requested
    if target == "host":
        return "none"
    return "host-server" if server_answers() else "usb"


def adb_server_answers(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """True when an adb server answers ``host:version`` at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"000chost:version")
            return s.recv(4) == b"OKAY"
    except OSError:
        return False


def check_adb(mode: str, port: int, server_answers: Optional[Callable[[], bool]] = None,
              host: str = "127.0.0.1") -> None:
    """:class:`ToolError` when ``mode`` cannot work here: ``usb`` needs /dev/bus/usb and no adb
    server on the host (only one server may own the phones' USB interfaces); ``host-server``
    needs one answering at ``host``:``port``."""
    answers = server_answers or (lambda: adb_server_answers(port, "127.0.0.1" if mode == "usb" else host))
    if mode == "usb":
        if not os.path.isdir(USB_DIR):
            raise ToolError(f"--adb-mode usb: this host has no {USB_DIR} (no USB bus to pass through); "
                            "use --adb-mode host-server")
        if answers():
            raise ToolError(f"--adb-mode usb: an adb server runs on this host (127.0.0.1:{port}) and owns "
                            "the phones' USB interfaces; stop it ('adb kill-server') or use "
                            "--adb-mode host-server")
    elif mode == "host-server" and not answers():
        raise ToolError(f"--adb-mode host-server: no adb server answers at {host}:{port}; start one "
                        "('adb start-server') or use --adb-mode usb")


def usb_device_gids(root: str = USB_DIR) -> List[int]:
    """Groups owning the host's USB device nodes (udev rules often give them to plugdev)."""
    gids = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                gids.add(os.stat(os.path.join(dirpath, name)).st_gid)
            except OSError:
                pass
    return sorted(gids)


def plan_bench_run(image: str, command: Sequence[str], models: Path, out: Path, *, user: str,
                   adb_mode: str = "none", adb_port: int = ADB_DEFAULT_PORT, adb_host: str = "127.0.0.1",
                   snpe_sdk: Optional[Path] = None, extra_dirs: Sequence[str] = (),
                   environment: Optional[Dict[str, str]] = None, home: Optional[Path] = None,
                   usb_gids: Sequence[int] = (), tty: bool = False,
                   tty_size: Optional[Tuple[int, int]] = None) -> RunPlan:
    """The container for one bench session: ``command`` (``profiler bench ...`` with absolute
    paths) over host directories mounted at the same paths, as ``user`` (``UID:GID``)."""
    paths = bench_paths(models, out) + [(os.path.abspath(d), False) for d in extra_dirs]
    env = {"PROFILER_DOCKER_IMAGE": image}
    sdk = None
    if snpe_sdk is not None:
        sdk = check_snpe_sdk(snpe_sdk)
        paths.append((str(sdk), False))
        env["SNPE_ROOT"] = str(sdk)
    labels = {SESSION_LABEL: "bench", "profiler.version": __version__}
    plan = RunPlan(image=image, command=list(command), mounts=[], user=user,
                   working_dir=os.path.dirname(os.path.abspath(out)), adb_mode=adb_mode,
                   hostname=platform.node() or None, tty=tty, tty_size=tty_size, labels=labels)
    if adb_mode == "host-server":
        plan.network_mode = "host"  # the host's loopback, where its adb server listens
        plan.hostname = None  # not allowed with --network host (the host's own name is used)
        env.update(ANDROID_ADB_SERVER_HOST=adb_host, ANDROID_ADB_SERVER_PORT=str(adb_port))
    elif adb_mode == "usb":
        plan.network_mode = "bridge"  # adb over TCP/IP (adb connect) still works
        plan.device_cgroup_rules = [USB_CGROUP_RULE]
        env["ANDROID_ADB_SERVER_PORT"] = str(adb_port)
        uid_gid = user.split(":")
        own_gid = uid_gid[1] if len(uid_gid) > 1 else ""
        if uid_gid[0] not in ("0", "root"):
            plan.group_add = [str(g) for g in usb_gids if str(g) not in ("0", own_gid)]
        if home is not None and (Path(home) / ".android").is_dir():
            env["HOME"] = CONTAINER_HOME  # the phones already trust this host's adb key
    elif adb_mode != "none":
        raise ToolError(f"--adb-mode {adb_mode}: choose from {', '.join(ADB_MODES)}")
    env.update(environment or {})
    plan.environment = env
    mounts = plan_mounts(paths)
    if adb_mode == "usb":
        mounts.append(Mount(USB_DIR, USB_DIR, False))
        if env.get("HOME") == CONTAINER_HOME and home is not None:
            mounts.append(Mount(str(Path(home) / ".android"), f"{CONTAINER_HOME}/.android", False))
    plan.mounts = mounts
    return plan


# --- running ------------------------------------------------------------------------------

def create_kwargs(plan: RunPlan) -> Dict[str, Any]:
    """``containers.create`` keyword arguments for ``plan``."""
    import docker.types
    kw: Dict[str, Any] = dict(
        image=plan.image, command=plan.command, user=plan.user, environment=plan.environment,
        mounts=[docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
                for m in plan.mounts],
        working_dir=plan.working_dir, network_mode=plan.network_mode, labels=plan.labels,
        tty=plan.tty, init=True, stop_signal="SIGINT", detach=True)
    if plan.hostname:
        kw["hostname"] = plan.hostname
    if plan.group_add:
        kw["group_add"] = plan.group_add
    if plan.device_cgroup_rules:
        kw["device_cgroup_rules"] = plan.device_cgroup_rules
    return kw


def run_container(client: Any, plan: RunPlan, on_output: OnOutput,
                  on_started: Optional[Callable[[str], None]] = None, stop_timeout: float = 30.0) -> int:
    """Run ``plan``, stream its output to ``on_output(stream, data)`` (``stream`` is
    ``"stdout"``/``"stderr"``, or ``"tty"`` for a terminal), return its exit code and remove it.

    On KeyboardInterrupt the container gets SIGINT (the session inside saves what it measured
    and exits), is killed after ``stop_timeout`` seconds (or at a second interrupt), removed,
    and the interrupt is re-raised.
    """
    import docker.errors
    try:
        container = client.containers.create(**create_kwargs(plan))
    except docker.errors.ImageNotFound:
        raise ToolError(f"docker image {plan.image!r} not found locally; build it with "
                        f"'profiler docker build --tag {plan.image}'") from None
    except docker.errors.APIError as e:
        raise ToolError(f"cannot create the container: {_first_line(e)}") from None
    try:
        # Attach before starting (as `docker run` does): attaching to a container that has
        # already exited can block forever, and nothing printed early is lost.
        stream = container.attach(stdout=True, stderr=True, stream=True, logs=True, demux=not plan.tty)
        try:
            container.start()
        except docker.errors.APIError as e:
            raise ToolError(f"cannot start the container: {_first_line(e)}") from None
        if on_started:
            on_started(container.id)
        if plan.tty and plan.tty_size:
            try:
                client.api.resize(container.id, height=plan.tty_size[0], width=plan.tty_size[1])
            except docker.errors.APIError:
                pass
        try:
            _pump(stream, plan.tty, on_output)
            return int(container.wait().get("StatusCode", 1))
        except KeyboardInterrupt:
            stop_container(container, stop_timeout)
            raise
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass


def _pump(stream: Iterable[Any], tty: bool, on_output: OnOutput) -> None:
    for chunk in stream:
        if tty:
            if chunk:
                on_output("tty", chunk)
            continue
        out, err = chunk
        if out:
            on_output("stdout", out)
        if err:
            on_output("stderr", err)


def stop_container(container: Any, timeout: float) -> None:
    """SIGINT (what Ctrl-C would do), then SIGKILL after ``timeout`` s or a second interrupt."""
    import docker.errors
    try:
        container.kill(signal="SIGINT")
        container.wait(timeout=timeout)
        return
    except KeyboardInterrupt:
        pass
    except docker.errors.DockerException:
        pass
    except Exception:  # noqa: BLE001 - requests' ReadTimeout when it does not stop in time
        pass
    try:
        container.kill()
    except docker.errors.DockerException:
        pass


def session_containers(client: Any) -> List[str]:
    """Ids of containers (running or not) that bench sessions started."""
    return [c.id for c in client.containers.list(all=True, filters={"label": SESSION_LABEL})]
