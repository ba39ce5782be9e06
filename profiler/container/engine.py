"""Docker engine I/O: connecting, running and stopping bench-session containers, and the
host probes a run needs (the adb server socket, USB device groups).

Everything that talks to the engine goes through the ``docker`` Python SDK (imported lazily).
This module never prints: container output goes to ``on_output`` callbacks, failures are
:class:`~profiler.errors.ToolError` with a one-line message. What to run is planned, purely,
in :mod:`profiler.container.plan`; the image is built by :mod:`profiler.container.build`.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Callable, Iterable, List, Optional

from profiler.container.plan import SESSION_LABEL, USB_DIR, RunPlan, create_kwargs
from profiler.errors import ToolError


OnLog = Callable[[str], None]


OnOutput = Callable[[str, bytes], None]


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
