import json
from pathlib import Path

import pytest

from profiler.errors import ResultsError
from profiler.phone.snpe.bench_import import BenchFlavor, load_bench_results, parse_bench_csv, parse_bench_json

DATA = Path(__file__).parent / "data"


def test_fixture_csv_rows_end_in_crlf():
    raw = (DATA / "benchmark_stats_tiny_2x.csv").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 40


def test_csv_2x_two_flavors():
    res = load_bench_results(DATA / "benchmark_stats_tiny_2x.csv")
    assert res.sdk_version == "2.5.0.4052"
    assert res.device["ro.product.model"] == "SM-S901B" and res.device["ro.build.version.sdk"] == "33"
    assert res.config["Runtimes"] == "CPU,DSP_ub_tf8"  # a quoted CSV cell
    assert res.config["PerfProfile"] == "burst" and res.config["Runs"] == "3"
    assert list(res.flavors) == ["CPU", "DSP_ub_tf8"]
    cpu, dsp = res.flavors["CPU"], res.flavors["DSP_ub_tf8"]
    assert cpu.runs == 3 and dsp.runtime == "DSP"
    assert cpu.rows["Load"] == {"Min_Time": 498, "Avg_Time": 510, "Max_Time": 530, "Runtime": "CPU"}
    assert dsp.rows["Total Inference Time"]["Runtime"] == "CPU|DSP"
    assert dsp.rows["layer_001 (Name:/stem/Conv Type:Conv2d)"]["Runtime"] == "DSP"
    assert cpu.latencies() == {
        "Forward Propagate": {"Min_Time": 770, "Avg_Time": 788, "Max_Time": 815},
        "Total Inference Time": {"Min_Time": 790, "Avg_Time": 812, "Max_Time": 840},
        # layer_000 is Type:data and excluded: 402+21+300, 391+20+290, 420+23+311
        "Layers Time": {"Min_Time": 701, "Avg_Time": 723, "Max_Time": 754},
    }
    assert [(i, n, t) for i, n, t, _ in cpu.layer_rows()] == [
        (0, "image", "data"), (1, "/stem/Conv", "Conv2d"), (2, "/stem/Relu", "ElementWiseNeuron"),
        (3, "/head/Gemm", "FullyConnected")]


def test_json_2x_matches_csv():
    csv_res = load_bench_results(DATA / "benchmark_stats_tiny_2x.csv")
    json_res = load_bench_results(DATA / "benchmark_stats_tiny_2x.json")
    assert json_res.sdk_version == csv_res.sdk_version
    assert json_res.device["ro.product.model"] == "SM-S901B"
    assert json_res.config["Runtimes"] == "CPU,DSP_ub_tf8"
    for flavor in ("CPU", "DSP_ub_tf8"):
        assert json_res.flavors[flavor].latencies() == csv_res.flavors[flavor].latencies()
        assert json_res.flavors[flavor].rows == csv_res.flavors[flavor].rows


def test_csv_1x_without_runtime_column_and_mem_table_skipped():
    res = load_bench_results(DATA / "benchmark_stats_tiny_1x.csv")
    assert res.sdk_version == "1.17.0.1"
    assert list(res.flavors) == ["GPU", "CPU"]  # GPU_mem is not a timing table
    gpu = res.flavors["GPU"]
    assert gpu.runs == 2
    assert gpu.rows["Total Inference Time"] == {"Min_Time": 11652, "Avg_Time": 11676, "Max_Time": 11700}
    assert gpu.latencies()["Layers Time"] == {"Min_Time": 8982 + 43, "Avg_Time": 9001 + 44, "Max_Time": 9020 + 45}
    assert res.flavors["CPU"].rows["Load"]["Avg_Time"] == int(20011 * 2.5)


def test_json_1x_without_runtime_field():
    res = load_bench_results(DATA / "benchmark_stats_tiny_1x.json")
    assert res.sdk_version == "1.33.1.608"
    assert res.device == {"ro.product.model": "Pixel 3", "ro.product.board": "sdm845",
                          "ro.product.cpu.abi": "arm64-v8a", "ro.build.version.sdk": "29",
                          "ro.product.manufacturer": "Google"}
    assert res.config["Date"] == "2020-03-24"
    fp16 = res.flavors["GPU_FP16"]
    assert fp16.runtime == "GPU_FP16" and "Runtime" not in fp16.rows["Load"]
    assert fp16.latencies()["Layers Time"]["Avg_Time"] == 723


@pytest.mark.parametrize("flavor,runtime", [("GPU_ub_float", "GPU"), ("DSP_ub_tf16", "DSP"),
                                            ("GPU_FP16", "GPU_FP16"), ("AIP_ACT16_ub_tf8", "AIP_ACT16")])
def test_flavor_runtime(flavor, runtime):
    assert BenchFlavor(flavor).runtime == runtime


def test_json_errors():
    with pytest.raises(ResultsError, match="no Execution_Data"):
        parse_bench_json({"Units": "us"}, "r.json")
    with pytest.raises(ResultsError, match="Units is 'kB'"):
        parse_bench_json({"Units": "kB", "Execution_Data": {"CPU_mem": {}}}, "r.json")
    with pytest.raises(ResultsError, match=r"Execution_Data\['CPU'\]\['Load'\] needs numeric"):
        parse_bench_json({"Execution_Data": {"CPU": {"Load": {"Avg_Time": "x", "Min_Time": 1, "Max_Time": 2}}}}, "r.json")
    with pytest.raises(ResultsError, match="no timing results"):
        parse_bench_json({"Execution_Data": {"CPU_mem": {}}}, "r.json")


def test_csv_errors(tmp_path):
    with open(DATA / "benchmark_stats_tiny_2x.csv", newline="") as f:
        text = f.read()
    assert "\r\n" in text
    with pytest.raises(ResultsError, match="no timing table"):
        parse_bench_csv(text.split(",, ,CPU_timing")[0], "b.csv")
    with pytest.raises(ResultsError, match="non-numeric time"):
        parse_bench_csv(text.replace(",,Load,510,", ",,Load,abc,"), "b.csv")
    with pytest.raises(ResultsError, match="cannot read benchmark header"):
        parse_bench_csv(text.replace("CPU_timing(3 runs)", "CPU timing"), "b.csv")
    other = tmp_path / "stats.txt"
    other.write_text("x")
    with pytest.raises(ResultsError, match="expected a benchmark_stats"):
        load_bench_results(other)
    bad = tmp_path / "b.json"
    bad.write_text("{")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_bench_results(bad)


def test_layers_time_absent_without_layer_rows():
    res = parse_bench_json({"Units": "us", "Execution_Data": {"CPU": {
        "Total Inference Time": {"Min_Time": 1, "Avg_Time": 2, "Max_Time": 3}}}})
    assert res.flavors["CPU"].latencies() == {"Total Inference Time": {"Min_Time": 1, "Avg_Time": 2, "Max_Time": 3}}
    assert json.dumps(res.config) == "{}"
