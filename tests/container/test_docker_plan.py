"""Containerised sessions without an engine: option forwarding, mounts, adb modes, build
context, and the one-line error when no engine answers."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from profiler.container import build as cbuild, engine as cengine, plan as cplan
from profiler.cli.main import build_parser
from profiler.cli.docker import inner_bench_argv
from profiler.errors import ToolError
from profiler.models.manifest import write_manifest


def _parse(*argv: str):
    args = build_parser().parse_args(list(argv))
    return args, args._docker_parser


def test_bench_options_are_forwarded_and_docker_options_are_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, parser = _parse("bench", "--models", "m", "--out", "r/s.results", "--runtime", "ORT_CPU",
                          "--min-time", "0.05", "--batch-size", "2", "--resume", "-q", "--affinity", "0,1",
                          "--docker", "img:1", "--docker-user", "1:2", "--adb-mode", "none",
                          "--docker-env", "A=b")
    assert args.docker == "img:1"
    argv = inner_bench_argv(args, parser)
    assert argv[:6] == ["profiler", "bench", "--models", str(tmp_path / "m"), "--out", str(tmp_path / "r/s.results")]
    rest = argv[6:]
    assert rest == ["--resume", "--min-time", "0.05", "--batch-size", "2", "--affinity", "0,1", "--quiet"]
    assert all(not a.startswith(("--docker", "--adb")) for a in rest)
    # the forwarded command parses back to the same bench options
    again = build_parser().parse_args(argv[1:])
    for key in ("runtime", "min_time", "batch_size", "resume", "quiet", "affinity", "warmup", "target"):
        assert getattr(again, key) == getattr(args, key)
    assert again.docker is None


def test_path_options_become_absolute_and_are_mounted(tmp_path, monkeypatch):
    import argparse

    from profiler.cli.docker import add_docker_options, forwarded_paths
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sdk").mkdir()
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "overrides.json").write_text("{}")
    p = argparse.ArgumentParser(prog="profiler bench")
    p.add_argument("--models")
    p.add_argument("--out")
    p.add_argument("--snpe-root")
    p.add_argument("--quantization-overrides", metavar="FILE")
    p.add_argument("--perf-profile", default="burst")
    p.add_argument("--label", metavar="NAME")
    add_docker_options(p)
    args = p.parse_args(["--models", "m", "--out", "o", "--snpe-root", "sdk", "--quantization-overrides",
                         "cfg/overrides.json", "--perf-profile", "sdk", "--label", "cfg", "--docker", "i"])
    argv = inner_bench_argv(args, p)
    assert argv[6:] == ["--snpe-root", str(tmp_path / "sdk"), "--quantization-overrides",
                        str(tmp_path / "cfg" / "overrides.json"), "--perf-profile", "sdk", "--label", "cfg"]
    assert forwarded_paths(args, p) == [str(tmp_path / "sdk"), str(tmp_path / "cfg")]


def test_docker_without_image_uses_the_default_tag():
    args, _ = _parse("bench", "--models", "m", "--out", "o", "--docker")
    assert args.docker == cbuild.DEFAULT_TAG
    assert _parse("bench", "--models", "m", "--out", "o")[0].docker is None


def test_run_has_no_docker_option():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--space", "s", "--out", "o", "--docker", "x"])


def test_mounts_are_minimal_and_keep_writable_dirs():
    mounts = cplan.plan_mounts([("/w/models", False), ("/w/models/sub", False), ("/w/models/results", True),
                             ("/data/blocks", False), ("/w/out", True), ("/w/out/x", False), ("/w/out", False)])
    assert mounts == [cplan.Mount("/data/blocks", "/data/blocks", True), cplan.Mount("/w/models", "/w/models", True),
                      cplan.Mount("/w/out", "/w/out", False), cplan.Mount("/w/models/results", "/w/models/results", False)]


@pytest.mark.parametrize("path", ["/", "/usr", "/opt", "/etc", "/opt/snpe"])
def test_mounting_over_the_image_is_refused(path):
    with pytest.raises(ToolError, match="cannot be mounted into the container"):
        cplan.plan_mounts([(path, True)])


def _models(tmp_path: Path) -> Path:
    other = tmp_path / "elsewhere"
    other.mkdir(parents=True)
    (other / "b.onnx").write_bytes(b"x")
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.onnx").write_bytes(b"x")
    write_manifest(models, {"kind": "modules", "space": None, "granularity": "block", "entries": [
        {"uid": "A", "files": {"onnx": "a.onnx"}, "input_shapes": [[1, 3, 8, 8]]},
        {"uid": "B", "files": {"onnx": str(other / "b.onnx")}, "input_shapes": [[1, 3, 8, 8]]}]})
    return models


def test_host_session_plan(tmp_path):
    models = _models(tmp_path)
    out = tmp_path / "res" / "s.results"
    plan = cplan.plan_bench_run("img", ["profiler", "bench"], models, out, user="1000:1000")
    assert plan.mounts == [cplan.Mount(str(tmp_path / "elsewhere"), str(tmp_path / "elsewhere"), True),
                           cplan.Mount(str(models), str(models), True),
                           cplan.Mount(str(tmp_path / "res"), str(tmp_path / "res"), False)]
    assert plan.network_mode == "none" and plan.device_cgroup_rules == [] and plan.group_add == []
    assert plan.user == "1000:1000" and plan.working_dir == str(tmp_path / "res")
    assert plan.labels[cplan.SESSION_LABEL] == "bench"
    kw = cplan.create_kwargs(plan)
    assert kw["init"] is True and kw["stop_signal"] == "SIGINT" and kw["network_mode"] == "none"
    assert [(m["Source"], m["Target"], m["ReadOnly"]) for m in kw["mounts"]] == [
        (m.source, m.target, m.read_only) for m in plan.mounts]


def test_usb_and_host_server_plans(tmp_path):
    models = _models(tmp_path)
    home = tmp_path / "home"
    (home / ".android").mkdir(parents=True)
    usb = cplan.plan_bench_run("img", ["profiler"], models, tmp_path / "s.results", user="1000:1000",
                            adb_mode="usb", home=home, usb_gids=[0, 46, 1000])
    assert usb.network_mode == "bridge"
    assert usb.device_cgroup_rules == ["c 189:* rmw"]
    assert usb.group_add == ["46"]  # plugdev-like owners of the USB nodes, not root or our own
    assert cplan.Mount("/dev/bus/usb", "/dev/bus/usb", False) in usb.mounts
    assert cplan.Mount(str(home / ".android"), "/profiler-home/.android", False) in usb.mounts
    assert usb.environment["HOME"] == "/profiler-home"

    hs = cplan.plan_bench_run("img", ["profiler"], models, tmp_path / "s.results", user="0:0",
                           adb_mode="host-server", adb_port=5039, snpe_sdk=None)
    assert hs.network_mode == "host" and hs.hostname is None
    assert hs.environment["ANDROID_ADB_SERVER_HOST"] == "127.0.0.1"
    assert hs.environment["ANDROID_ADB_SERVER_PORT"] == "5039"
    assert not any(m.target == "/dev/bus/usb" for m in hs.mounts)


def test_snpe_sdk_is_mounted_at_its_path_and_becomes_snpe_root(tmp_path):
    sdk = tmp_path / "snpe-2.10.0.4541"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "lib").mkdir()
    plan = cplan.plan_bench_run("img", ["profiler"], _models(tmp_path), tmp_path / "res" / "s.results", user="0:0",
                             snpe_sdk=sdk)
    assert cplan.Mount(str(sdk), str(sdk), True) in plan.mounts
    assert plan.environment["SNPE_ROOT"] == str(sdk)
    with pytest.raises(ToolError, match="not an SNPE SDK root"):
        cplan.plan_bench_run("img", ["profiler"], _models(tmp_path / "x"), tmp_path / "s.results", user="0:0",
                          snpe_sdk=tmp_path)


def test_adb_mode_resolution_and_checks():
    assert cplan.resolve_adb_mode("auto", "host", lambda: True) == "none"
    assert cplan.resolve_adb_mode("auto", "phone", lambda: True) == "host-server"
    assert cplan.resolve_adb_mode("auto", "phone", lambda: False) == "usb"
    assert cplan.resolve_adb_mode("usb", "host", lambda: True) == "usb"
    with pytest.raises(ToolError, match="no adb server answers at 127.0.0.1:5037"):
        cengine.check_adb("host-server", 5037, lambda: False)
    cengine.check_adb("host-server", 5037, lambda: True)
    if os.path.isdir(cplan.USB_DIR):
        with pytest.raises(ToolError, match="only one server|owns the phones' USB interfaces"):
            cengine.check_adb("usb", 5037, lambda: True)
        cengine.check_adb("usb", 5037, lambda: False)


def test_listed_adb_servers_need_the_host_network():
    for requested in ("auto", "host-server"):
        assert cplan.resolve_adb_mode(requested, "phone", lambda: False, listed_servers=True) == "host-server"
    for requested in ("usb", "none"):
        with pytest.raises(ToolError, match=f"^--adb-mode {requested} with --adb-server .* use --adb-mode "
                                            "host-server"):
            cplan.resolve_adb_mode(requested, "phone", lambda: True, listed_servers=True)


def test_several_adb_servers_are_forwarded_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, parser = _parse("bench", "--target", "phone", "--models", "m", "--out", "s.results",
                          "--adb-server", "127.0.0.1:15037", "--adb-server", "127.0.0.1:15038", "--docker")
    argv = inner_bench_argv(args, parser)
    assert argv[argv.index("--adb-server"):argv.index("--adb-server") + 4] == \
        ["--adb-server", "127.0.0.1:15037", "--adb-server", "127.0.0.1:15038"]
    assert build_parser().parse_args(argv[1:]).adb_server == ["127.0.0.1:15037", "127.0.0.1:15038"]


def test_adb_server_probe_on_a_closed_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cengine.adb_server_answers(port, timeout=0.5) is False


def test_build_context_holds_sources_sdk_and_wheels_only(tmp_path):
    root = cbuild.source_root()
    sdk = tmp_path / "snpe-2.10.0.4541"
    (sdk / "bin" / "x86_64-linux-clang").mkdir(parents=True)
    (sdk / "lib").mkdir()
    (sdk / "bin" / "x86_64-linux-clang" / "snpe-net-run").write_text("#!/bin/sh\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "x-1-py3-none-any.whl").write_bytes(b"w")
    buf = io.BytesIO()
    args = cbuild.write_context(buf, root, sdk, wheels)
    assert args == {"WHEELS": "wheels", "SNPE_SDK": "snpe-sdk", "SNPE_DIRNAME": "snpe-2.10.0.4541"}
    buf.seek(0)
    names = tarfile.open(fileobj=buf).getnames()
    assert "docker/Dockerfile" in names and "profiler/cli/main.py" in names and "pyproject.toml" in names
    assert "snpe-sdk/bin/x86_64-linux-clang/snpe-net-run" in names and "wheels/x-1-py3-none-any.whl" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith((".venv", "tests/", ".git")) for n in names)
    assert cbuild.source_hash(root) == cbuild.source_hash(root)


def test_unreachable_engine_is_a_one_line_error(tmp_path):
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    models = _models(tmp_path)
    for argv in (["bench", "--models", str(models), "--out", str(tmp_path / "s.results"), "--docker", "img"],
                 ["docker", "build", "--base-image", "x"]):
        proc = subprocess.run([sys.executable, "-m", "profiler", *argv], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"profiler: error: docker engine not reachable at unix://{tmp_path}/no-such.sock: "), lines
