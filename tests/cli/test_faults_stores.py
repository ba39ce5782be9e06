"""Fault probe, stores and sessions (issue 12 items 1-4, 12, 13): nothing lost, nothing mixed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.faults import FAST, ROOT, cli, one_line_error, snapshot, write_space


def test_fit_refuses_measurements_of_another_sample(tiny, tmp_path):
    out = tmp_path / "est" / "estimator.py"
    proc = cli("fit", "--sampled", tiny["n1"], "--measured", tiny["n0_store"], "--table", tiny["table"],
               "--out", out)
    one_line_error(proc, str(tiny["n0_store"]), str(tiny["n1"]), "differs")
    assert not out.exists()


def test_fit_pairs_its_own_measurements(tiny, tmp_path):
    proc = cli("fit", "--sampled", tiny["n0"], "--measured", tiny["n0_store"], "--table", tiny["table"],
               "--out", tmp_path / "estimator.py", "--folds", "2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "estimator.py").is_file()


def test_resume_refuses_models_of_another_space(tiny, tmp_path):
    other = write_space(tmp_path / "other.json", name="other", input_shape=[3, 16, 16])
    assert cli("generate", "--space", other, "--out", tmp_path / "om", "-q").returncode == 0
    store = tmp_path / "s.results"
    shutil.copy(tiny["store"], store)
    before = snapshot(store)
    proc = cli("bench", "--models", tmp_path / "om", "--out", store, "--resume", *FAST)
    one_line_error(proc, "'tiny'", "'other'")
    assert snapshot(store) == before


def test_a_store_in_use_is_refused_naming_its_holder(tiny, tmp_path):
    store = tmp_path / "s.results"
    shutil.copy(tiny["store"], store)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time\n"
         "from profiler.session.store import ResultsStore\n"
         f"s, _ = ResultsStore.resume({str(store)!r}, {{'target': 'host'}})\n"
         "print('locked', flush=True); time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(store)
        proc = cli("bench", "--models", tiny["modules"], "--out", store, "--resume", *FAST)
        one_line_error(proc, "in use by another bench session", f"pid {holder.pid}")
        assert snapshot(store) == before
    finally:
        holder.kill()
        holder.wait()
    proc = cli("bench", "--models", tiny["modules"], "--out", store, "--resume", *FAST)  # lock released
    assert proc.returncode == 0, proc.stderr
    assert "6 already in the store" in proc.stderr  # 5 modules + the per-network constant (@network)


def test_a_fresh_session_on_an_existing_store_is_refused(tiny, tmp_path):
    store = tmp_path / "s.results"
    shutil.copy(tiny["store"], store)
    before = snapshot(store)
    one_line_error(cli("bench", "--models", tiny["modules"], "--out", store, *FAST), "already exists", "--resume")
    assert snapshot(store) == before


@pytest.mark.parametrize("kind", ["manifest", "csv", "onnx"])
def test_table_on_a_file_that_is_not_a_store(tiny, tmp_path, kind):
    path = {"manifest": tiny["modules"] / "manifest.json", "csv": tiny["dir"] / "t.csv",
            "onnx": next(tiny["modules"].glob("*.onnx"))}[kind]
    one_line_error(cli("table", "--results", path, "--out", tmp_path / "t"), "not a profiler results store")


def test_table_on_a_directory(tiny, tmp_path):
    one_line_error(cli("table", "--results", tiny["modules"], "--out", tmp_path / "t"), "is a directory")


def test_a_string_version_is_not_called_newer(tiny, tmp_path):
    store = tmp_path / "s.results"
    lines = tiny["store"].read_bytes().split(b"\n")
    header = json.loads(lines[0])
    header["version"] = "1"
    store.write_bytes(b"\n".join([json.dumps(header).encode()] + lines[1:]))
    err = one_line_error(cli("table", "--results", store, "--out", tmp_path / "t"), "'1'", "not valid")
    assert "newer" not in err


def test_table_on_an_all_failed_store_counts_the_failures(tiny, tmp_path):
    store = tmp_path / "s.results"
    lines = tiny["store"].read_bytes().split(b"\n")
    failed = [json.dumps({"type": "result", "uid": f"M{i}", "runtime": "ORT_CPU", "status": "failed",
                          "error": "boom"}).encode() for i in range(3)]
    store.write_bytes(b"\n".join([lines[0]] + failed) + b"\n")
    one_line_error(cli("table", "--results", store, "--out", tmp_path / "t"), "(3 failed records)")


def test_ctrl_c_says_what_the_store_holds(tiny, tmp_path):
    store = tmp_path / "s.results"
    proc = subprocess.Popen([sys.executable, "-m", "profiler", "bench", "--models", str(tiny["modules"]),
                             "--out", str(store), "--min-time", "30", "--max-repeat", "100000", "-q"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if store.exists() and store.stat().st_size > 0:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    line = one_line_error(done, "holds 0 results", "--batch-size", "--resume", code=130)
    assert "everything measured so far is saved" not in line


def test_worker_exits_when_its_parent_is_killed(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess,sys,time\n"
         "c = subprocess.Popen([sys.executable, '-c', 'import time\\n"
         "from profiler.host.worker import die_with_parent\\ndie_with_parent()\\n"
         "print(1, flush=True)\\ntime.sleep(120)'], stdout=subprocess.PIPE, text=True)\n"
         "c.stdout.readline(); print(c.pid, flush=True); time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(200):  # the child is reaped by init once it exits
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as f:
            if f.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the worker outlived its parent")


# --- disk full (a small tmpfs; needs root) ------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(mnt, leave: int) -> None:
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))


def test_disk_full_keeps_complete_records_and_resumes(small_fs):
    from profiler.errors import StoreFullError
    from profiler.session.store import ResultsStore, read_store
    path = small_fs / "s.results"
    store = ResultsStore.create(path, {"target": "host"})
    store.add({"uid": "A", "runtime": "R", "status": "failed", "error": "x"})
    _fill(small_fs, 4096)
    big = {"uid": "B", "runtime": "R", "status": "failed", "error": "y" * 20000}
    with pytest.raises(StoreFullError, match="disk full: 1 results kept, --resume after freeing space"):
        store.add(big)
    store.close()
    assert path.read_bytes().endswith(b"\n")
    assert [r["uid"] for r in read_store(path).records] == ["A"]
    (small_fs / "filler").unlink()
    store, contents = ResultsStore.resume(path, {"target": "host"})
    store.add(big)
    store.close()
    assert [r["uid"] for r in read_store(path).records] == ["A", "B"]


def test_bench_on_a_full_disk_says_so(tiny, small_fs):
    _fill(small_fs, 8192)
    store = small_fs / "s.results"
    proc = cli("bench", "--models", tiny["modules"], "--out", store, *FAST)
    one_line_error(proc, "disk full", "--resume after freeing space")
    from profiler.session.store import read_store
    read_store(store)  # still readable


def test_generate_refuses_more_than_the_free_space(tiny, small_fs):
    _fill(small_fs, 16384)
    out = small_fs / "m"
    proc = cli("generate", "--space", tiny["space"], "--out", out, "-q")
    one_line_error(proc, "GiB are free under", str(out), "--force")
    assert not out.exists()


def test_generate_on_a_full_disk_says_so_and_leaves_no_temp_files(tiny, small_fs):
    _fill(small_fs, 16384)
    out = small_fs / "m"  # --force: past the free-space check, so the disk fills while writing
    proc = cli("generate", "--space", tiny["space"], "--out", out, "-q", "--force")
    one_line_error(proc, "disk full", "re-run")
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    assert not any(p.stat().st_size == 0 for p in out.iterdir())


def test_read_only_out(tiny, tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        one_line_error(cli("generate", "--space", tiny["space"], "--out", mnt / "m", "-q"), str(mnt / "m"))
        one_line_error(cli("bench", "--models", tiny["modules"], "--out", mnt / "r", *FAST), str(mnt / "r"))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
