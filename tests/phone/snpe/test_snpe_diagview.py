import math
from pathlib import Path

import pytest

from profiler.errors import ResultsError
from profiler.phone.snpe.diagview import (Measure, parse_clock, parse_diagview, parse_diagview_file, summarize)
from profiler.phone.snpe.dlcinfo import parse_dlc_info_file

DATA = Path(__file__).parent / "data"


def one(name, **kw):
    runs = parse_diagview_file(DATA / name, **kw)
    assert len(runs) == 1
    return runs[0]


def test_snpe1_flat_cpu():
    run = one("diagview_1x_cpu.txt")
    assert run.layout == "flat" and run.averaged
    assert run.sdk_version == "1.33.1.608"
    assert run.metadata["Time Scale"] == "1e-06"
    assert run.total_inference_us == 1874 and run.forward_propagate_us == 1790
    assert run.stats["Init"] == Measure(50612, "us")
    assert run.stats["RPC Init Time"] == Measure(0, "")  # printed "0 NONE"
    assert [(lt.index, lt.value, lt.unit, lt.runtime) for lt in run.layers] == [
        (0, 21, "us", "CPU"), (1, 903, "us", "CPU"), (2, 118, "us", "CPU"),
        (3, 611, "us", "CPU"), (4, 97, "us", "CPU"), (5, 14, "us", "CPU")]
    assert all(lt.name is None and lt.type is None for lt in run.layers)
    # without dlc-info: SNPE 1.x (from the log's version) prints the data layer first: not summed
    assert run.layers[0].is_input and [lt.role for lt in run.layers[1:]] == ["layer"] * 5
    assert run.latencies() == {"Forward Propagate": 1790, "Total Inference Time": 1874, "Layers Time": 1764 - 21}


def test_snpe1_flat_with_dlc_info_excludes_data_layer():
    info = parse_dlc_info_file(DATA / "dlcinfo_1x.txt")
    run = one("diagview_1x_cpu.txt", layer_types=info.layer_types())
    assert [(lt.name, lt.type) for lt in run.layers[:2]] == [("input.1", "data"), ("Conv_0", "convolutional")]
    assert run.layers[0].is_input and not run.layers[1].is_input
    assert run.layers_time == 1764 - 21
    assert run.latencies()["Layers Time"] == 1743


def test_flat_layer_count_mismatch_with_dlc_info_is_an_error():
    with pytest.raises(ResultsError, match="prints 6 layers but dlc-info lists 2"):
        one("diagview_1x_cpu.txt", layer_types=[("input.1", "data"), ("Conv_0", "convolutional")])


def test_snpe2_flat_dsp_cycles_kept_as_cycles_without_clock():
    run = one("diagview_2x_flat_dsp_cycles.txt")
    assert run.sdk_version == "2.9.0.4462"
    assert "CREATE NETWORK" not in run.metadata  # preamble line, not a statistic
    assert run.stats["RPC Execute Time"] == Measure(1502, "us")
    assert run.stats["Accelerator Time"] == Measure(512, "us")
    assert {lt.unit for lt in run.layers} == {"cycles"}
    assert run.layers_unit == "cycles"
    assert not run.layers[0].is_input  # SNPE 2: no data layer, layer 0 is an op
    assert run.layers_time == 0 + 148220 + 30114 + 96402 + 12870 + 2044
    assert run.layers_time_us is None
    assert run.latencies() == {"Forward Propagate": 2350, "Total Inference Time": 2411}


def test_snpe2_flat_dsp_cycles_converted_with_clock():
    run = one("diagview_2x_flat_dsp_cycles.txt", clock_hz=parse_clock("1 GHz"))
    assert {lt.unit for lt in run.layers} == {"us"}
    assert math.isclose(run.layers[1].value, 148.22)
    assert math.isclose(run.latencies()["Layers Time"], 289.65)
    assert run.total_inference_us == 2411  # already µs: untouched


def test_indented_cpu_with_names_and_subnets():
    run = one("diagview_2x_indented_cpu.txt")
    assert run.layout == "indented" and run.averaged
    assert run.sdk_version == "2.31.0.250130151446_114721"
    assert run.stats["Num times yield occurred"] == Measure(0, "")
    assert run.stats["RPC Execute Time"] == Measure(0, "")
    assert run.subnets == [(0, "CPU", Measure(771, "us"))]
    assert [lt.name for lt in run.layers] == ["/block/conv1/Conv", "/block/act1/Relu", "/block/dw/Conv",
                                             "/block/act2/Relu", "/block/pw/Conv", "/block/Add"]
    assert run.layers[4].value == 131 and run.layers[4].runtime == "CPU"
    assert run.latencies() == {"Forward Propagate": 788, "Total Inference Time": 812, "Layers Time": 771}


def test_indented_dsp_cycles_input_op_excluded_names_matched():
    types = [("/block/conv1/Conv", "Conv2d"), ("/block/dw/Conv", "DepthWiseConv2d"),
             ("/block/pw/Conv", "Conv2d"), ("/block/Add", "Eltwise_Binary")]
    run = one("diagview_2x_indented_dsp_cycles.txt", layer_types=types)
    assert run.subnets == [(0, "DSP", Measure(21470, "cycles"))]
    first, last = run.layers[0], run.layers[-1]
    assert (first.name, first.type, first.label) == ("Input OpId_2", "Input", "Input OpId_2 (cycles)")
    assert first.is_input and last.is_extra and last.type == "Output"
    assert run.layers[1].name == "/block/conv1/Conv" and run.layers[1].type == "Conv2d"
    assert run.layers[1].label == "/block/conv1/Conv:OpId_17 (cycles)"
    assert run.layers_time == 6120 + 3480 + 0 + 2950  # the Output op is not a DLC layer
    assert [op.label for op in run.extra_ops] == ["Output OpId_3 (cycles)"]
    assert "Layers Time" not in run.latencies()
    conv = one("diagview_2x_indented_dsp_cycles.txt", clock_hz=parse_clock("500 MHz"))
    assert math.isclose(conv.latencies()["Layers Time"], 12550 / 500)
    assert conv.latencies()["Total Inference Time"] == 1406


def test_three_concatenated_runs_and_summary():
    runs = parse_diagview_file(DATA / "diagview_2x_flat_cpu_3runs.txt")
    assert [r.metadata["Log File Created"] for r in runs] == [
        "Wed Jun 14 10:01:07 2023", "Wed Jun 14 10:01:09 2023", "Wed Jun 14 10:01:11 2023"]
    assert [r.latencies() for r in runs] == [
        {"Forward Propagate": 1150, "Total Inference Time": 1200, "Layers Time": 1100},
        {"Forward Propagate": 1240, "Total Inference Time": 1300, "Layers Time": 1200},
        {"Forward Propagate": 1060, "Total Inference Time": 1100, "Layers Time": 1040}]
    s = summarize(runs)
    assert s["Total Inference Time"] == {"Min_Time": 1100, "Avg_Time": 1200, "Max_Time": 1300}
    assert (s["Layers Time"]["Min_Time"], s["Layers Time"]["Max_Time"]) == (1040, 1200)
    assert math.isclose(s["Layers Time"]["Avg_Time"], (1100 + 1200 + 1040) / 3)
    assert math.isclose(s["Forward Propagate"]["Avg_Time"], (1150 + 1240 + 1060) / 3)


def test_crlf_text_parses_the_same():
    text = (DATA / "diagview_2x_indented_cpu.txt").read_text()
    assert parse_diagview(text.replace("\n", "\r\n"))[0].latencies() == parse_diagview(text)[0].latencies()


def test_truncated_log_names_file_and_line():
    with pytest.raises(ResultsError) as ei:
        parse_diagview_file(DATA / "diagview_truncated.txt")
    msg = str(ei.value)
    assert "diagview_truncated.txt" in msg and "line 38" in msg and "truncated" in msg


def cut_after(name, marker):
    text = (DATA / name).read_text()
    return text[: text.index(marker)]


@pytest.mark.parametrize("text,match", [
    ("", "no SNPE statistics found"),
    ("hello world\n", "no SNPE statistics found"),
    (cut_after("diagview_2x_flat_dsp_cycles.txt", "Average SNPE Statistics"), "no 'Total Inference Time'"),
    (cut_after("diagview_2x_flat_dsp_cycles.txt", "Forward Propagate").replace("2411 us", "24"),
     "'Total Inference Time: 24' has no time unit"),
    ("SNPEDiag\x00\x01\x02", "binary data"),
    ((DATA / "diagview_1x_cpu.txt").read_text() + "5: 3 us : CPU\n", "layer 5 repeated"),
    ((DATA / "diagview_1x_cpu.txt").read_text() + "6: 3 parsecs : CPU\n", "unknown layer time unit"),
    ((DATA / "diagview_1x_cpu.txt").read_text() + "6: 14 us\n", "without the runtime column"),
    ((DATA / "diagview_1x_cpu.txt").read_text().replace("Deserialize: 3318 us", "Deserialize 3318 us"),
     "unreadable statistics line"),
    ((DATA / "diagview_2x_indented_cpu.txt").read_text().replace("Subnet 0 (CPU) : 771 us", "Subnet zero"),
     "unreadable subnet line"),
])
def test_corrupt_output_raises_results_error(text, match):
    with pytest.raises(ResultsError, match=match) as ei:
        parse_diagview(text, "run7/diag.txt")
    assert str(ei.value).startswith("run7/diag.txt")


def test_missing_file():
    with pytest.raises(ResultsError, match="cannot read"):
        parse_diagview_file(DATA / "nope.txt")


@pytest.mark.parametrize("given,hz", [("800 MHz", 8e8), ("1.4GHz", 1.4e9), ("19.2e6 Hz", 19.2e6),
                                      (1e9, 1e9), ("750mhz", 7.5e8), ("2000", 2000.0)])
def test_parse_clock(given, hz):
    assert math.isclose(parse_clock(given), hz)


@pytest.mark.parametrize("bad", ["fast", "0 MHz", -5, "1.2 THz"])
def test_parse_clock_rejects(bad):
    with pytest.raises(ValueError):
        parse_clock(bad)
