"""``profiler import --format ...`` on the real (and reconstructed) samples, then ``profiler table``."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from profiler.session.store import read_store

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "snpe" / "data"
REAL = DATA / "real"


def _profiler(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "profiler", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def _table(tmp_path, *stores):
    proc = _profiler("table", "--results", *map(str, stores), "--out", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "t.csv", newline="") as f:
        return {(r[0], r[1], r[2], r[3]): float(r[4]) for r in csv.reader(f)}


def test_import_each_format_then_table(tmp_path):
    stores = {}
    for fmt, path, extra in (("qnn-profile", REAL / "qnn_profile_viewer_2.13_htp.txt", []),
                             ("ai-hub", REAL / "ai_hub_profile_reconstructed.json", ["--runtime", "NPU"]),
                             ("diagview-csv", REAL / "diagview_output_csv_reconstructed.csv", [])):
        out = tmp_path / f"{fmt}.results"
        proc = _profiler("import", "--format", fmt, str(path), "--uid", f"U-{fmt}", "--out", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        assert "imported 1 results" in proc.stderr
        stores[fmt] = out
    hub = read_store(stores["ai-hub"]).records[0]
    # AI Hub's per-run inference times are kept exactly, not rebuilt
    assert hub["runtime"] == "NPU" and hub["samples"]["Total Inference Time"] == [10003.0, 4205.0]
    assert hub["imported"]["format"] == "ai-hub" and not hub.get("warnings")
    qnn = read_store(stores["qnn-profile"]).records[0]
    assert qnn["runtime"] == "HTP" and len(qnn["samples"]["Total Inference Time"]) == 1
    dv = read_store(stores["diagview-csv"]).records[0]
    assert dv["runtime"] == "DSP" and dv["layers"]["items"]
    rows = _table(tmp_path, *stores.values())
    assert rows[("U-ai-hub", "NPU", "Total Inference Time", "Avg_Time")] == 7104.0
    assert rows[("U-ai-hub", "NPU", "Total Inference Time", "Max_Time")] == 10003.0
    assert rows[("U-qnn-profile", "HTP", "Total Inference Time", "Min_Time")] == \
        qnn["samples"]["Total Inference Time"][0]
    assert ("U-diagview-csv", "DSP", "Total Inference Time", "Avg_Time") in rows


def test_import_snpe_bench_format_and_alias_agree_and_match_by_name(tmp_path):
    src = DATA / "benchmark_stats_tiny_2x.csv"
    a, b = tmp_path / "a.results", tmp_path / "b.results"
    p1 = _profiler("import", "--format", "snpe-bench", str(src), "--uid", "U", "--out", str(a))
    p2 = _profiler("import-snpe-bench", "--results", str(src), "--uid", "U", "--out", str(b))
    assert p1.returncode == 0 and p2.returncode == 0, p1.stderr + p2.stderr
    ra, rb = read_store(a).records, read_store(b).records
    assert [(r["runtime"], r["samples"]) for r in ra] == [(r["runtime"], r["samples"]) for r in rb]
    assert all("imported from snpe_bench" in r["warnings"][0] for r in ra)
    # --models: a non-bench file is matched by its stem
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.json").write_text(json.dumps({"entries": []}))
    proc = _profiler("import", "--format", "ai-hub", str(REAL / "ai_hub_profile_reconstructed.json"), "--models",
                     str(models), "--out", str(tmp_path / "c.results"))
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_import_errors_are_one_line(tmp_path):
    qnn = REAL / "qnn_profile_viewer_2.13_htp.txt"
    for args, want in ((["--format", "qnn-profile", str(REAL / "diagview_2.37_cpu.txt"), "--uid", "U"],
                        "not qnn-profile-viewer output"),
                       (["--format", "snpe-bench", str(DATA / "benchmark_stats_tiny_2x.csv"), "--uid", "U",
                         "--runtime", "DSP"], "--runtime does not apply"),
                       (["--format", "qnn-profile", str(qnn), str(qnn), "--uid", "U"], "--uid names one module")):
        proc = _profiler("import", *args, "--out", str(tmp_path / "x.results"))
        assert proc.returncode != 0, args
        assert want in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    # a store of another format is not appended to
    out = tmp_path / "q.results"
    assert _profiler("import", "--format", "qnn-profile", str(qnn), "--uid", "U", "--out", str(out)).returncode == 0
    proc = _profiler("import", "--format", "ai-hub", str(REAL / "ai_hub_profile_reconstructed.json"), "--uid", "V",
                     "--out", str(out))
    assert proc.returncode != 0 and "not ai-hub imports" in proc.stderr
