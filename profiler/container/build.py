"""The bench-runner image: its build context (this checkout, an optional SNPE SDK, a pip
wheelhouse), building it on the engine, and reading back what an image holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from profiler import __version__
from profiler.container.engine import OnLog, _first_line
from profiler.errors import ToolError


DEFAULT_BASE_IMAGE = "ubuntu:22.04"


DEFAULT_TAG = f"profiler-bench:{__version__}"


# Context files (relative to the repository root) that make up the image, besides the SDK/wheels.
_CONTEXT_FILES = ("docker/Dockerfile", "docker/entrypoint.sh", "docker/install-os-deps.sh",
                  "docker/requirements-bench.txt", "docker/empty/README.md",
                  "pyproject.toml", "README.md")


_CONTEXT_TREES = ("profiler",)


def source_root() -> Path:
    """The checkout the package runs from (holds docker/Dockerfile), or :class:`ToolError`."""
    root = Path(__file__).resolve().parents[2]
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
    from profiler.phone.snpe.sdk import version_from_files
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
