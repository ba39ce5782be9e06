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

The directory has no ``__init__.py`` on purpose: pytest would import it as the top-level
package ``docker`` and shadow the docker SDK. Without a package, a ``conftest.py`` here would
take the module name ``conftest`` from ``tests/conftest.py`` (other tests import it by that
name), hence this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
    from profiler import docker_session as ds
    from profiler.errors import ToolError
    try:
        return ds.connect(timeout=60)
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
    from profiler import docker_session as ds
    given = os.environ.get("PROFILER_TEST_BASE_IMAGE")
    if given:
        if not ds.image_exists(docker_client, given):
            pytest.skip(f"docker engine tests skipped: PROFILER_TEST_BASE_IMAGE={given} is not a local image")
        return given
    if not ds.image_exists(docker_client, BASE_TAG):
        _debootstrap_base(docker_client, BASE_TAG)
    return BASE_TAG


@pytest.fixture(scope="session")
def wheelhouse(docker_client, base_image) -> Path:
    import platform

    from profiler import docker_session as ds
    from profiler.errors import ToolError
    version = ds.python_in_image(docker_client, base_image)
    if not version:
        pytest.skip(f"docker engine tests skipped: base image {base_image} has no python3")
    dest = CACHE / f"wheels-cp{version.replace('.', '')}-{platform.machine()}"
    req = ds.source_root() / "docker" / "requirements-bench.txt"
    stamp = dest / ".requirements"
    if ds.wheel_count(dest) == 0 or not stamp.is_file() or stamp.read_text() != req.read_text():
        shutil.rmtree(dest, ignore_errors=True)
        t0 = time.monotonic()
        try:
            n = ds.download_wheels(dest, version)
        except ToolError as e:
            pytest.skip(f"docker engine tests skipped: {e}")
        stamp.write_text(req.read_text())
        _log(f"{n} wheels for Python {version} downloaded in {time.monotonic() - t0:.0f} s -> {dest}")
    return dest


@pytest.fixture(scope="session")
def bench_image(docker_client, base_image, wheelhouse) -> str:
    """The bench-runner image, built from this checkout (a failing build fails the tests)."""
    from profiler import docker_session as ds
    current = ds.source_hash(ds.source_root())
    old = None
    if ds.image_exists(docker_client, IMAGE_TAG):
        info = ds.find_image(docker_client, IMAGE_TAG)
        if info.source == current and info.build.get("base_image") == base_image:
            return IMAGE_TAG
        old = info.id
    t0 = time.monotonic()
    new = ds.build_image(docker_client, ds.BuildSpec(base_image=base_image, tag=IMAGE_TAG, wheels=wheelhouse))
    _log(f"image {IMAGE_TAG} built in {time.monotonic() - t0:.0f} s")
    if old and old != new.id:  # the previous build, now untagged: do not pile them up
        try:
            docker_client.images.remove(old)
        except Exception:  # noqa: BLE001 - still used by a container, or already gone
            pass
    return IMAGE_TAG
