"""Search-space files: schema validation with one-line errors naming file and key path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from profiler.errors import SpaceError
from profiler.space.searchspace import ChoiceStage, load_space, parse_document

from tests.conftest import CIFAR, IMAGENET, ROOT


def _doc() -> dict:
    return json.loads(CIFAR.read_text())


def test_shipped_spaces_load():
    cifar = load_space(CIFAR)
    assert cifar.input_shape == (3, 32, 32)
    assert cifar.n_choice_blocks == 21
    stages = [(l.out_channels, l.blocks, l.stride) for l in cifar.layers if isinstance(l, ChoiceStage)]
    assert stages == [(24, 4, 1), (32, 4, 1), (64, 4, 2), (96, 4, 1), (160, 4, 2), (320, 1, 1)]
    imagenet = load_space(IMAGENET)
    assert imagenet.input_shape == (3, 224, 224)
    assert imagenet.n_choice_blocks == 21


def test_schema_file_is_shipped_beside_spaces():
    assert json.loads((ROOT / "search_spaces" / "search_space.schema.json").read_text())["title"]


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["layers"][3].__setitem__("stride", 3), "x.json: layers/3/stride: 3 is not one of [1, 2]"),
    (lambda d: d["layers"][3].__setitem__("type", "Foo"), "x.json: layers/3/type: unknown layer type 'Foo'"),
    (lambda d: d.pop("candidates"), "x.json: (top level): 'candidates' is a required property"),
    (lambda d: d["layers"][0].__setitem__("extra", 1), "x.json: layers/0: Additional properties"),
    (lambda d: d["candidates"][1].__setitem__("kernel", "3"), "x.json: candidates/1/kernel: '3' is not of type 'integer'"),
    (lambda d: d["candidates"][1].__setitem__("kernel", 4), "x.json: candidates/1/kernel: 4 is not one of"),
    (lambda d: d["input_shape"].append(3), "x.json: input_shape:"),
    (lambda d: d["layers"][2].pop("blocks"), "x.json: layers/2: 'blocks' is a required property"),
    (lambda d: d["layers"].insert(0, {"type": "Linear", "out_features": 3}), "x.json: layers/0: Linear needs a GlobalAvgPool"),
    (lambda d: d["layers"].append({"type": "ConvBNReLU", "out_channels": 3, "kernel": 1, "stride": 1}),
     "x.json: layers/11: ConvBNReLU after GlobalAvgPool"),
    (lambda d: d.__setitem__("layers", [l for l in d["layers"] if l["type"] != "ChoiceStage"]), "x.json: layers: no ChoiceStage"),
    (lambda d: d["layers"][2].__setitem__("candidates", [{"expand_ratio": 3, "kernel": 3}] * 2), "x.json: layers/2/candidates: duplicate"),
])
def test_invalid_documents_name_key_path(mutate, expected):
    doc = _doc()
    mutate(doc)
    assert_one_line_error(doc, expected)


def assert_one_line_error(doc: dict, expected: str) -> None:
    """``doc`` (as file x.json) is refused with one line starting with ``expected``."""
    with pytest.raises(SpaceError) as exc:
        parse_document(doc, "x.json")
    msg = str(exc.value)
    assert msg.startswith(expected), msg
    assert "\n" not in msg


def test_not_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",\n  "input_shape": [3, 32, 32')
    with pytest.raises(SpaceError, match=r"bad.json: not valid JSON: line 2"):
        load_space(bad)
    with pytest.raises(SpaceError, match="no such search-space file"):
        load_space(tmp_path / "missing.json")


def test_cli_reports_bad_space_on_one_line_without_traceback(tmp_path):
    doc = _doc()
    doc["layers"][4]["out_channels"] = 0
    path = tmp_path / "space.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, "-m", "profiler", "generate", "--space", str(path),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"profiler: error: {path}: layers/4/out_channels: 0 is less than the minimum of 1"
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
