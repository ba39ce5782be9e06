"""snpe-diagview parsing on published output (tests/phone/snpe/data/real, see SOURCES.md)."""
import math
from pathlib import Path

import pytest

from profiler.errors import ResultsError
from profiler.phone.snpe.diagview import Measure, parse_diagview, parse_diagview_file

REAL = Path(__file__).parent / "data" / "real"

GESTURE_TYPES = [("sequential_1/dense_1/MatMul", "FullyConnected"), ("sequential_1/dense_1/Relu", "ElementWiseNeuron"),
                 ("sequential_1/dense_1_2/MatMul", "FullyConnected"), ("sequential_1/dense_1_2/Relu", "ElementWiseNeuron"),
                 ("sequential_1/dense_2_1/MatMul", "FullyConnected"), ("sequential_1/dense_2_1/Softmax", "Softmax")]


def one(name, **kw):
    runs = parse_diagview_file(REAL / name, **kw)
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize("types", [None, GESTURE_TYPES])
def test_237_htp_output_op_is_not_a_dlc_layer(types):
    run = one("diagview_2.37_htp_int8.txt", layer_types=types)
    assert run.sdk_version == "2.37.0.250724175447_124859"
    assert run.subnets == [(0, "DSP", Measure(13545, "cycles"))]
    # the DLC's six layers, not the Input op (2142) nor the Output op (6038, 45% of the per-op total)
    assert [lt.role for lt in run.layers] == ["input"] + ["layer"] * 6 + ["extra"]
    assert run.layers_time == 0 + 1252 + 0 + 510 + 1447 + 2152
    assert [(op.name, op.value) for op in run.extra_ops] == [("Output OpId_3", 6038)]
    assert round(6038 / sum(lt.value for lt in run.layers), 2) == 0.45
    if types:
        assert run.layers[6].type == "Softmax"
    conv = one("diagview_2.37_htp_int8.txt", clock_hz=1e9)
    assert math.isclose(conv.latencies()["Layers Time"], 5361 / 1000)
    assert conv.latencies()["Total Inference Time"] == 1328 and conv.latencies()["Forward Propagate"] == 1315


def test_237_htp_named_op_missing_from_dlc_info_is_extra():
    types = [t for t in GESTURE_TYPES if not t[0].endswith("Softmax")]
    run = one("diagview_2.37_htp_int8.txt", layer_types=types)
    assert [op.name for op in run.extra_ops] == ["sequential_1/dense_2_1/Softmax", "Output OpId_3"]
    assert run.layers_time == 1252 + 510 + 1447


def test_237_htp_dlc_info_of_another_model_is_refused():
    with pytest.raises(ResultsError, match="none of the 8 layer names is a layer of the dlc-info"):
        one("diagview_2.37_htp_int8.txt", layer_types=[("/stem/Conv", "Conv2d")])


def test_237_cpu_indented_all_named_layers_counted():
    run = one("diagview_2.37_cpu.txt")
    assert run.stats["RPC Init Time"] == Measure(0, "")  # printed "0 " (no unit)
    assert run.subnets == [(0, "CPU", Measure(61, "us"))]
    assert run.latencies() == {"Forward Propagate": 67, "Total Inference Time": 69, "Layers Time": 54}
    assert run.extra_ops == [] and run.input_layers == []


def test_linting_lines_are_parsed_and_kept():
    run = one("diagview_2.37_htp_linting_reconstructed.txt")
    assert run.layers_time == 5361 and [op.value for op in run.extra_ops] == [6038]
    relu = run.layers[2].linting
    assert relu["Wait (Scheduler) time"] == Measure(38, "cycles")
    assert relu["Overlap time"] == Measure(410, "cycles") and relu["Overlap time ops"] == ["Output OpId_3"]
    assert relu["Overlap (wait) time ops"] == ["sequential_1/dense_1/MatMul:OpId_18"]
    assert relu["Resources"] == ["HVX", "HMX"]
    assert run.layers[0].linting["Resources"] == []
    assert run.layers[5].linting["Resources"] == ["HVX", "HMX", "DMA"]
    assert all(lt.linting is not None for lt in run.layers)


def test_linting_line_with_a_bad_unit_is_refused():
    text = (REAL / "diagview_2.37_htp_linting_reconstructed.txt").read_text().replace(
        "Wait (Scheduler) time: 38 cycles", "Wait (Scheduler) time: 38 parsecs")
    with pytest.raises(ResultsError, match="unknown linting time unit"):
        parse_diagview(text, "lint.txt")


# ---- flat layout: the input layer from what the log and dlc-info say (SNPE 1.x and 2.0-2.9)

def test_29_flat_without_dlc_info_counts_layer_0():
    run = one("diagview_2.9_flat_cpu_trimmed.txt")
    assert run.sdk_version == "2.9.0.4462"
    assert run.layers[0].role == "layer"  # 1419 us: an op, SNPE 2 has no data layer
    assert run.latencies() == {"Forward Propagate": 26448, "Total Inference Time": 26458, "Layers Time": 1419}


def test_29_flat_dlc_info_one_layer_short_means_leading_input_layer():
    run = one("diagview_2.9_flat_dsp_trimmed.txt", layer_types=[("MobilenetV2/Conv/Conv2D", "Conv2d")])
    assert [lt.role for lt in run.layers] == ["input", "layer"]
    assert run.layers[1].name == "MobilenetV2/Conv/Conv2D" and run.layers_time == 162014


def test_29_flat_dlc_info_same_count_maps_by_index():
    types = [("MobilenetV2/Conv/Conv2D", "Conv2d"), ("MobilenetV2/Conv/Relu6", "ElementWiseNeuron")]
    run = one("diagview_2.9_flat_dsp_trimmed.txt", layer_types=types)
    assert [lt.role for lt in run.layers] == ["layer", "layer"] and run.layers_time == 162014
    assert run.layers[0].type == "Conv2d"


def test_29_flat_dsp_two_more_than_dlc_info_are_the_htp_input_and_output_ops():
    text = (REAL / "diagview_2.9_flat_dsp_trimmed.txt").read_text() + "2: 18292 cycles : DSP\n"
    run = parse_diagview(text, "x.txt", layer_types=[("MobilenetV2/Conv/Conv2D", "Conv2d")])
    assert [lt.role for lt in run[0].layers] == ["input", "layer", "extra"] and run[0].layers_time == 162014
    with pytest.raises(ResultsError, match="prints 3 layers but dlc-info lists 3 - 2|prints 2 layers but dlc-info lists 4"):
        parse_diagview(text.replace("2: 18292 cycles : DSP\n", ""), "x.txt", layer_types=[("a", "b")] * 4)


def test_29_flat_without_dlc_info_dsp():
    run = one("diagview_2.9_flat_dsp_trimmed.txt")
    assert [lt.role for lt in run.layers] == ["layer", "layer"] and run.layers_unit == "cycles"


# ---- strictness

def test_gap_in_layer_indices_is_an_error():
    text = (REAL / "diagview_2.9_flat_dsp_trimmed.txt").read_text() + "3: 18292 cycles : DSP\n"
    with pytest.raises(ResultsError, match=r"layer index jumps from 1 to 3 \(layer 2 missing\)"):
        parse_diagview(text, "gap.txt")


def test_layers_must_start_at_0():
    text = (REAL / "diagview_2.9_flat_dsp_trimmed.txt").read_text().replace("0: 0 cycles : DSP\n", "")
    with pytest.raises(ResultsError, match="does not start at 0"):
        parse_diagview(text, "x.txt")


def test_misspelled_statistic_is_an_error():
    text = (REAL / "diagview_2.9_flat_cpu_trimmed.txt").read_text().replace(
        "Forward Propagate Time", "Forward Propogate Time")
    with pytest.raises(ResultsError) as ei:
        parse_diagview(text, "typo.txt")
    msg = str(ei.value)
    assert msg.startswith("typo.txt: line 25") and "misspelled 'Forward Propagate Time'" in msg
    assert "\n" not in msg


def test_qnn_profile_viewer_text_is_named():
    text = (REAL / "qnn_profile_viewer_2.13_htp.txt").read_text()
    with pytest.raises(ResultsError, match="qnn-profile-viewer output .QNN., not snpe-diagview") as ei:
        parse_diagview(text, "qnn.txt")
    assert "\n" not in str(ei.value)
