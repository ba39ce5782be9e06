"""An emulated-phone session inside the bench-runner container, end to end (real engine; skipped
without one).

``profiler bench --target phone --docker IMAGE --adb-mode host-server`` runs as a subprocess (as a
non-root uid when the tests run as root, see ``Caller``). The session inside the container
reaches a real adb server (adbutils' binary, ``tests/emulator/harness.py``) on this host's
loopback over the host's network; the server reaches two emulated phones (``tests/emulator/adbd.py``
processes, ``adb connect``ed, named ``127.0.0.1:PORT``) whose files live on this machine. The fake SNPE SDK
(``tests/phone/fake_sdk.py``) is mounted read-only with ``--docker-snpe-sdk``: its host tools
run inside the container with the image's Python (``#!/usr/bin/env python3``), its
``snpe-net-run`` is pushed from the container through the server to the phones and run there.
The image is the runner image plus onnx (``phone_image``): the converter needs it.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from profiler.models.manifest import read_manifest
from profiler.phone.prep import store_cache_folder
from profiler.session.store import read_store
from tests.container.engine_fixtures import (Caller, _leftover_containers, base_image,  # noqa: F401 - fixtures
                                             bench_image, docker_client, phone_image, wheelhouse, workdir)
from tests.emulator.harness import AdbServer, Phone
from tests.phone.fake_sdk import make_fake_sdk, tool_calls
from tests.phone.models import standard_specs, write_models

SDK_VERSION = "2.10.0.4541"
PHONE_PROPS = {"ro.product.model": "SM-S911B", "ro.soc.model": "SM8550"}
IMAGE_VENV = "/opt/profiler-venv/"
RUNTIMES = ("CPU", "DSP")
MODULES = 4
RUNS = 2


@pytest.fixture
def shared_dir():
    """A directory outside the work directory that the container's uid can read."""
    path = Path(tempfile.mkdtemp(prefix="profiler-docker-sdk-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _give(path: Path, uid: int, gid: int) -> None:
    """chown -R (as root: the container runs as the caller and writes the DLC cache in models/)."""
    if os.geteuid() != 0:
        return
    for p in [path, *path.rglob("*")]:
        os.lchown(p, uid, gid)


def _caller(workdir: Path) -> Caller:
    caller = Caller(workdir)
    for key in ("SNPE_ROOT", "ANDROID_SERIAL", "ANDROID_ADB_SERVER_PORT", "ANDROID_ADB_SERVER_HOST"):
        caller.env.pop(key, None)
    return caller


def _bench_phone_in_container(caller: Caller, image: str, models: Path, store: Path, port: int, sdk: Path,
                              *options: str):
    """``profiler bench --target phone --docker IMAGE --adb-mode host-server`` with the SDK mounted."""
    return caller.run("bench", "--target", "phone", "--models", str(models), "--out", str(store), *options,
                      "--remeasure", "0", "-q", "--docker", image, "--adb-mode", "host-server",
                      "--adb-port", str(port), "--docker-snpe-sdk", str(sdk),
                      "--docker-env", "ADBUTILS_ADB_PATH=/bin/false")  # never start an adb server inside


def test_phone_session_in_container_end_to_end(docker_client, phone_image, workdir, shared_dir, tmp_path):
    caller = _caller(workdir)
    # the README's layout: the store's folder holds the models folder
    models = write_models(workdir / "models", standard_specs(MODULES))
    store = workdir / "phone.results"
    calls = workdir / "sdk-calls.jsonl"  # the SDK is mounted read-only: the fake tools log here
    sdk = make_fake_sdk(shared_dir, SDK_VERSION, host_python="/usr/bin/env python3", calls=calls)
    _give(workdir, caller.uid, caller.gid)
    uids = [e["uid"] for e in read_manifest(models)["entries"]]

    with AdbServer(tmp_path / "adb") as srv, Phone(tmp_path / "a", "PHONE0A", props=PHONE_PROPS) as a, \
            Phone(tmp_path / "b", "PHONE0B", props=PHONE_PROPS, battery_temp_c=31.0) as b:
        srv.connect(a)
        srv.connect(b)
        serials = (a.addr, b.addr)
        t0 = time.monotonic()
        proc = _bench_phone_in_container(caller, phone_image, models, store, srv.port, sdk,
                                         "--runtime", ",".join(RUNTIMES), "--runs", str(RUNS),
                                         "--input-count", "2", "--calibration-count", "2")
        elapsed = time.monotonic() - t0
        sdk_pushes = {ph.addr: [d for _, d in ph.requests("SEND") if d.startswith("/data/local/tmp/profiler/bin/")]
                      for ph in (a, b)}
        runs_on = {ph.addr: [d for kind, d in ph.requests() if kind.startswith("shell") and "/run_" in d]
                   for ph in (a, b)}
    print(f"phone session in the container: {elapsed:.1f} s")
    n = MODULES * len(RUNTIMES)
    assert proc.returncode == 0, proc.stderr
    assert f"{n} measured, 0 failed, 0 already in the store" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr

    # complete: every module x runtime measured, one sample per run, on both phones
    contents = read_store(store)
    latest = contents.latest()
    assert set(latest) == {(u, rt) for u in uids for rt in RUNTIMES}
    assert all(r["status"] == "ok" for r in latest.values())
    assert all(len(v) == RUNS for r in latest.values() for v in r["samples"].values())
    assert {r["device_state"]["serial"] for r in latest.values()} == set(serials)
    for serial in serials:
        assert len(sdk_pushes[serial]) == 1, sdk_pushes  # snpe-net-run crossed once per phone
        assert runs_on[serial], f"no snpe-net-run on {serial}"
    assert sum(len(v) for v in runs_on.values()) == n  # one device shell call runs all RUNS
    for (uid, rt), rec in latest.items():
        st = rec["device_state"]
        assert st["quantized"] is (rt == "DSP"), (uid, rt, st)
        if rt == "DSP":
            assert ".q" in st["dlc"] and st["calibration"] == "random"
            assert set(rec["samples"]) == {"Total Inference Time", "Forward Propagate"}  # HTP cycles
        else:
            assert set(rec["samples"]) == {"Total Inference Time", "Forward Propagate", "Layers Time"}

    # written by the session in the container: the SDK's host tools ran with the image's Python,
    # the quantizer once per module on the calibration raws the session made
    log = tool_calls(sdk, calls=calls)
    assert log and all(c["python"].startswith(IMAGE_VENV) for c in log), {c["python"] for c in log}
    by_tool = {t: [c for c in log if c["tool"] == t] for t in {c["tool"] for c in log}}
    assert len(by_tool["snpe-onnx-to-dlc"]) == MODULES and len(by_tool["snpe-dlc-info"]) == MODULES
    assert len(by_tool["snpe-dlc-quant"]) == MODULES
    assert len(by_tool["snpe-diagview"]) == n * RUNS
    cache = store_cache_folder(workdir, models) / f"snpe-{SDK_VERSION}"
    for call in by_tool["snpe-dlc-quant"]:
        listed = Path(call["argv"][1].split("=", 1)[1])
        assert listed.is_file() and str(listed).startswith(str(cache) + "/"), call
    quantized = sorted(cache.glob("*.q*.dlc"))
    assert len(quantized) == MODULES
    meta = contents.meta
    assert meta["target"] == "phone" and meta["runtimes"] == list(RUNTIMES)
    assert meta["snpe"] == {"root": str(sdk), "version": SDK_VERSION, "device_target": "aarch64-android"}
    assert set(meta["devices"]) == set(serials) and meta["device"]["soc"] == "SM8550"
    assert meta["models"]["dir"] == str(models) and meta["phone"]["runs"] == RUNS
    for path in (store, cache, *quantized):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (caller.uid, caller.gid), path

    # `profiler table` on the host reads the store
    table = caller.run("table", "--results", str(store), "--out", str(workdir / "table"))
    assert table.returncode == 0, table.stderr
    rows = list(csv.reader((workdir / "table.csv").open()))
    assert {r[1] for r in rows} == set(RUNTIMES)
    assert len(rows) == MODULES * (3 + 2) * 3  # CPU 3 LatencyKeys, DSP 2 (no Layers Time in cycles)
    from profiler.table.latency import LatencyTable
    loaded = LatencyTable.load(workdir / "table.json")
    assert loaded.meta["target"] == "phone" and loaded.meta["snpe.version"] == SDK_VERSION
    assert _leftover_containers(docker_client, workdir) == []


def test_phone_session_in_container_with_the_store_elsewhere(docker_client, phone_image, workdir, shared_dir,
                                                             tmp_path):
    """The store in another folder than the models: the models are mounted read-only, the DLC
    cache goes under the store's (writable) folder."""
    caller = _caller(workdir)
    models = write_models(workdir / "in" / "models", standard_specs(1))
    store = workdir / "out" / "phone.results"
    store.parent.mkdir()
    sdk = make_fake_sdk(shared_dir, SDK_VERSION, host_python="/usr/bin/env python3", calls=store.parent / "calls")
    _give(workdir, caller.uid, caller.gid)
    with AdbServer(tmp_path / "adb") as srv, Phone(tmp_path / "a", "PHONE0A", props=PHONE_PROPS) as a:
        srv.connect(a)
        proc = _bench_phone_in_container(caller, phone_image, models, store, srv.port, sdk,
                                         "--runtime", "CPU", "--runs", "1", "--input-count", "1")
    assert "Read-only file system" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert "1 measured, 0 failed" in proc.stderr, proc.stderr
    rec = list(read_store(store).latest().values())[0]
    assert rec["status"] == "ok" and rec["device_state"]["serial"] == a.addr
    cache = store_cache_folder(store.parent, models) / f"snpe-{SDK_VERSION}"
    assert len(list(cache.glob("*.dlc"))) == 1
    assert not list(models.glob("snpe-*"))


def test_unwritable_store_folder_in_the_container_is_one_line(docker_client, phone_image, workdir, shared_dir,
                                                              tmp_path):
    """The container's uid cannot write the store's folder: one line naming it, nothing started."""
    caller = _caller(workdir)
    models = write_models(workdir / "models", standard_specs(1))
    out_dir = workdir / "locked"
    out_dir.mkdir()
    calls = shared_dir / "calls"
    calls.mkdir()
    os.chmod(calls, 0o777)
    sdk = make_fake_sdk(shared_dir, SDK_VERSION, host_python="/usr/bin/env python3", calls=calls / "calls.jsonl")
    _give(workdir, caller.uid, caller.gid)
    os.chmod(out_dir, 0o755)  # the caller may write it on the host; the container's uid may not
    user = "%d:%d" % (caller.uid + 1, caller.gid + 1)
    caller.extra = ["--docker-user", user]  # in place of the Caller's own --docker-user, if any
    store = out_dir / "phone.results"
    with AdbServer(tmp_path / "adb") as srv, Phone(tmp_path / "a", "PHONE0A", props=PHONE_PROPS) as a:
        srv.connect(a)
        proc = _bench_phone_in_container(caller, phone_image, models, store, srv.port, sdk, "--runtime", "CPU",
                                         "--runs", "1", "--input-count", "1")
        served = a.requests()
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr
    assert lines[-1] == ("profiler: error: %s: the store's folder is not writable by uid %s inside the container "
                         "(%s); the store and the DLC cache go there: make it writable for that user or choose "
                         "the user with --docker-user UID:GID" % (out_dir, user, phone_image)), proc.stderr
    assert not store.exists() and not (out_dir / "snpe-cache").exists()
    assert not [d for k, d in served if k == "SEND"]  # nothing reached the phone


def test_phones_on_two_adb_servers_from_the_environment(docker_client, phone_image, workdir, shared_dir,
                                                        tmp_path):
    """$PROFILER_ADB_SERVERS names two real adb servers, one emulated phone each: --adb-mode auto
    picks the host's network, the variable reaches the session inside, both phones measure. A
    listed server that does not answer is one line before any container starts."""
    from tests.emulator.harness import free_port
    caller = _caller(workdir)
    models = write_models(workdir / "models", standard_specs(2))
    store = workdir / "phone.results"
    sdk = make_fake_sdk(shared_dir, SDK_VERSION, host_python="/usr/bin/env python3", calls=workdir / "calls")
    _give(workdir, caller.uid, caller.gid)
    bench = ("bench", "--target", "phone", "--models", str(models), "--out", str(store), "--runtime", "CPU",
             "--runs", "1", "--input-count", "1", "--remeasure", "0", "-q", "--docker", phone_image,
             "--docker-snpe-sdk", str(sdk), "--docker-env", "ADBUTILS_ADB_PATH=/bin/false")
    with AdbServer(tmp_path / "adb1") as s1, AdbServer(tmp_path / "adb2") as s2, \
            Phone(tmp_path / "a", "PHONE0A", props=PHONE_PROPS) as a, \
            Phone(tmp_path / "b", "PHONE0B", props=PHONE_PROPS) as b:
        s1.connect(a)
        s2.connect(b)
        dead = free_port()
        caller.env["PROFILER_ADB_SERVERS"] = f"127.0.0.1:{s1.port},127.0.0.1:{dead}"
        refused = caller.run(*bench)
        assert refused.returncode != 0 and not store.exists()
        lines = [ln for ln in refused.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"no adb server at 127.0.0.1:{dead}" in lines[0], refused.stderr
        assert _leftover_containers(docker_client, workdir) == []

        caller.env["PROFILER_ADB_SERVERS"] = f"127.0.0.1:{s1.port},127.0.0.1:{s2.port}"
        proc = caller.run(*bench)
    assert proc.returncode == 0, proc.stderr
    assert "2 measured, 0 failed" in proc.stderr, proc.stderr
    latest = read_store(store).latest()
    assert {r["device_state"]["adb_server"] for r in latest.values()} <= {f"127.0.0.1:{s1.port}",
                                                                       f"127.0.0.1:{s2.port}"}
    assert all(r["status"] == "ok" for r in latest.values()) and len(latest) == 2
    assert sorted(read_store(store).meta["devices"]) == sorted(
        [f"{a.addr}@127.0.0.1:{s1.port}", f"{b.addr}@127.0.0.1:{s2.port}"])
    assert _leftover_containers(docker_client, workdir) == []
