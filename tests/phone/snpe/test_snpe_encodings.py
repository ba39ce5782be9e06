import json
import math
import random
from pathlib import Path

import pytest

from profiler.errors import ProfilerError
from profiler.phone.snpe.encodings import (Encoding, EncodingsError, QuantOverrides, compute_encoding,
                                     dequantize_values, dumps_overrides, load_overrides, make_overrides,
                                     parse_overrides, quantize_values, same_grid, save_overrides)

DATA = Path(__file__).parent / "data"
SEED = DATA / "overrides_snpe_doc.json"

# Every number of the reference guide's example (seed 003): (section, tensor, min, max, scale, offset)
SEED_ROWS = [
    ("activation_encodings", "Conv1:0", 0.0, 12.82344407824954, 0.050288015993135454, 0),
    ("activation_encodings", "input:0", -1.0039304197656937, 0.9960872825108046, 0.007843206675594112, 127),
    ("param_encodings", "Conv2d/weights", -2.1006477158567995, 1.700559472933134, 0.01490669485799974, 140),
]


def test_seed_example_reads_every_number():
    ov = load_overrides(SEED)
    for section, name, mn, mx, scale, offset in SEED_ROWS:
        [enc] = getattr(ov, section)[name]
        assert enc.bitwidth == 8
        assert (enc.min, enc.max, enc.scale) == (mn, mx, scale)
        assert enc.offset == -offset  # positive zero point normalised to the AIMET sign
    assert set(ov.activation_encodings) == {"Conv1:0", "input:0"}
    assert set(ov.param_encodings) == {"Conv2d/weights"}


@pytest.mark.parametrize("section,name,mn,mx,scale,offset", SEED_ROWS)
def test_compute_encoding_reproduces_seed_scale_exactly(section, name, mn, mx, scale, offset):
    enc = compute_encoding(mn, mx, 8)
    assert enc.scale == scale  # bit-exact, not approximately
    assert enc.bitwidth == 8 and enc.is_symmetric is False


def test_compute_encoding_all_positive_seed_row_is_exact():
    enc = compute_encoding(0.0, 12.82344407824954)
    assert (enc.min, enc.max, enc.scale, enc.offset) == (0.0, 12.82344407824954, 0.050288015993135454, 0)


@pytest.mark.parametrize("section,name,mn,mx,scale,offset", SEED_ROWS[1:])
def test_seed_offsets_are_truncated_zero_points_ours_are_rounded(section, name, mn, mx, scale, offset):
    # The guide's example writes int(-min/scale) (127.99999 -> 127, 140.92 -> 140); the algorithm
    # the same guide describes (and AIMET's TfEncodingAnalyzer) rounds, so zero is exact.
    assert int(-mn / scale) == offset
    enc = compute_encoding(mn, mx)
    assert enc.offset == -round(-mn / scale) == -(offset + 1)
    assert dequantize_values([-enc.offset], enc) == [0.0]
    assert math.isclose(enc.min, mn, abs_tol=scale / 2) and math.isclose(enc.max, mx, abs_tol=scale / 2)


def test_seed_example_written_back_in_zero_point_style_is_identical():
    original = json.loads(SEED.read_text())
    ov = load_overrides(SEED)
    assert json.loads(dumps_overrides(ov, offset_style="zero_point")) == original
    aimet = json.loads(dumps_overrides(ov))
    assert aimet["activation_encodings"]["input:0"][0]["offset"] == -127
    assert parse_overrides(aimet).activation_encodings == ov.activation_encodings


def test_reference_guide_quantization_example():
    enc = compute_encoding(-1.8, 0.5)
    assert math.isclose(enc.min, -1.803922, abs_tol=1e-6)
    assert math.isclose(enc.max, 0.496078, abs_tol=1e-6)
    assert math.isclose(enc.scale, 0.009020, abs_tol=1e-6)
    assert quantize_values([-1.8, -1.0, 0.0, 0.5], enc) == [0, 89, 200, 255]
    deq = dequantize_values([0, 89, 200, 255], enc)
    for got, want in zip(deq, [-1.8039, -1.0011, 0.0, 0.4961]):
        assert math.isclose(got, want, abs_tol=1.1e-4)


@pytest.mark.parametrize("mn,mx,emin,emax", [(5.0, 10.0, 0.0, 10.0), (-20.0, -6.0, -20.0, 0.0),
                                             (0.0, 0.0, 0.0, 0.01), (0.001, 0.002, 0.0, 0.01)])
def test_zero_inside_range_and_min_range(mn, mx, emin, emax):
    enc = compute_encoding(mn, mx)
    assert math.isclose(enc.min, emin, abs_tol=1e-12) and math.isclose(enc.max, emax, abs_tol=1e-12)


def test_all_negative_range_puts_zero_at_top_code():
    enc = compute_encoding(-20.0, -6.0)
    assert enc.offset == -255
    assert quantize_values([0.0, -20.0], enc) == [255, 0]


def test_zero_is_exactly_representable_for_random_ranges():
    rng = random.Random(7)
    for _ in range(200):
        a, b = sorted(rng.uniform(-50, 50) for _ in range(2))
        for bw in (8, 16):
            enc = compute_encoding(a, b, bw)
            [q] = quantize_values([0.0], enc)
            assert dequantize_values([q], enc) == [0.0]
            assert 0 <= q <= 2 ** bw - 1


def test_symmetric_encoding():
    enc = compute_encoding(-0.5, 1.0, 8, symmetric=True)
    assert enc.is_symmetric and enc.offset == -128
    assert enc.scale == 1.0 / 127
    assert math.isclose(enc.min, -128 / 127) and enc.max == 1.0
    enc16 = compute_encoding(-3.0, 1.0, 16, symmetric=True)
    assert enc16.offset == -32768 and enc16.scale == 3.0 / 32767


def test_compute_encoding_rejects_bad_input():
    with pytest.raises(ValueError):
        compute_encoding(1.0, 0.0)
    with pytest.raises(ValueError):
        compute_encoding(0.0, float("nan"))
    with pytest.raises(ValueError):
        compute_encoding(0.0, 1.0, 7)


def entry(**kw):
    base = {"bitwidth": 8, "min": -1.0, "max": 1.0, "scale": 2.0 / 255, "offset": -128}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def doc(act=None, par=None):
    return {"activation_encodings": act if act is not None else {"a": [entry()]},
            "param_encodings": par if par is not None else {}}


def test_both_offset_conventions_normalise_to_the_same_encoding():
    pos = parse_overrides(doc({"a": [entry(offset=128)]}))
    neg = parse_overrides(doc({"a": [entry(offset=-128)]}))
    assert pos.activation_encodings == neg.activation_encodings
    assert pos.activation_encodings["a"][0].offset == -128


def test_symmetric_offsets():
    ok0 = parse_overrides(doc({"w": [entry(is_symmetric="True", offset=0, min=..., max=...)]}))
    assert ok0.activation_encodings["w"][0].offset == -128
    ok = parse_overrides(doc({"w": [entry(is_symmetric="true", offset=128)]}))
    assert ok.activation_encodings["w"][0].offset == -128
    scale_only = parse_overrides(doc({"w": [entry(is_symmetric="True", offset=..., min=..., max=...)]}))
    assert scale_only.activation_encodings["w"][0].offset == -128
    with pytest.raises(EncodingsError, match="symmetric 8-bit encoding needs offset 0 or -128"):
        parse_overrides(doc({"w": [entry(is_symmetric="True", offset=5)]}))


def test_float_entry_and_extra_keys_round_trip(tmp_path):
    data = doc({"a": [{"bitwidth": 16, "dtype": "float"}]},
               {"conv.weight": [entry(is_symmetric="False", dtype="int", is_fixed_point="True"),
                                entry(is_symmetric="False", dtype="int", is_fixed_point="True", min=-2.0)]})
    data["version"] = "0.6.1"
    ov = parse_overrides(data, "x.json")
    assert ov.version == "0.6.1"
    assert len(ov.param_encodings["conv.weight"]) == 2  # per-channel
    path = save_overrides(ov, tmp_path / "enc.json")
    again = load_overrides(path)
    assert again == ov
    assert json.loads(path.read_text())["param_encodings"]["conv.weight"][0]["is_fixed_point"] == "True"
    assert json.loads(dumps_overrides(again)) == json.loads(dumps_overrides(ov))


def test_make_overrides_round_trip(tmp_path):
    ov = make_overrides({"x": (-1.0, 3.0), "relu:0": (0.0, 6.0)}, {"conv.weight": (-0.3, 0.2)},
                        act_bitwidth=16, symmetric_params=True, version="0.6.1")
    assert ov.activation_encodings["x"][0].bitwidth == 16
    assert ov.param_encodings["conv.weight"][0].offset == -128
    again = load_overrides(save_overrides(ov, tmp_path / "o.json"))
    for section in ("activation_encodings", "param_encodings"):
        for name, encs in getattr(ov, section).items():
            assert all(same_grid(a, b) for a, b in zip(encs, getattr(again, section)[name]))
            assert getattr(again, section)[name] == encs


@pytest.mark.parametrize("data,match", [
    ([], "top level must be a JSON object"),
    ({"activation_encodings": {}}, "missing section.*param_encodings"),
    ({"activation_encodings": [], "param_encodings": {}}, "activation_encodings must be an object"),
    (doc({"a": entry()}), r"\['a'\] must be a non-empty list"),
    (doc({"a": []}), r"\['a'\] must be a non-empty list"),
    (doc({"a": [entry(bitwidth=...)]}), "bitwidth is required"),
    (doc({"a": [entry(bitwidth=7)]}), "bitwidth must be one of"),
    (doc({"a": [entry(bitwidth=True)]}), "bitwidth must be one of"),
    (doc({"a": [entry(max=...)]}), "min and max must be given together"),
    (doc({"a": [entry(offset=...)]}), "scale and offset must be given together"),
    (doc({"a": [entry(scale=...)]}), "scale and offset must be given together"),
    (doc({"a": [entry(is_symmetric=True)]}), 'is_symmetric must be the string "True" or "False"'),
    (doc({"a": [entry(is_symmetric="yes")]}), "is_symmetric must be the string"),
    (doc({"a": [entry(dtype="double")]}), 'dtype must be "int" or "float"'),
    (doc({"a": [{"bitwidth": 8, "dtype": "float"}]}), "float encoding needs bitwidth 16 or 32"),
    (doc(par={"w": [entry(), entry(bitwidth=16)]}), r"param_encodings\['w'\]\[1\]: bitwidth 16 differs"),
    (doc(par={"w": [entry(), entry(is_symmetric="True", offset=0)]}), "cannot mix symmetric"),
    (doc({"a": [entry(min=2.0)]}), "min 2.0 is greater than max 1.0"),
    (doc({"a": [entry(min="0")]}), "min must be a finite number"),
    (doc({"a": [entry(scale=0.0)]}), "scale must be positive"),
    (doc({"a": [entry(offset=3.5)]}), "offset must be an integer"),
    (doc({"a": [entry(offset=300)]}), "outside the 8-bit range"),
    (doc({"a": ["x"]}), r"\['a'\]\[0\] must be an object"),
])
def test_validation_errors_name_the_problem(data, match):
    with pytest.raises(EncodingsError, match=match) as ei:
        parse_overrides(data, "enc.json")
    assert str(ei.value).startswith("enc.json")
    assert isinstance(ei.value, ProfilerError)


def test_load_reports_file_problems(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EncodingsError, match=r"bad\.json: not valid JSON"):
        load_overrides(bad)
    with pytest.raises(EncodingsError, match="cannot read"):
        load_overrides(tmp_path / "missing.json")


def test_to_json_rejects_unknown_offset_style():
    with pytest.raises(ValueError):
        Encoding(8, scale=0.1, offset=-3).to_json("positive")
    assert QuantOverrides().to_json() == {"activation_encodings": {}, "param_encodings": {}}
