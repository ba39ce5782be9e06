"""Fixtures for the tests on a real Docker engine: the engine, a small local base image, a
wheelhouse and the bench-runner image built from docker/Dockerfile. Test modules import them.

Nothing here starts an engine (``.ci/run`` does): without one, or without a way to make the base
image, the engine tests are skipped with the reason (``pytest -ra`` prints it).

* Base image: ``$PROFILER_TEST_BASE_IMAGE`` if set (any local Debian/Ubuntu image), else
  ``profiler-test-base:bookworm-1``, made once per machine with ``debootstrap --variant=minbase
  bookworm`` (python3, python3-venv, adb, ca-certificates included) and ``docker import``
  (needs root and debootstrap; the Debian mirror is ``$PROFILER_TEST_DEBIAN_MIRROR``).
* Wheelhouse: ``pip download`` on the host, cached in ``~/.cache/profiler/docker-test/`` (the
  build never needs an index, and HTTPS from containers may be intercepted by a proxy).
* Runner image: ``profiler-bench:test``, rebuilt only when the sources' hash changes (the layer
  cache keeps the base and venv layers).
* Phone image: ``profiler-bench:test-phone``, the runner image plus ``onnx`` (for the fake SDK's
  ``snpe-onnx-to-dlc``, as a real SDK's converter needs it too), from a second cached
  wheelhouse; rebuilt only when the runner image changes.

The directory has no ``__init__.py`` on purpose: pytest would import it as the top-level
package ``docker`` and shadow the docker SDK. Without a package, a ``conftest.py`` here would
take the module name ``conftest`` from ``tests/conftest.py`` (other tests import it by that
name), hence this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

BASE_TAG = "profiler-test-base:bookworm-1"
IMAGE_TAG = "profiler-bench:test"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "profiler" / "docker-test"
DEBOOTSTRAP_PACKAGES = "python3,python3-venv,adb,ca-certificates"


def _log(msg: str) -> None:
    print(f"[docker tests] {msg}", flush=True)


@pytest.fixture(scope="session")
def docker_client():
    from profiler.container import build as cbuild, engine as cengine
    from profiler.errors import ToolError
    try:
        return cengine.connect(timeout=60)
    except ToolError as e:
        pytest.skip(f"docker engine tests skipped: {e}")


def _debootstrap_base(client, tag: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("docker engine tests skipped: making the base image needs root (debootstrap); "
                    "or set PROFILER_TEST_BASE_IMAGE to a local Debian/Ubuntu image")
    if not shutil.which("debootstrap"):
        pytest.skip("docker engine tests skipped: debootstrap is not installed (apt-get install "
                    "debootstrap), or set PROFILER_TEST_BASE_IMAGE to a local Debian/Ubuntu image")
    mirror = os.environ.get("PROFILER_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
    with tempfile.TemporaryDirectory(prefix="profiler-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        t0 = time.monotonic()
        proc = subprocess.run(["nice", "debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}",
                               "bookworm", str(root), mirror], capture_output=True, text=True)
        if proc.returncode != 0:
            tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            pytest.skip(f"docker engine tests skipped: debootstrap bookworm failed: {tail}")
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(archive), "."], check=True)
        repo, _, version = tag.partition(":")
        client.api.import_image_from_file(str(archive), repository=repo, tag=version)
        _log(f"base image {tag} made with debootstrap in {time.monotonic() - t0:.0f} s")


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    from profiler.container import build as cbuild, engine as cengine
    given = os.environ.get("PROFILER_TEST_BASE_IMAGE")
    if given:
        if not cbuild.image_exists(docker_client, given):
            pytest.skip(f"docker engine tests skipped: PROFILER_TEST_BASE_IMAGE={given} is not a local image")
        return given
    if not cbuild.image_exists(docker_client, BASE_TAG):
        _debootstrap_base(docker_client, BASE_TAG)
    return BASE_TAG


@pytest.fixture(scope="session")
def wheelhouse(docker_client, base_image) -> Path:
    import platform

    from profiler.container import build as cbuild, engine as cengine
    from profiler.errors import ToolError
    version = cbuild.python_in_image(docker_client, base_image)
    if not version:
        pytest.skip(f"docker engine tests skipped: base image {base_image} has no python3")
    dest = CACHE / f"wheels-cp{version.replace('.', '')}-{platform.machine()}"
    req = cbuild.source_root() / "docker" / "requirements-bench.txt"
    stamp = dest / ".requirements"
    if cbuild.wheel_count(dest) == 0 or not stamp.is_file() or stamp.read_text() != req.read_text():
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.monotonic()
        try:
            n = cbuild.download_wheels(dest, version)
        except ToolError as e:
            pytest.skip(f"docker engine tests skipped: {e}")
        stamp.write_text(req.read_text())
        _log(f"{n} wheels for Python {version} downloaded in {time.monotonic() - t0:.0f} s -> {dest}")
    return dest


@pytest.fixture(scope="session")
def bench_image(docker_client, base_image, wheelhouse) -> str:
    """The bench-runner image, built from this checkout (a failing build fails the tests)."""
    from profiler.container import build as cbuild, engine as cengine
    current = cbuild.source_hash(cbuild.source_root())
    old = None
    if cbuild.image_exists(docker_client, IMAGE_TAG):
        info = cbuild.find_image(docker_client, IMAGE_TAG)
        if info.source == current and info.build.get("base_image") == base_image:
            return IMAGE_TAG
        old = info.id
    t0 = time.monotonic()
    new = cbuild.build_image(docker_client, cbuild.BuildSpec(base_image=base_image, tag=IMAGE_TAG, wheels=wheelhouse))
    _log(f"image {IMAGE_TAG} built in {time.monotonic() - t0:.0f} s")
    if old and old != new.id:  # the previous build, now untagged: do not pile them up
        try:
            docker_client.images.remove(old)
        except Exception:  # noqa: BLE001 - still used by a container, or already gone
            pass
    return IMAGE_TAG


# --- the phone image: the runner image + onnx for the SDK's converter ---------------------

PHONE_IMAGE_TAG = "profiler-bench:test-phone"
# The SNPE converters are Python programs that import onnx; the runner image does not carry it
# (it only measures), so a phone session in a container needs it added, as with a real SDK.
# The versions of requirements.lock; numpy is the image's own.
CONVERTER_WHEELS = ("onnx==1.13.1", "protobuf==3.20.3", "typing_extensions==4.16.0")
_PHONE_DOCKERFILE = """ARG PARENT
FROM ${PARENT}
COPY wheels /tmp/converter-wheels/
RUN /opt/profiler-venv/bin/python -m pip install -q --disable-pip-version-check --no-cache-dir --no-index \\
        --find-links /tmp/converter-wheels %s \\
    && rm -rf /tmp/converter-wheels \\
    && /opt/profiler-venv/bin/python -c "import onnx, onnx.shape_inference"
ARG PARENT_ID
LABEL profiler.test.parent="${PARENT_ID}"
"""


def _converter_wheels(version: str) -> Path:
    """``CONVERTER_WHEELS`` for CPython ``version`` (binary, no dependencies), cached."""
    import platform
    import subprocess
    import sys

    from profiler.container import build as cbuild, engine as cengine
    dest = CACHE / f"converter-wheels-cp{version.replace('.', '')}-{platform.machine()}"
    stamp = dest / ".requirements"
    want = "\n".join(CONVERTER_WHEELS)
    if cbuild.wheel_count(dest) and stamp.is_file() and stamp.read_text() == want:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    major, minor = version.split(".")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--implementation", "cp", "--python-version", version,
           "--abi", f"cp{major}{minor}", "-d", str(dest), *CONVERTER_WHEELS]
    for plat in cbuild._manylinux_platforms(platform.machine()):
        cmd += ["--platform", plat]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join(l for l in proc.stderr.strip().splitlines() if "WARNING" not in l)[-300:]
        shutil.rmtree(dest, ignore_errors=True)
        pytest.skip(f"docker phone test skipped: no wheels of {', '.join(CONVERTER_WHEELS)} for Python "
                    f"{version}: {tail}")
    stamp.write_text(want)
    _log(f"converter wheels for Python {version} downloaded in {time.monotonic() - t0:.0f} s -> {dest}")
    return dest


@pytest.fixture(scope="session")
def phone_image(docker_client, bench_image) -> str:
    """``profiler-bench:test-phone``: the runner image with onnx installed in its venv."""
    import io
    import tarfile

    from profiler.container import build as cbuild, engine as cengine
    parent = cbuild.find_image(docker_client, bench_image)
    if cbuild.image_exists(docker_client, PHONE_IMAGE_TAG):
        info = cbuild.find_image(docker_client, PHONE_IMAGE_TAG)
        if info.labels.get("profiler.test.parent") == parent.id:
            return PHONE_IMAGE_TAG
        old = info.id
    else:
        old = None
    version = cbuild.python_in_image(docker_client, bench_image)
    wheels = _converter_wheels(version or "")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        text = (_PHONE_DOCKERFILE % " ".join(CONVERTER_WHEELS)).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
        for whl in sorted(wheels.glob("*.whl")):
            tar.add(str(whl), arcname=f"wheels/{whl.name}")
    buf.seek(0)
    t0 = time.monotonic()
    last: list = []
    for chunk in docker_client.api.build(fileobj=buf, custom_context=True, tag=PHONE_IMAGE_TAG, rm=True,
                                         forcerm=True, pull=False, decode=True,
                                         buildargs={"PARENT": bench_image, "PARENT_ID": parent.id}):
        if "error" in chunk:
            raise AssertionError(f"building {PHONE_IMAGE_TAG} failed: {chunk['error']} ({' | '.join(last[-3:])})")
        last += [l for l in (chunk.get("stream") or "").splitlines() if l.strip()]
    _log(f"image {PHONE_IMAGE_TAG} built in {time.monotonic() - t0:.0f} s")
    new = cbuild.find_image(docker_client, PHONE_IMAGE_TAG)
    if old and old != new.id:
        try:
            docker_client.images.remove(old)
        except Exception:  # noqa: BLE001 - still used by a container, or already gone
            pass
    return PHONE_IMAGE_TAG


# --- the caller: the CLI as a non-root user, and its work directory ------------------------

TEST_UID = 4242  # the caller's uid when the tests run as root


class Caller:
    """Runs ``python -m profiler`` as the test's caller, in ``workdir``.

    As root, the caller is uid/gid ``TEST_UID`` (with the docker socket's group) when this
    Python is usable by that uid; otherwise (e.g. an interpreter under /root) root runs the CLI
    with ``--docker-user TEST_UID:TEST_UID``. Either way the files must come out as ``uid:gid``.
    """

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.kwargs: dict = {}
        self.extra: list = []
        self.uid, self.gid = os.getuid(), os.getgid()
        self.env = dict(os.environ)
        if os.geteuid() == 0:
            self.uid = self.gid = TEST_UID
            os.chown(workdir, TEST_UID, TEST_UID)
            sock = self.env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
            groups = [os.stat(sock[len("unix://"):]).st_gid] if sock.startswith("unix://") else []
            kwargs = {"user": TEST_UID, "group": TEST_UID, "extra_groups": groups}
            if _usable_as(kwargs):
                self.kwargs = kwargs
                self.env["HOME"] = str(workdir)
            else:
                self.extra = ["--docker-user", f"{TEST_UID}:{TEST_UID}"]

    def argv(self, *args: str) -> list:
        extra = self.extra if args and args[0] == "bench" else []
        return [sys.executable, "-m", "profiler", *args, *extra]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, cwd=self.workdir,
                              env=self.env, timeout=timeout, **self.kwargs)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=self.workdir, env=self.env, **self.kwargs)


def _usable_as(kwargs: dict) -> bool:
    try:
        proc = subprocess.run([sys.executable, "-c", "import profiler.cli.main, docker"], cwd="/",
                              capture_output=True, timeout=60, **kwargs)
    except OSError:
        return False
    return proc.returncode == 0


@pytest.fixture
def workdir():
    """A work directory the caller can use (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="profiler-docker-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _leftover_containers(client, workdir: Path) -> list:
    """Session containers (running or not) that mount ``workdir`` (other runs may share the engine)."""
    from profiler.container import build as cbuild, engine as cengine, plan as cplan
    left = []
    for cid in cengine.session_containers(client):
        try:
            mounts = client.api.inspect_container(cid)["Mounts"]
        except Exception:  # noqa: BLE001 - removed meanwhile
            continue
        if any(m.get("Destination", "").startswith(str(workdir)) for m in mounts):
            left.append(cid)
    return left
