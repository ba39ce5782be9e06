"""New pure importers on published (or documented-format) output; see data/real/SOURCES.md."""
import json
import math
from pathlib import Path

import pytest

from profiler.errors import ResultsError
from profiler.phone.snpe.ai_hub import load_ai_hub_profile, parse_ai_hub_profile
from profiler.phone.snpe.diagview import Measure
from profiler.phone.snpe.diagview_csv import load_diagview_csv, parse_diagview_csv
from profiler.phone.snpe.dlcinfo import parse_dlc_info_csv, parse_dlc_info_file
from profiler.phone.snpe.qnn_profile import parse_qnn_profile, parse_qnn_profile_file
from profiler.session.stats import summarize

REAL = Path(__file__).parent / "data" / "real"


# ---- qnn-profile-viewer (real, QNN 2.13.2, HTP)

def test_qnn_profile_viewer_213_htp():
    prof = parse_qnn_profile_file(REAL / "qnn_profile_viewer_2.13_htp.txt")
    assert prof.execute("NetRun") == Measure(2952, "us")
    assert prof.execute("Backend (Number of HVX threads used)") == Measure(4, "count")
    assert prof.sections["Init Stats"]["NetRun"] == Measure(331158, "us")
    assert prof.sections["Finalize Stats"]["Graph 0 (model)/Backend (RPC (finalize) time)"] == Measure(4922, "us")
    assert prof.sections["De-Init Stats"]["Backend (QNN Accelerator (deinit) time)"] == Measure(966, "us")
    assert prof.sections["Execute Stats (Overall)"]["NetRun IPS"] == Measure(214.8888, "inf/sec")
    assert prof.latencies() == {"Total Inference Time": 2952, "Forward Propagate": 2949}
    imp = prof.to_profile()
    assert imp.tool == "qnn-profile-viewer" and imp.runs == 1 and not imp.rebuilt
    assert imp.latency_samples() == {"Total Inference Time": [2952], "Forward Propagate": [2949]}
    assert imp.stats["Execute Stats (Average)/Graph 0 (model)/Backend (Accelerator (execute) time)"] == 2492


def test_qnn_profile_detailed_per_op_cycles():
    text = (REAL / "qnn_profile_viewer_2.13_htp.txt").read_text().replace(
        "    Backend (QNN (execute) time): 2949 us\n",
        "    Backend (QNN (execute) time): 2949 us\n"
        "    Backend (Accelerator (execute) time (cycles)): 2000 cycles\n"
        "        Input OpId_2 (cycles): 300 cycles\n"
        "        /model/conv/Conv:OpId_27 (cycles): 1500 cycles\n"
        "        Output OpId_3 (cycles): 200 cycles\n")
    prof = parse_qnn_profile(text, "detailed.txt")
    assert [(op.name, op.role) for op in prof.ops] == [("Input OpId_2", "input"), ("/model/conv/Conv:OpId_27", "layer"),
                                                        ("Output OpId_3", "extra")]
    assert "Layers Time" not in prof.latencies()
    assert math.isclose(prof.latencies(clock_hz=1e9)["Layers Time"], 1.5)


@pytest.mark.parametrize("text,match", [
    ("", "no 'Execute Stats \\(Average\\):' section"),
    ((REAL / "diagview_2.37_cpu.txt").read_text(), "this is snpe-diagview output"),
    ((REAL / "qnn_profile_viewer_2.13_htp.txt").read_text().replace("NetRun:  2952 us", "NetRun:  2952 parsecs"),
     "unknown unit 'parsecs'"),
    ((REAL / "qnn_profile_viewer_2.13_htp.txt").read_text().split("--- Graph 0 (model):\n    NetRun:  2952")[0],
     "has no 'NetRun' line"),
])
def test_qnn_profile_errors(text, match):
    with pytest.raises(ResultsError, match=match) as ei:
        parse_qnn_profile(text, "q.txt")
    assert str(ei.value).startswith("q.txt") and "\n" not in str(ei.value)


# ---- Qualcomm AI Hub profile JSON (reconstructed from the qai_hub client's own test)

def test_ai_hub_profile():
    prof = load_ai_hub_profile(REAL / "ai_hub_profile_reconstructed.json")
    assert prof.tool == "ai-hub" and prof.runtime == "CPU+NPU" and prof.runs == 2
    assert prof.samples["Total Inference Time"] == [10003, 4205]  # per run, not the headline minimum
    assert prof.stats["estimated_inference_time"] == 3652 and prof.stats["first_load_time"] == 1374293
    assert prof.stats["warm_load_time"] == 277823
    assert [(lay.name, lay.type, lay.value, lay.runtime) for lay in prof.layers] == [
        ("model/tf.math.divide/truediv", "MUL", 23, "CPU"), ("model/tf.compat.v1.transpose/transpose", "TRANSPOSE", 127, "NPU")]
    assert prof.samples["Layers Time"] == [150]
    s = summarize(prof.latency_samples()["Total Inference Time"])
    assert (s["Min_Time"], s["Max_Time"], s["Count"]) == (4205, 10003, 2)


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d.pop("execution_summary"), "no 'execution_summary'"),
    (lambda d: d["execution_summary"].pop("all_inference_times"), "no 'all_inference_times'"),
    (lambda d: d["execution_summary"].__setitem__("all_inference_times", [10003, "fast"]), r"all_inference_times\[1\]"),
    (lambda d: d["execution_detail"][1].pop("execution_time"), "has no 'execution_time'"),
])
def test_ai_hub_errors(mutate, match):
    data = json.loads((REAL / "ai_hub_profile_reconstructed.json").read_text())
    mutate(data)
    with pytest.raises(ResultsError, match=match):
        parse_ai_hub_profile(data, "hub.json", runtime="NPU")


# ---- snpe-dlc-info -s CSV (reconstructed from the SDK 2.5 writer)

def test_dlc_info_csv():
    raw = (REAL / "dlcinfo_s_2.37_reconstructed.csv").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")  # csv.writer rows
    info = parse_dlc_info_file(REAL / "dlcinfo_s_2.37_reconstructed.csv")
    assert info.dlc_path == "/data/gesture/gesture_int8.dlc"
    assert info.layer_types() == [("sequential_1/dense_1/MatMul", "FullyConnected"),
                                  ("sequential_1/dense_1/Relu", "ElementWiseNeuron"),
                                  ("sequential_1/dense_2_1/Softmax", "Softmax")]
    assert info.layers[0].inputs == ("keras_tensor", "sequential_1/dense_1/MatMul_weight")
    assert info.layers[0].parameters[-1] == "MACs per inference: 2k (27.1%)"
    assert info.input_dims() == {"keras_tensor": [1, 42]} and info.total_params == 2752
    assert info.converter_version == "2.37.0.250724175447_124859" and not info.is_quantized


def test_dlc_info_csv_refuses_other_csv():
    with pytest.raises(ResultsError, match="no 'Id,Name,Type,...' header row"):
        parse_dlc_info_csv("a,b\n1,2\n", "x.csv")


# ---- snpe-diagview --output CSV (reconstructed: assumed profiling-event layout)

def test_diagview_csv_runs_and_ops():
    prof = load_diagview_csv(REAL / "diagview_output_csv_reconstructed.csv")
    assert prof.tool == "diagview-csv" and prof.runs == 2
    assert prof.samples == {"Total Inference Time": [1315, 1341]}  # cycles need a clock
    conv = load_diagview_csv(REAL / "diagview_output_csv_reconstructed.csv", clock_hz=1e9)
    assert conv.samples["Layers Time"] == pytest.approx([(1252 + 2152) / 1000, (1470 + 2721) / 1000])
    assert [lay.name for lay in prof.layers][0] == "Input OpId_2 (cycles)"


@pytest.mark.parametrize("text,match", [
    ("Layer,Time\n0,5\n", "is not the profiling-event layout"),
    ("", "empty file"),
    ((REAL / "diagview_output_csv_reconstructed.csv").read_text().replace("QNN (execute) time", "X"),
     "no ROOT event 'QNN \\(execute\\) time'"),
    ((REAL / "diagview_output_csv_reconstructed.csv").read_text().replace(",1315,US,", ",1315,LY,"), "unknown unit 'LY'"),
])
def test_diagview_csv_errors(text, match):
    with pytest.raises(ResultsError, match=match):
        parse_diagview_csv(text, "d.csv")
