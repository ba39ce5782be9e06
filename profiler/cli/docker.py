"""CLI pieces for containerised sessions (``bench --docker [IMAGE]``, ``profiler docker build``).

The engine I/O lives in :mod:`profiler.container.engine`; this module parses, prints and maps
options. ``bench --docker`` re-runs the *same* ``profiler bench`` command inside the
bench-runner image: every bench option is forwarded, paths are made absolute and mounted at
the same place, and the container's exit code is returned. See docs/docker.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from profiler.container.build import DEFAULT_BASE_IMAGE
from profiler.container.plan import ADB_MODES
from profiler.cli.output import info as _info
from profiler.errors import Interrupted, ProfilerError, ToolError

# Options consumed on the host, never forwarded into the container.
_HOST_ONLY = {"docker", "docker_build", "adb_mode", "docker_user", "docker_snpe_sdk", "docker_env",
              "help", "func"}
_OWN_ADB_PORT = "_docker_owns_adb_port"


def _default_tag() -> str:
    from profiler import __version__
    return f"profiler-bench:{__version__}"


# --- bench --docker -------------------------------------------------------------------------

def add_docker_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench`` for running the session inside a container (not of ``run``, whose
    generate/sample steps need nnabla, which the image does not have)."""
    if not parser.prog.endswith(" bench"):
        return
    g = parser.add_argument_group("docker", "run this bench session inside the bench-runner image "
                                            "(docs/docker.md)")
    g.add_argument("--docker", nargs="?", const=_default_tag(), default=None, metavar="IMAGE",
                   help=f"run the session in a container of IMAGE (default {_default_tag()}); "
                        "models and the results store are mounted at the same paths")
    g.add_argument("--docker-build", action="store_true",
                   help="build IMAGE from this checkout first when it is missing or was built from "
                        "other sources (same base image, SDK and wheels as before)")
    g.add_argument("--adb-mode", choices=ADB_MODES, default="auto",
                   help="how the container reaches phones: usb (pass /dev/bus/usb through; adb server "
                        "inside), host-server (the host's adb server over --network host), none; "
                        "auto: none for --target host, else host-server if one answers, else usb")
    if "--adb-port" not in parser._option_string_actions:  # the phone options may define it
        g.add_argument("--adb-port", type=int, default=None,
                       help="adb server port (default $ANDROID_ADB_SERVER_PORT or 5037)")
        parser.set_defaults(**{_OWN_ADB_PORT: True})
    g.add_argument("--docker-user", default=None, metavar="UID:GID",
                   help="user inside the container (default: yours, so written files are yours)")
    g.add_argument("--docker-snpe-sdk", default=None, metavar="DIR",
                   help="bind-mount this SNPE SDK (read-only, same path) and make it SNPE_ROOT")
    g.add_argument("--docker-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment variable inside the container (repeatable)")
    parser.set_defaults(_docker_parser=parser)


def _long_flag(action: argparse.Action) -> str:
    longs = [s for s in action.option_strings if s.startswith("--")]
    return longs[0] if longs else action.option_strings[0]


_PATH_DEST_SUFFIXES = ("_root", "_dir", "_file", "_path", "_images", "_overrides", "_sdk")


def _host_path(action: argparse.Action, value: Any) -> Optional[str]:
    """The absolute path of an option value that names an existing host file or directory
    (options whose name or metavar says so: --snpe-root, --calibration-images DIR, ...)."""
    if not isinstance(value, str) or not value:
        return None
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if not (action.dest.endswith(_PATH_DEST_SUFFIXES) or metavar in ("FILE", "DIR", "PATH")):
        return None
    path = os.path.expanduser(value)
    return os.path.abspath(path) if os.path.exists(path) else None


def inner_bench_argv(args: argparse.Namespace, parser: argparse.ArgumentParser) -> List[str]:
    """The ``profiler bench`` command line of ``args`` for the container (pure apart from
    checking which path options exist): every bench option that differs from its default,
    host-only docker options left out, paths absolute (see :func:`forwarded_paths`)."""
    argv = ["profiler", "bench", "--models", os.path.abspath(args.models), "--out", os.path.abspath(args.out)]
    for action, value in _forwarded(args, parser):
        flag = _long_flag(action)
        bool_opt = getattr(argparse, "BooleanOptionalAction", None)
        if bool_opt is not None and isinstance(action, bool_opt):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,
                                 argparse._StoreConstAction)):
            argv.append(flag)
        elif isinstance(action, argparse._CountAction):
            argv += [flag] * int(value)
        elif isinstance(action, argparse._AppendAction):
            for item in value:
                argv += [flag, _host_path(action, item) or str(item)]
        elif isinstance(action, argparse._StoreAction):
            if isinstance(value, (list, tuple)):
                argv += [flag, *(_host_path(action, v) or str(v) for v in value)]
            else:
                argv += [flag, _host_path(action, value) or str(value)]
        else:
            raise ToolError(f"{flag}: cannot forward this option into the container")
    return argv


def forwarded_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> List[str]:
    """Host directories that forwarded path options need inside the container (a file's
    directory, or the directory itself), to be mounted read-only at the same path."""
    out: List[str] = []
    for action, value in _forwarded(args, parser):
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            path = _host_path(action, v)
            if path:
                out.append(path if os.path.isdir(path) else os.path.dirname(path))
    return out


def _forwarded(args: argparse.Namespace, parser: argparse.ArgumentParser):
    skip = set(_HOST_ONLY)
    if getattr(args, _OWN_ADB_PORT, False):
        skip.add("adb_port")
    for action in parser._actions:
        dest = action.dest
        if not action.option_strings or dest in skip or dest in ("models", "out") or dest.startswith("_"):
            continue
        if isinstance(action, argparse._HelpAction):
            continue
        value = getattr(args, dest, action.default)
        if value is None or value == action.default:
            continue
        yield action, value


def _parse_env(items: List[str]) -> Dict[str, str]:
    env: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ToolError(f"--docker-env {item}: expected KEY=VALUE")
        env[key] = value
    return env


def _adb_port(args: argparse.Namespace) -> int:
    port = getattr(args, "adb_port", None) or os.environ.get("ANDROID_ADB_SERVER_PORT") or 5037
    try:
        return int(port)
    except ValueError:
        raise ToolError(f"adb server port {port!r}: not a number") from None


def _names_adb_servers(args: argparse.Namespace) -> bool:
    """True when a phone session lists its adb servers (``--adb-server`` or $PROFILER_ADB_SERVERS)
    instead of the one --adb-host/--adb-port."""
    if args.target != "phone":
        return False
    from profiler.phone.adb.session import SERVERS_ENV
    return bool(getattr(args, "adb_server", None) or os.environ.get(SERVERS_ENV, "").strip())


def _check_listed_servers(args: argparse.Namespace) -> None:
    """Every listed adb server must answer here, as it must inside (the container shares this
    host's network); one line naming the first that does not."""
    from profiler.cli.phone import adb_servers
    from profiler.phone.adb import open_client
    for server_host, server_port in adb_servers(args):
        open_client(server_host, server_port, socket_timeout=10)


def _write(stream: str, data: bytes) -> None:
    out = sys.stdout if stream == "stdout" else sys.stderr
    try:
        out.buffer.write(data)
    except AttributeError:  # a text-only stream (tests capture)
        out.write(data.decode(errors="replace"))
    out.flush()


def _refresh_image(client: Any, image: str, quiet: bool) -> None:
    """``--docker-build``: (re)build ``image`` unless it was built from these very sources."""
    from profiler.container import build as cbuild
    current = cbuild.source_hash(cbuild.source_root())
    build: Dict[str, Any] = {}
    if cbuild.image_exists(client, image):
        info = cbuild.find_image(client, image)
        if info.source == current:
            return
        build, reason = info.build, "built from other sources"
    else:
        reason = "not found"
    spec = cbuild.BuildSpec(base_image=build.get("base_image") or cbuild.DEFAULT_BASE_IMAGE, tag=image,
                        snpe_sdk=Path(build["snpe_sdk"]) if build.get("snpe_sdk") else None,
                        wheels=Path(build["wheels"]) if build.get("wheels") else None)
    _info(f"docker: building {image} from this checkout ({reason}; base {spec.base_image})")
    cbuild.build_image(client, spec, on_log=None if quiet else (lambda line: _info(f"  {line}")))


def _make_dirs_for(path: Path, user: str) -> None:
    """Create ``path`` here (the engine would create a missing mount source as root); as root
    with a numeric ``--docker-user``, hand the new directories to that user."""
    new = []
    p = path
    while not p.exists():
        new.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    uid, _, gid = user.partition(":")
    if new and os.geteuid() == 0 and uid.isdigit() and (not gid or gid.isdigit()):
        for d in new:
            os.chown(d, int(uid), int(gid) if gid else -1)


def _stale_note(info: Any) -> Optional[str]:
    from profiler.container import build as cbuild
    try:
        current = cbuild.source_hash(cbuild.source_root())
    except ToolError:
        return None
    if info.source and info.source != current:
        return (f"note: {info.ref} was built from other profiler sources ({info.source} != {current}); "
                "add --docker-build to rebuild it")
    return None


def _sigterm_raises_interrupt():
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def _kept(out: Path) -> str:
    """What the store the container wrote holds, for the Ctrl-C line."""
    from profiler.session.store import read_store
    try:
        return f"{out} holds {len(read_store(out).latest())} results"
    except (ProfilerError, OSError):
        return f"{out} holds what was stored before the interrupt"


def bench_in_docker(args: argparse.Namespace) -> int:
    """``profiler bench ... --docker IMAGE``: the same session inside a container."""
    import signal

    from profiler.container import build as cbuild, engine as cengine, plan as cplan
    parser = getattr(args, "_docker_parser", None)
    if parser is None:
        raise ToolError("--docker: only 'profiler bench' runs in a container")
    client = cengine.connect()
    image = args.docker
    if args.docker_build:
        _refresh_image(client, image, args.quiet)
    info = cbuild.find_image(client, image)
    note = _stale_note(info)
    if note:
        _info(note)
    if args.target == "host" and info.runtimes:
        for rt in [r.strip() for r in args.runtime.split(",") if r.strip()]:
            if rt not in info.runtimes:
                raise ToolError(f"--runtime {rt}: not available in {image} (it has {', '.join(info.runtimes)}; "
                                "NNABLA_CPU needs nnabla, so run it without --docker)")
    port = _adb_port(args)
    host = getattr(args, "adb_host", None) or os.environ.get("ANDROID_ADB_SERVER_HOST") or "127.0.0.1"
    env = _parse_env(args.docker_env)
    if _names_adb_servers(args):
        from profiler.phone.adb.session import SERVERS_ENV
        mode = cplan.resolve_adb_mode(args.adb_mode, args.target, lambda: True, listed_servers=True)
        _check_listed_servers(args)
        if SERVERS_ENV in os.environ:  # inside, as here, --adb-server wins over it
            env.setdefault(SERVERS_ENV, os.environ[SERVERS_ENV])
    else:
        mode = cplan.resolve_adb_mode(args.adb_mode, args.target, lambda: cengine.adb_server_answers(port, host))
        if mode != "none":
            cengine.check_adb(mode, port, host=host)
    user = args.docker_user or f"{os.getuid()}:{os.getgid()}"
    out = Path(os.path.abspath(args.out))
    _make_dirs_for(out.parent, user)
    if os.environ.get("ANDROID_SERIAL") and "ANDROID_SERIAL" not in env:
        env["ANDROID_SERIAL"] = os.environ["ANDROID_SERIAL"]
    extra = forwarded_paths(args, parser)
    tty = sys.stderr.isatty()
    size = None
    if tty:
        try:
            cols, rows = os.get_terminal_size(sys.stderr.fileno())
            size = (rows, cols) if rows > 0 and cols > 0 else None
        except OSError:
            pass
    plan = cplan.plan_bench_run(image, inner_bench_argv(args, parser), Path(args.models), out, user=user,
                             adb_mode=mode, adb_port=port, adb_host=host,
                             snpe_sdk=Path(args.docker_snpe_sdk) if args.docker_snpe_sdk else None,
                             extra_dirs=extra, environment=env, home=Path.home(),
                             usb_gids=cengine.usb_device_gids() if mode == "usb" else (), tty=tty, tty_size=size)
    if not args.quiet:
        mounts = ", ".join(f"{m.target}{'' if m.read_only else ' (rw)'}" for m in plan.mounts)
        _info(f"docker: {image} ({info.id.split(':')[-1][:12]}) as {user}, adb {mode}, network "
              f"{plan.network_mode}; mounts {mounts}")
    old = _sigterm_raises_interrupt()
    try:
        return cengine.run_container(client, plan, on_output=_write)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: the container was stopped; {_kept(out)}; re-run with --resume "
                          "to continue") from None
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


# --- profiler docker ... ------------------------------------------------------------------

def add_docker_commands(sub) -> None:
    """The ``docker`` subcommand group: ``profiler docker build``."""
    d = sub.add_parser("docker", help="the bench-runner Docker image (docs/docker.md)")
    dsub = d.add_subparsers(dest="docker_command", metavar="COMMAND")
    dsub.required = True
    b = dsub.add_parser("build", help="build the bench-runner image from this checkout")
    b.add_argument("--base-image", default=DEFAULT_BASE_IMAGE,
                   help=f"base image, local or pullable; Debian/Ubuntu with glibc >= 2.28 and "
                        f"Python 3.8-3.12 or none (default {DEFAULT_BASE_IMAGE})")
    b.add_argument("--snpe-sdk", metavar="DIR",
                   help="unpacked SNPE/QAIRT SDK root (with bin/ and lib/) to copy into the image "
                        "(never downloaded; without it, mount one at run time)")
    b.add_argument("--tag", default=None, help=f"image name (default {_default_tag()})")
    b.add_argument("--wheels", metavar="DIR",
                   help="install the image's Python packages from this wheelhouse only (no index); "
                        "when DIR has no wheels, fill it first with 'pip download' on this host")
    b.add_argument("--python-version", metavar="X.Y",
                   help="Python of the image, for filling --wheels when the base image has no python3")
    b.add_argument("--no-cache", action="store_true", help="do not reuse cached layers")
    b.add_argument("-q", "--quiet", action="store_true", help="no build log")
    b.set_defaults(func=cmd_docker_build)


def cmd_docker_build(args: argparse.Namespace) -> int:
    from profiler.container import build as cbuild, engine as cengine
    client = cengine.connect()
    tag = args.tag or cbuild.DEFAULT_TAG
    wheels = Path(args.wheels).expanduser().resolve() if args.wheels else None
    if wheels is not None and cbuild.wheel_count(wheels) == 0:
        version = args.python_version
        if not version:
            cbuild.ensure_base_image(client, args.base_image, _info)
            version = cbuild.python_in_image(client, args.base_image)
        if not version:
            raise ToolError(f"{args.base_image} has no python3; pass --python-version X.Y (the Python "
                            "its distribution installs) to fill --wheels")
        _info(f"docker: filling {wheels} with wheels for Python {version} (pip download)")
        n = cbuild.download_wheels(wheels, version)
        _info(f"docker: {n} wheels in {wheels}")
    spec = cbuild.BuildSpec(base_image=args.base_image, tag=tag,
                        snpe_sdk=Path(args.snpe_sdk) if args.snpe_sdk else None,
                        wheels=wheels, no_cache=args.no_cache)
    info = cbuild.build_image(client, spec, on_log=None if args.quiet else (lambda line: _info(f"  {line}")))
    python = cbuild.python_in_image(client, info.ref)
    build = info.build
    sdk = build.get("snpe_version") or ("yes" if build.get("snpe_sdk") else "none")
    _info(f"built {info.ref} ({info.id.split(':')[-1][:12]}, {info.size / 1e6:.0f} MB) from {args.base_image}: "
          f"Python {python or '?'}, SNPE SDK {sdk}{', wheels from ' + str(wheels) if wheels else ''}")
    return 0
