"""``profiler bench --docker`` end to end on a real Docker engine (skipped without one).

The CLI runs in a subprocess, as a non-root uid when the tests run as root (with the docker
socket's group), so "files are owned by the caller" is a real check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.container.engine_fixtures import (CACHE, TEST_UID, Caller, _leftover_containers,  # noqa: F401 - fixtures
                                             base_image, bench_image, docker_client, wheelhouse, workdir)
from profiler.models.manifest import read_manifest, write_manifest
from tests.emulator.harness import AdbServer, Phone

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--warmup", "2", "--min-time", "0.01", "--min-repeat", "5", "--max-repeat", "20",
        "--layer-runs", "3", "--remeasure", "0", "-q"]


def _subset(models: Path, dest: Path, n: int) -> Path:
    """A manifest in ``dest`` of the first ``n`` entries of ``models``, their files copied to
    ``dest/../blocks`` and named by absolute path (so the session must also mount that directory;
    pytest's own directories are private to the user running the tests)."""
    doc = read_manifest(models)
    blocks = dest.parent / "blocks"
    blocks.mkdir(parents=True, exist_ok=True)
    entries = []
    for e in doc["entries"][:n]:
        files = {}
        for kind, name in e["files"].items():
            shutil.copyfile(models / name, blocks / name)
            files[kind] = str(blocks / name)
        entries.append(dict(e, files=files))
    dest.mkdir(parents=True, exist_ok=True)
    write_manifest(dest, {"kind": "modules", "space": doc["space"], "granularity": doc["granularity"],
                          "entries": entries})
    return dest


def _results(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(l) for l in path.read_text().splitlines()[1:] if '"type":"result"' in l]


def test_bench_in_container_end_to_end(docker_client, bench_image, cifar_blocks, workdir):
    from profiler.container import build as cbuild, engine as cengine, plan as cplan
    models = _subset(cifar_blocks, workdir / "models", 4)
    store = workdir / "results" / "modules.results"
    caller = Caller(workdir)
    proc = caller.run("bench", "--models", str(models), "--out", str(store), "--runtime", "ORT_CPU",
                      *FAST, "--docker", bench_image)
    assert proc.returncode == 0, proc.stderr
    assert "4 measured, 0 failed, 0 already in the store" in proc.stderr
    assert "Traceback" not in proc.stderr

    # complete, and measured inside the image (its Python, its onnxruntime, no nnabla)
    results = _results(store)
    assert sorted(r["uid"] for r in results) == sorted(e["uid"] for e in read_manifest(models)["entries"])
    assert all(r["status"] == "ok" and r["runtime"] == "ORT_CPU" for r in results)
    assert all(len(r["samples"]["Forward Propagate"]) >= 5 for r in results)
    meta = json.loads(store.read_text().splitlines()[0])["meta"]
    image_python = cbuild.python_in_image(docker_client, bench_image)
    assert meta["device"]["python"].startswith(image_python + ".")
    assert meta["target"] == "host" and "onnxruntime" in meta["tools"]
    assert meta["models"]["dir"] == str(models)

    # written as the caller
    for path in (store, store.parent):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (caller.uid, caller.gid), path

    # readable by `profiler table`, on the host and inside the image
    table = caller.run("table", "--results", str(store), "--out", str(workdir / "table"))
    assert table.returncode == 0, table.stderr
    rows = (workdir / "table.csv").read_text().splitlines()
    assert len(rows) == 4 * 3 * 3  # modules x LatencyKeys x Min/Avg/Max
    inside = docker_client.containers.run(
        bench_image, ["sh", "-c", f"profiler table --results {store} --out /tmp/t && cat /tmp/t.csv && "
                                  "! python -c 'import nnabla' 2>/dev/null"],
        user=f"{caller.uid}:{caller.gid}", network_mode="none", remove=True,
        volumes={str(store.parent): {"bind": str(store.parent), "mode": "ro"}})
    assert inside.decode().splitlines() == rows
    assert _leftover_containers(docker_client, workdir) == []


def test_ctrl_c_stops_the_container_and_the_store_resumes(docker_client, bench_image, cifar_blocks, workdir):
    models = _subset(cifar_blocks, workdir / "models", 16)
    store = workdir / "s.results"
    caller = Caller(workdir)
    opts = ["--runtime", "ORT_CPU", "--batch-size", "1", *FAST, "--docker", bench_image]
    proc = caller.popen("bench", "--models", str(models), "--out", str(store), *opts)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_results(store)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "re-run with --resume" in err and "Traceback" not in err
    assert _leftover_containers(docker_client, workdir) == []
    first = _results(store)
    assert 2 <= len(first) < 16, "the session ended before Ctrl-C; make it longer"

    resumed = caller.run("bench", "--models", str(models), "--out", str(store), "--resume", *opts)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{16 - len(first)} measured, 0 failed, {len(first)} already in the store" in resumed.stderr
    final = _results(store)
    assert final[:len(first)] == first
    assert len({r["uid"] for r in final}) == len(final) == 16


def test_missing_image_is_a_one_line_error(docker_client, cifar_blocks, workdir):
    models = _subset(cifar_blocks, workdir / "models", 1)
    proc = Caller(workdir).run("bench", "--models", str(models), "--out", str(workdir / "s.results"),
                               "--docker", "profiler-bench:no-such-tag")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "profiler: error: docker image 'profiler-bench:no-such-tag' not found locally; build it with "
        "'profiler docker build --tag profiler-bench:no-such-tag' (or add --docker-build)"]


def test_nnabla_runtime_is_refused_before_starting(docker_client, bench_image, cifar_blocks, workdir):
    models = _subset(cifar_blocks, workdir / "models", 1)
    proc = Caller(workdir).run("bench", "--models", str(models), "--out", str(workdir / "s.results"),
                               "--runtime", "ORT_CPU,NNABLA_CPU", "--docker", bench_image)
    assert proc.returncode == 2
    assert "--runtime NNABLA_CPU: not available in" in proc.stderr
    assert not (workdir / "s.results").exists()


def test_host_server_mode_reaches_an_adb_server_on_the_host_loopback(docker_client, bench_image, cifar_blocks,
                                                                      workdir):
    """--adb-mode host-server: --network host, and adbutils inside finds the host's server."""
    from profiler.container import build as cbuild, engine as cengine, plan as cplan
    models = _subset(cifar_blocks, workdir / "models", 1)
    code = ("import adbutils, sys; c = adbutils.AdbClient(); "
            "print(sorted(d.serial for d in c.device_list())); "
            "print(c.device(sys.argv[1]).getprop('ro.product.model'))")
    with AdbServer(workdir / "adb") as srv, Phone(workdir / "p1", "EMU0001", props={"ro.product.model": "Pixel Test"}) \
            as p1, Phone(workdir / "p2", "EMU0002") as p2:
        srv.connect(p1)
        srv.connect(p2)
        cengine.check_adb("host-server", srv.port)
        plan = cplan.plan_bench_run(bench_image, ["python", "-c", code, p1.addr], models, workdir / "s.results",
                                 user=f"{os.getuid()}:{os.getgid()}", adb_mode="host-server", adb_port=srv.port,
                                 environment={"ADBUTILS_ADB_PATH": "/bin/false"})
        chunks: list = []
        rc = cengine.run_container(docker_client, plan, on_output=lambda stream, data: chunks.append((stream, data)))
    out = b"".join(d for s, d in chunks if s == "stdout").decode()
    assert rc == 0, chunks
    assert out.splitlines() == [str(sorted([p1.addr, p2.addr])), "Pixel Test"]
    assert plan.network_mode == "host"


def _fake_sdk(parent: Path) -> Path:
    """An SNPE SDK tree with a host tool that prints its version (no real SDK in tests)."""
    sdk = parent / "snpe-2.10.0.4541"
    (sdk / "bin" / "x86_64-linux-clang").mkdir(parents=True)
    (sdk / "lib" / "x86_64-linux-clang").mkdir(parents=True)
    (sdk / "lib" / "python").mkdir(parents=True)
    tool = sdk / "bin" / "x86_64-linux-clang" / "snpe-net-run"
    tool.write_text("#!/bin/sh\necho 'SNPE v2.10.0.4541'\n")
    tool.chmod(0o755)
    for d in [sdk, *sdk.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)
    return sdk


SDK_CHECK = ("from profiler.phone.snpe.sdk import locate_sdk; import os, shutil, subprocess; sdk = locate_sdk(); "
             "print(sdk.version); print(os.path.realpath(os.environ['SNPE_ROOT'])); "
             "print(subprocess.run(['snpe-net-run'], capture_output=True, text=True).stdout.strip())")


def test_snpe_sdk_baked_in_or_mounted_at_run_time(docker_client, base_image, wheelhouse, bench_image, cifar_blocks,
                                                 workdir):
    from profiler.container import build as cbuild, engine as cengine, plan as cplan
    sdk = _fake_sdk(workdir / "sdks")
    stable = CACHE / "fake-sdk" / sdk.name  # a fixed path keeps the image's labels, hence its layers, cached
    if not stable.is_dir():
        shutil.copytree(sdk, stable, symlinks=True)
    baked = cbuild.build_image(docker_client, cbuild.BuildSpec(base_image=base_image, tag="profiler-bench:test-sdk",
                                                       wheels=wheelhouse, snpe_sdk=stable))
    assert baked.build["snpe_version"] == "2.10.0.4541"
    out = docker_client.containers.run(baked.ref, ["python", "-c", SDK_CHECK], user="1000:1000",
                                       network_mode="none", remove=True)
    assert out.decode().splitlines() == ["2.10.0.4541", "/opt/sdk/snpe-2.10.0.4541", "SNPE v2.10.0.4541"]

    # without an SDK in the image: --docker-snpe-sdk mounts one at its own path
    models = _subset(cifar_blocks, workdir / "models", 1)
    plan = cplan.plan_bench_run(bench_image, ["python", "-c", SDK_CHECK], models, workdir / "s.results",
                             user="1000:1000", snpe_sdk=sdk)
    chunks: list = []
    rc = cengine.run_container(docker_client, plan, on_output=lambda stream, data: chunks.append((stream, data)))
    out = b"".join(d for s, d in chunks if s == "stdout").decode()
    assert rc == 0, chunks
    assert out.splitlines() == ["2.10.0.4541", str(sdk), "SNPE v2.10.0.4541"]


def test_exit_code_and_both_streams_come_back(docker_client, bench_image, cifar_blocks, workdir):
    """Even from a container that exits at once (output attached before it starts)."""
    from profiler.container import build as cbuild, engine as cengine, plan as cplan
    models = _subset(cifar_blocks, workdir / "models", 1)
    plan = cplan.plan_bench_run(bench_image, ["sh", "-c", "echo out; echo err >&2; exit 3"], models,
                             workdir / "s.results", user=f"{os.getuid()}:{os.getgid()}")
    chunks: list = []
    rc = cengine.run_container(docker_client, plan, on_output=lambda stream, data: chunks.append((stream, data)))
    assert rc == 3
    assert sorted(chunks) == [("stderr", b"err\n"), ("stdout", b"out\n")]
    assert _leftover_containers(docker_client, workdir) == []
