"""report.json / report.png and the CLI summary table."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from profiler.errors import ProfilerError
from profiler.fit.models import FitReport, fit_runtimes
from profiler.fit.report import FORMAT, VERSION, plot_report, read_report, report_dict, summary_lines, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _ids(n):
    return [f"arch-{i:04d}" for i in range(n)]


@pytest.fixture(scope="module")
def report() -> FitReport:
    rng = np.random.default_rng(0)
    x = rng.uniform(1000, 5000, 40)
    y = 1.25 * x + 300 + rng.normal(0, 40, 40)
    y[7] *= 1.6  # one badly predicted network, labelled in the plot
    x2 = rng.uniform(200, 900, 4)
    y2 = 0.8 * x2 + 50 + rng.normal(0, 5, 4)
    return fit_runtimes({"CPU": (_ids(40), x, y), "GPU_FP16": (_ids(4), x2, y2)}, folds=5, seed=0)


def _png_size(data: bytes):
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_write_report_files(report, tmp_path):
    out = tmp_path / "new" / "dir"
    files = write_report(report, out, extra={"table_key": "Layers Time", "missing": {"CPU": ["arch-0099"]},
                                             "format": "overridden?", "path": out})
    assert set(files) == {"report_json", "report_png"}
    assert files["report_json"] == out / "report.json" and files["report_png"] == out / "report.png"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.png"]  # no temp files

    doc = json.loads(files["report_json"].read_text(encoding="utf-8"))
    assert doc["format"] == FORMAT == "profiler-fit-report" and doc["version"] == VERSION == 1
    assert doc["table_key"] == "Layers Time" and doc["missing"] == {"CPU": ["arch-0099"]}
    assert doc["path"] == str(out)
    assert doc == report_dict(report, {"table_key": "Layers Time", "missing": {"CPU": ["arch-0099"]},
                                       "path": out})
    cpu = doc["runtimes"]["CPU"]
    assert cpu["scale"] == report.runtimes["CPU"].scale
    assert {n["id"]: n["heldout_pred_us"] for n in cpu["networks"]} == report.runtimes["CPU"].heldout_pred
    assert set(cpu["heldout"]) == {"before", "after"} and "note" in cpu["insample"]
    # the JSON round-trips into the same report
    assert read_report(files["report_json"]).to_dict() == report.to_dict()

    data = files["report_png"].read_bytes()
    width, height = _png_size(data)
    assert width >= 800 and height >= 600  # two runtimes -> two rows of panels
    assert len(data) > 20_000
    from matplotlib.image import imread
    pixels = imread(str(files["report_png"]))
    assert pixels.std() > 0.05  # not a blank image


def test_plot_has_three_panels_per_runtime(report):
    fig = plot_report(report)
    axes = fig.get_axes()
    assert len(axes) == 6
    assert "CPU" in axes[0].get_title() and "GPU_FP16" in axes[3].get_title()
    assert "decile" in axes[2].get_xlabel()
    assert axes[0].get_xlabel() == "measured latency (us)"
    # the worst network (> 10 % off) is labelled by id
    assert any(t.get_text() == "arch-0007" for t in axes[0].texts)
    empty = plot_report(FitReport(runtimes={}))
    assert len(empty.get_axes()) == 1


def test_write_report_replaces_existing_files(report, tmp_path):
    (tmp_path / "report.json").write_text("old")
    write_report(report, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["format"] == FORMAT


def test_read_report_errors(tmp_path):
    p = tmp_path / "r.json"
    with pytest.raises(ProfilerError, match="cannot read"):
        read_report(p)
    p.write_text("{")
    with pytest.raises(ProfilerError, match="not a JSON fit report"):
        read_report(p)
    p.write_text(json.dumps({"format": "profiler-table", "version": 1}))
    with pytest.raises(ProfilerError, match="not a profiler-fit-report"):
        read_report(p)
    p.write_text(json.dumps({"format": FORMAT, "version": 2}))
    with pytest.raises(ProfilerError, match="version 2; this profiler reads <= 1"):
        read_report(p)
    p.write_text(json.dumps({"format": FORMAT, "version": 1, "model": {}}))
    with pytest.raises(ProfilerError, match="incomplete"):
        read_report(p)


def test_summary_lines(report):
    lines = summary_lines(report)
    header, cpu, gpu, foot = lines[:4]  # header, two runtimes, footnote, then the edges per runtime
    assert any(l.startswith("CPU: worst ") for l in lines[4:])
    assert any(l.startswith("CPU: constraint check") for l in lines[4:])
    assert header.split()[:2] == ["runtime", "n"]
    assert cpu.startswith("CPU ") and gpu.startswith("GPU_FP16 ")
    r = report.runtimes["CPU"]
    assert f"{r.heldout_before['mape']:.2f}% -> {r.heldout_after['mape']:.2f}%" in cpu
    assert f"{100 * r.heldout_after['within_10']:.1f}%" in cpu
    assert f"{r.heldout_after['spearman']:.4f}" in cpu and f"{r.scale:.6g}" in cpu
    # columns are aligned: every row ends its right-aligned columns at the same offsets
    for col in ("MAPE before -> after", "Spearman"):
        end = header.index(col) + len(col)
        assert cpu[end - 1] != " " and gpu[end - 1] != " "
    assert "k-fold" in foot and "leave-one-out" in foot and "least-squares" in foot


def test_summary_shows_nan_as_na():
    rep = fit_runtimes({"CPU": (_ids(3), [1.0, 2.0, 3.0], [5.0, 5.0, 5.0])})
    line = summary_lines(rep)[1]
    assert "CPU" in line  # Spearman of constant measurements is NaN
    assert "n/a" in line
