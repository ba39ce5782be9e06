"""The CLI with --target phone (a real subprocess against the loopback adb server), `profiler
devices`, `profiler import-snpe-bench`, and the option wiring of bench/run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.cli.main import build_parser, main
from profiler.cli.phone import phone_config
from profiler.session.store import read_store

from .conftest import SERIAL_A, SERIAL_B
from .models import standard_specs, write_models

DATA = Path(__file__).resolve().parent / "snpe" / "data"
ROOT = Path(__file__).resolve().parents[2]


def _env(port=None):
    env = dict(os.environ, ADBUTILS_ADB_PATH="/bin/false", PYTHONPATH=str(ROOT))
    env.pop("SNPE_ROOT", None)
    if port is not None:
        env["ANDROID_ADB_SERVER_PORT"] = str(port)
    return env


def _profiler(*args, env):
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_bench_target_phone_cli_then_table(tmp_path, phones, sdk2):
    models = write_models(tmp_path / "m", standard_specs(2))
    out = tmp_path / "cli.results"
    proc = _profiler("bench", "--target", "phone", "--models", str(models), "--out", str(out),
                     "--runtime", "CPU,GPU_FP16", "--snpe-root", str(sdk2), "--runs", "2", "--input-count", "2",
                     "--perf-profile", "burst", "--remeasure", "0", "-q", env=_env(phones.port))
    assert proc.returncode == 0, proc.stderr
    assert "4 measured, 0 failed" in proc.stderr and "Traceback" not in proc.stderr
    contents = read_store(out)
    assert contents.meta["phone"]["perf_profile"] == "burst" and contents.meta["phone"]["runs"] == 2
    assert {r["device_state"]["perf_profile"] for r in contents.records} == {"burst"}
    assert len(contents.done()) == 4
    assert main(["table", "--results", str(out), "--out", str(tmp_path / "t")]) == 0
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert {r[1] for r in rows} == {"CPU", "GPU_FP16"} and len(rows) == 2 * 2 * 3 * 3
    # --resume with --adb-port (no env var) finds everything measured
    env = _env()
    env.pop("ANDROID_ADB_SERVER_PORT", None)
    again = _profiler("bench", "--target", "phone", "--models", str(models), "--out", str(out), "--resume",
                      "--runtime", "CPU,GPU_FP16", "--snpe-root", str(sdk2), "--adb-port", str(phones.port),
                      "--devices", SERIAL_B, "-q", env=env)
    assert again.returncode == 0, again.stderr
    assert "0 measured, 0 failed, 4 already in the store" in again.stderr


def test_bench_target_phone_errors_are_one_line(tmp_path, phones, sdk2):
    models = write_models(tmp_path / "m", standard_specs(1))
    base = ["bench", "--target", "phone", "--models", str(models), "--out", str(tmp_path / "e.results"), "-q"]
    cases = [
        (["--runtime", "ORT_CPU", "--snpe-root", str(sdk2)], "--runtime ORT_CPU: not a phone runtime"),
        (["--runtime", "CPU"], "SNPE SDK not found: pass --snpe-root"),
        (["--runtime", "CPU", "--snpe-root", str(sdk2), "--devices", "GONE1"], "device GONE1 not found"),
        (["--runtime", "DSP", "--snpe-root", str(sdk2), "--act-bitwidth", "16", "--use-adjusted-weights-quantizer",
          "--weight-bitwidth", "16"], "adjusted weights quantizer only applies to 8-bit weights"),
    ]
    for extra, message in cases:
        proc = _profiler(*base, *extra, env=_env(phones.port))
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("profiler: error: ") and message in lines[0], proc.stderr
    assert not (tmp_path / "e.results").exists()


def test_devices_command(phones, capsys):
    phones.add_device("LOCKED9", state="unauthorized")
    assert main(["devices", "--adb-port", str(phones.port)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    server = f"127.0.0.1:{phones.port}"
    assert lines[0].split() == ["SERIAL", "STATE", "MODEL", "SOC", "ANDROID-SDK", "ABI", "ADB-SERVER"]
    assert lines[1].split() == [SERIAL_A, "device", "SM-S911B", "SM8550", "33", "arm64-v8a", server]
    assert lines[3].split() == ["LOCKED9", "unauthorized", "-", "-", "-", "-", server]
    assert "LOCKED9 is unauthorized: unlock the phone" in err
    for serial in (SERIAL_A, SERIAL_B, "LOCKED9"):
        phones.vanish(serial)
    assert main(["devices", "--adb-port", str(phones.port)]) == 1
    assert "no devices" in capsys.readouterr().err


def test_devices_command_subprocess_uses_env_port(phones):
    proc = _profiler("devices", env=_env(phones.port))
    assert proc.returncode == 0, proc.stderr
    assert [ln.split()[0] for ln in proc.stdout.splitlines()] == ["SERIAL", SERIAL_A, SERIAL_B]


def test_phone_options_reach_the_config_for_bench_and_run(tmp_path):
    for cmd in (["bench", "--models", "m", "--out", "o"], ["run", "--space", "s.json", "--out", "w"]):
        args = build_parser().parse_args(cmd + [
            "--target", "phone", "--devices", "A1,B2", "--snpe-root", "/sdk", "--adb-host", "10.0.0.2",
            "--adb-port", "5038", "--runs", "7", "--perf-profile", "burst", "--profiling-level", "moderate",
            "--buffer", "ub_float", "--cooldown-temp", "38", "--cooldown-timeout", "60", "--dsp-clock", "1.2GHz",
            "--act-bitwidth", "16", "--bias-bitwidth", "8", "--use-enhanced-quantizer", "--cle",
            "--htp-socs", "SM8550", "--quantization-overrides", "q.json", "--calibration-images", "imgs",
            "--calibration-count", "5", "--input-count", "3"])
        cfg = phone_config(args)
        assert cfg.devices == ("A1", "B2") and cfg.adb_host == "10.0.0.2" and cfg.adb_port == 5038
        assert (cfg.runs, cfg.perf_profile, cfg.profiling_level, cfg.buffer) == (7, "burst", "moderate", "ub_float")
        assert (cfg.cooldown_temp_c, cfg.cooldown_timeout_s, cfg.dsp_clock_hz) == (38.0, 60.0, 1.2e9)
        q = cfg.quantize
        assert (q.act_bitwidth, q.weights_bitwidth, q.bias_bitwidth) == (16, 8, 8)
        assert q.use_enhanced_quantizer and q.cle and q.htp_socs == ("sm8550",)
        assert (cfg.quantization_overrides, cfg.calibration_images, cfg.calibration_count, cfg.input_count) == \
            ("q.json", "imgs", 5, 3)
    defaults = phone_config(build_parser().parse_args(["bench", "--models", "m", "--out", "o", "--target", "phone"]))
    assert (defaults.runs, defaults.perf_profile, defaults.profiling_level) == (10, "sustained_high_performance",
                                                                              "detailed")
    assert defaults.quantize.bias_bitwidth == 32 and defaults.devices is None and defaults.adb_servers == ()
    multi = phone_config(build_parser().parse_args(["bench", "--models", "m", "--out", "o", "--target", "phone",
                                                    "--adb-server", "127.0.0.1:15037", "--adb-server", "h2:5037"]))
    assert multi.adb_servers == ("127.0.0.1:15037", "h2:5037")


def test_import_snpe_bench_csv_and_json_to_table(tmp_path, capsys):
    out = tmp_path / "imp.results"
    uid = "Tiny[stem]"
    assert main(["import-snpe-bench", "--results", str(DATA / "benchmark_stats_tiny_2x.csv"), "--uid", uid,
                 "--out", str(out)]) == 0
    assert "imported 2 results (1 modules, runtimes CPU, DSP_ub_tf8)" in capsys.readouterr().err
    contents = read_store(out)
    assert contents.meta["target"] == "snpe_bench" and contents.meta["device"]["model"] == "SM-S901B"
    assert contents.meta["tools"]["snpe"] == "2.5.0.4052"
    latest = contents.latest()
    cpu = latest[(uid, "CPU")]
    assert len(cpu["samples"]["Total Inference Time"]) == 3 and "rebuilt" in cpu["warnings"][0]
    # a second file for another module is appended to the same store, matched by name
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text(json.dumps({
        "format": "profiler-models", "version": 1, "kind": "modules", "entries": [
            {"uid": "Tiny[json]", "files": {"onnx": "tiny.onnx", "nnp": "tiny.nnp"}, "input_shapes": [[1, 3, 8, 8]]}]}))
    assert main(["import-snpe-bench", "--results", str(DATA / "benchmark_stats_tiny_2x.json"), "--models",
                 str(models), "--out", str(out)]) == 0
    assert main(["table", "--results", str(out), "--out", str(tmp_path / "t")]) == 0
    table = json.loads((tmp_path / "t.json").read_text())
    data = table.get("data", table)
    tit = data[uid]["CPU"]["Total Inference Time"]
    assert (tit["Min_Time"], tit["Avg_Time"], tit["Max_Time"]) == (790, 812, 840)   # as snpe_bench wrote them
    lt = data[uid]["CPU"]["Layers Time"]
    assert (lt["Min_Time"], lt["Avg_Time"], lt["Max_Time"]) == (391 + 20 + 290, 402 + 21 + 300, 420 + 23 + 311)
    assert "Tiny[json]" in data and "DSP_ub_tf8" in data["Tiny[json]"]


def test_import_snpe_bench_errors(tmp_path):
    with pytest.raises(Exception, match="--uid names one module"):
        from profiler.phone.snpe_import import import_bench_results
        import_bench_results([DATA / "benchmark_stats_tiny_2x.csv", DATA / "benchmark_stats_tiny_1x.csv"],
                             tmp_path / "x.results", uid="U")
    models = write_models(tmp_path / "m", standard_specs(1))
    proc = _profiler("import-snpe-bench", "--results", str(DATA / "benchmark_stats_tiny_2x.csv"), "--models",
                     str(models), "--out", str(tmp_path / "y.results"), env=_env())
    assert proc.returncode == 2 and "no module of" in proc.stderr and "TINY" in proc.stderr
    # a bench session store is not appended to
    from profiler.session.store import ResultsStore
    bench_store = tmp_path / "bench.results"
    ResultsStore.create(bench_store, {"target": "phone"}).close()
    proc = _profiler("import-snpe-bench", "--results", str(DATA / "benchmark_stats_tiny_2x.csv"), "--uid", "U",
                     "--out", str(bench_store), env=_env())
    assert proc.returncode == 2 and "holds a 'phone' bench session" in proc.stderr


def test_cli_defaults_match_the_library():
    import profiler.cli.phone as cli_phone
    import profiler.phone.target as phone
    from profiler.phone.snpe.commands import PERF_PROFILES
    assert cli_phone.PERF_PROFILES == PERF_PROFILES
    assert (cli_phone.DEFAULT_PERF_PROFILE, cli_phone.DEFAULT_PROFILING_LEVEL, cli_phone.DEFAULT_RUNS) == \
        (phone.DEFAULT_PERF_PROFILE, phone.DEFAULT_PROFILING_LEVEL, phone.DEFAULT_RUNS)


@pytest.mark.parametrize("mn, avg, mx, runs", [(790, 812, 840, 3), (10, 13, 30, 10), (5, 5, 5, 4), (7, 8, 9, 2),
                                               (100, 101, 103, None), (3, 3, 4, 1)])
def test_rebuilt_samples_reproduce_min_avg_max(mn, avg, mx, runs):
    from profiler.phone.snpe_import import samples_from_summary
    from profiler.session.stats import summarize
    s = summarize(samples_from_summary(mn, avg, mx, runs))
    assert (s["Min_Time"], s["Max_Time"]) == (mn, mx)
    if (runs or 3) <= 2 and avg == mn < mx:  # no samples have that mean: the extremes are kept
        assert s["Count"] == 2
    else:
        assert s["Avg_Time"] == pytest.approx(avg)
        assert s["Count"] == (runs or 3) or (runs in (1, 2) and s["Count"] >= 3)
