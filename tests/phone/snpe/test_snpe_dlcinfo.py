from pathlib import Path

import pytest

from profiler.errors import ResultsError
from profiler.phone.snpe.dlcinfo import parse_dlc_info, parse_dlc_info_file

DATA = Path(__file__).parent / "data"
ALL = ("AIP", "DSP", "GPU", "CPU")


def test_snpe1_table_with_data_layer():
    info = parse_dlc_info_file(DATA / "dlcinfo_1x.txt")
    assert info.dlc_path == "/work/models/tiny_1x.dlc"
    assert info.model_version == "N/A"
    assert [(l.id, l.name, l.type) for l in info.layers] == [
        (0, "input.1", "data"), (1, "Conv_0", "convolutional"), (2, "Relu_1", "neuron"),
        (3, "GlobalAveragePool_2", "pooling"), (4, "Gemm_4", "fully_connected"), (5, "Softmax_5", "softmax")]
    conv = info.layers[1]
    assert conv.inputs == ("input.1",) and conv.outputs == ("5",)
    assert conv.out_dims == ((1, 32, 32, 16),)
    assert conv.runtimes == ALL
    assert conv.parameters[0] == "padding x: 1" and conv.parameters[-1] == "MACs per inference: 442k (47.4%)"
    assert len(conv.parameters) == 7
    assert info.layers[5].parameters == ()
    assert info.inputs == [] and info.outputs == []
    assert info.input_dims() == {"input.1": [1, 32, 32, 3]}
    assert info.converter_version == "1.54.2.2899"
    assert info.quantizer_command == "N/A" and not info.is_quantized
    assert info.total_params == 618
    assert info.summary["Layers used by DLC"].startswith("CONVOLUTIONAL, DATA")
    assert "D" not in info.summary  # the "D:DSP" key lines are not summary entries
    assert info.layer_types()[0] == ("input.1", "data")


def test_snpe2_input_table_and_tensor_cells():
    info = parse_dlc_info_file(DATA / "dlcinfo_2x.txt")
    assert [(l.id, l.name, l.type) for l in info.layers] == [
        (0, "/stem/Conv", "Conv2d"), (1, "/stem/Relu", "ElementWiseNeuron"), (2, "/head/Gemm", "FullyConnected")]
    conv = info.layers[0]
    assert conv.inputs == ("image", "stem.weight", "stem.bias")  # "(data type: ...)" stripped
    assert conv.outputs == ("/stem/Conv_output_0",)
    assert conv.out_dims == ((1, 32, 32, 16),)
    assert "stride: [2, 2]" in conv.parameters
    assert not any(l.is_input for l in info.layers)  # SNPE 2 has no data layers
    assert [(t.name, t.dims, t.dtype) for t in info.inputs] == [("image", (1, 64, 64, 3), "Float_32")]
    assert info.inputs[0].encoding == "No encoding info for this tensor"
    assert [(t.name, t.dims) for t in info.outputs] == [("logits", (1, 10))]
    assert info.input_dims() == {"image": [1, 64, 64, 3]}
    assert info.is_quantized
    assert info.converter_version == "2.22.6.240515"
    assert info.summary["Ops used by DLC"] == "Conv2d, ElementWiseNeuron, FullyConnected"


def test_graph_header_and_cache_table_do_not_break_the_layer_table():
    text = (DATA / "dlcinfo_2x.txt").read_text()
    lines = text.splitlines()
    lines.insert(3, "=" * 40)
    lines.insert(4, "Info of graph: tiny")
    text = "\n".join(lines) + "\nCache Info:\n" + "-" * 30 + "\n" + \
        "| Cache Record Name | snpe_version | record_version |\n" + "-" * 30 + "\n" + \
        "| backend.metadata0 | 2.22.6      | 3.2.0          |\n" + "|                   |             | subnet_0:      |\n"
    info = parse_dlc_info(text)
    assert len(info.layers) == 3 and info.input_dims() == {"image": [1, 64, 64, 3]}


def test_more_inputs_with_names_needing_care():
    text = (DATA / "dlcinfo_2x.txt").read_text().replace(
        "| image      | 1,64,64,3  | Float_32 | No encoding info for this tensor |",
        "| image      | 1,64,64,3  | Float_32 | No encoding info for this tensor |\n"
        "| mask:0     | 1,64,64,1  | Float_32 | No encoding info for this tensor |")
    assert parse_dlc_info(text).input_dims() == {"image": [1, 64, 64, 3], "mask:0": [1, 64, 64, 1]}


@pytest.mark.parametrize("text,match", [
    ("", "no layer table"),
    ("snpe-dlc-info: error: DLC file not found\n", "no layer table"),
    ("| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes | Parameters |\n"
     "| x1 | a    | data | a      | a       | 1x2      | C        |            |\n", "layer Id 'x1' is not a number"),
    ("| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes | Parameters |\n"
     "|    |      |      | a      |         |          |          | p: 1       |\n", "continuation row before"),
    ("| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes | Parameters |\n"
     "| 0  | a    | data | a      | a       | 1xQ      | C        |            |\n", "cannot read dimensions"),
])
def test_not_dlc_info_or_corrupt(text, match):
    with pytest.raises(ResultsError, match=match) as ei:
        parse_dlc_info(text, "info.txt")
    assert str(ei.value).startswith("info.txt")


def test_data_layer_without_dims_is_reported():
    text = ("| Id | Name | Type | Inputs | Outputs | Out Dims | Runtimes | Parameters |\n"
            "| 0  | in   | data | in     | in      |          | A D G C  |            |\n")
    with pytest.raises(ResultsError, match="data layer 'in' has no Out Dims"):
        parse_dlc_info(text, "x").input_dims()
