import json
from pathlib import Path

import pytest

from profiler.phone.snpe.bench_import import bench_profiles, parse_bench_json
from profiler.phone.snpe.results import samples_from_summary
from profiler.session.stats import summarize

DATA = Path(__file__).parent / "data"


def _with_runs(runs, tit):
    data = json.loads((DATA / "benchmark_stats_tiny_2x.json").read_text())
    data["Runs"] = runs
    data["Execution_Data"]["CPU"]["Total Inference Time"].update(zip(("Min_Time", "Avg_Time", "Max_Time"), tit))
    return parse_bench_json(data, "runs.json")


@pytest.mark.parametrize("runs,tit", [(2, (790, 812, 840)), (2, (790, 815, 840)), (1, (812, 812, 812)),
                                      (2, (100, 101, 103))])
def test_runs_1_and_2_store_the_files_min_avg_max_exactly(runs, tit):
    prof = next(p for p in bench_profiles(_with_runs(runs, tit)) if p.runtime == "CPU")
    assert prof.runs == runs and prof.rebuilt
    assert prof.summary["Total Inference Time"] == dict(zip(("Min_Time", "Avg_Time", "Max_Time"), tit))
    for key, samples in prof.latency_samples().items():
        s = summarize(samples)
        want = prof.summary[key]
        assert (s["Min_Time"], s["Max_Time"]) == (want["Min_Time"], want["Max_Time"])
        assert s["Avg_Time"] == pytest.approx(want["Avg_Time"], abs=1e-9), key
    s = summarize(prof.latency_samples()["Total Inference Time"])
    assert s["Avg_Time"] == pytest.approx(tit[1])  # not (min + max) / 2 = 815 for the first case


def test_two_runs_midpoint_needs_no_extra_sample_and_truncation_keeps_extremes():
    assert samples_from_summary(7, 8, 9, 2) == [7, 9]
    assert samples_from_summary(790, 812, 840, 2) == [790, 840, 806]  # mean 812
    assert samples_from_summary(100, 100, 101, 2) == [100, 101]  # int(100.5): no samples have mean 100
    with pytest.raises(ValueError, match="inconsistent"):
        samples_from_summary(10, 20, 12, 2)


def test_bench_profiles_layers_and_stats():
    prof = next(p for p in bench_profiles(_with_runs(3, (790, 812, 840))) if p.runtime == "DSP_ub_tf8")
    assert prof.tool == "snpe-bench" and prof.sdk_version == "2.5.0.4052"
    assert [lay.name for lay in prof.layers][:2] == ["image", "/stem/Conv"] and prof.layers[1].runtime == "DSP"
    assert "Load" in prof.stats and "Layers Time" in prof.summary
