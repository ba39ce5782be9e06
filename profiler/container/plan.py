"""Pure planning of a containerised bench session: mounts, user, adb mode and devices.

A containerised session sees the host's files at the **same absolute paths** (models, the
files its manifest names, the results store's directory), runs as the caller's uid:gid, and
reaches phones either through ``/dev/bus/usb`` (an adb server inside the container) or through
an adb server on the host's loopback (``--network host``). See docs/docker.md.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from profiler import __version__
from profiler.errors import ToolError


SESSION_LABEL = "profiler.session"  # on every container a session starts


CONTAINER_HOME = "/profiler-home"  # HOME inside when the host's ~/.android is mounted


USB_DIR = "/dev/bus/usb"


USB_CGROUP_RULE = "c 189:* rmw"  # USB device nodes (major 189), replugged phones included


ADB_DEFAULT_PORT = 5037


ADB_MODES = ("auto", "none", "usb", "host-server")


# Paths a bind mount must never cover: it would hide the image's own files.
_RESERVED = ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/opt", "/proc",
             "/run", "/sbin", "/sys", "/usr", "/var", "/opt/profiler-venv", "/opt/sdk", "/opt/snpe")


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
    from profiler.models.manifest import entry_file, read_manifest
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


def resolve_adb_mode(requested: str, target: str, server_answers: Callable[[], bool],
                     listed_servers: bool = False) -> str:
    """``auto``: none for the host target; for phones an adb server on the host if one answers,
    else USB passthrough with an adb server inside the container. ``listed_servers`` (the
    session names its servers, ``--adb-server``): host-server, the only mode that reaches them."""
    if requested not in ADB_MODES:
        raise ToolError(f"--adb-mode {requested}: choose from {', '.join(ADB_MODES)}")
    if listed_servers:
        if requested in ("usb", "none"):
            raise ToolError(f"--adb-mode {requested} with --adb-server (or $PROFILER_ADB_SERVERS): the "
                            "container reaches listed adb servers over this host's network only; use "
                            "--adb-mode host-server (or auto)")
        return "host-server"
    if requested != "auto":
        return requested
    if target == "host":
        return "none"
    return "host-server" if server_answers() else "usb"


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
        from profiler.container.build import check_snpe_sdk
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
