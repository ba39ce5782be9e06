"""nnabla-nas config -> our search-space document (issue 15).

Expected counts were enumerated with nnabla-nas 0.15.0 itself
(tools/nnabla_nas_probe/leaf_uids.py --all); tests/space/test_nnabla_nas_client.py checks
the UID sets themselves against the installed nnabla-nas.
"""

from __future__ import annotations

import copy
import json

import pytest

from profiler.space import arch as A
from profiler.errors import SpaceError
from profiler.space.nnabla_nas import NnasConfigError, convert, is_nnabla_nas_config, make_divisible
from profiler.space.searchspace import parse_document

from tests.conftest import CIFAR, IMAGENET

# The network parts of the 2020 nnabla-nas examples (shared/reference/nnabla_nas_configs).
CIFAR10 = {"dataset": "cifar10", "input_shape": [3, 32, 32], "network": {
    "search_space": "mobilenet", "num_classes": 10,
    "settings": [[24, 4, 1], [32, 4, 1], [64, 4, 2], [96, 4, 1], [160, 4, 2], [320, 1, 1]],
    "mode": "sample"}}
CIFAR10_LATENCY = dict(CIFAR10, regularizer={"latency": {"name": "LatencyEstimator",
                                                         "weight": 0.1, "bound": 2.0}})
IMAGENET_DEFAULT = {"dataset": "imagenet", "input_shape": [3, 224, 224], "network": {
    "search_space": "mobilenet", "num_classes": 1000, "mode": "sample"}}
IMAGENET_SONGHAN = {"dataset": "imagenet", "input_shape": [3, 224, 224], "network": {
    "search_space": "mobilenet", "num_classes": 1000,
    "settings": [[24, 4, 2], [40, 4, 2], [80, 4, 2], [96, 4, 1], [192, 4, 2], [320, 1, 1]],
    "mode": "sample"}}

# config -> (nnabla-nas unique leaf UIDs incl. Add2, of which Add2, block modules)
ENUMERATED = {
    "mobilenet_cifar10_search.json": (CIFAR10, 126, 5, 71),
    "mobilenet_imagenet_search.json": (IMAGENET_DEFAULT, 146, 5, 71),
    "mobilenet_imagenet_search_songhan.json": (IMAGENET_SONGHAN, 144, 5, 71),
}


def _space(doc, source="x.json"):
    return parse_document(convert(doc, source), source)


@pytest.mark.parametrize("source", sorted(ENUMERATED))
def test_converted_configs_are_valid_and_match_nnabla_nas_counts(source):
    doc, n_leaves, n_add2, n_blocks = ENUMERATED[source]
    out = convert(copy.deepcopy(doc), source)
    assert out["name"] == source[:-5]
    space = parse_document(out, source)           # schema + semantic checks
    pos = A.positions(space)
    choice = [p for p in pos if p.choice]
    assert len(choice) == 21
    assert [p.n_choices for p in choice].count(7) == 15     # skip offered in 15 blocks
    assert len(A.candidate_modules(space, "block")) == n_blocks
    leaves = A.candidate_modules(space, "leaf")
    assert len(leaves) == n_leaves
    assert sum(m.name == "Add2" for m in leaves) == n_add2


def test_cifar10_converts_to_our_cifar_space():
    ours = json.loads(CIFAR.read_text())
    out = convert(CIFAR10_LATENCY, "mobilenet_cifar10_search_latency.json")
    for key in ("input_shape", "candidates", "skip_connect", "layers"):
        assert out[key] == ours[key], key


def test_defaults_and_head():
    layers = convert(IMAGENET_DEFAULT, "in.json")["layers"]
    assert layers[:2] == [
        {"type": "ConvBNReLU", "out_channels": 32, "kernel": 3, "stride": 2},
        {"type": "InvertedResidual", "out_channels": 16, "expand_ratio": 1, "kernel": 3, "stride": 1}]
    assert [(x["out_channels"], x["blocks"], x["stride"]) for x in layers if x["type"] == "ChoiceStage"] == [
        (24, 4, 2), (32, 4, 2), (64, 4, 2), (96, 4, 1), (160, 4, 2), (320, 1, 1)]
    assert layers[-3:] == [{"type": "ConvBNReLU", "out_channels": 1280, "kernel": 1, "stride": 1},
                           {"type": "GlobalAvgPool"}, {"type": "Linear", "out_features": 1000}]


def test_hydra_layout_converts_like_the_json_one():
    hydra = {"network": {"mobilenet": dict(CIFAR10["network"])}, "hparams": {"input_shapes": [[3, 32, 32]]}}
    del hydra["network"]["mobilenet"]["search_space"]
    assert is_nnabla_nas_config(hydra)
    a, b = convert(hydra, "h.yaml"), convert(CIFAR10, "h.json")
    assert a["layers"] == b["layers"] and a["input_shape"] == b["input_shape"] and a["name"] == "h"


def test_width_mult_rounds_up_to_multiples_of_8():
    assert [make_divisible(x) for x in (18, 24, 22.4, 44.8, 1)] == [24, 24, 24, 48, 8]
    doc = copy.deepcopy(CIFAR10)
    doc["network"]["width_mult"] = 0.75
    layers = convert(doc, "w.json")["layers"]
    assert [x.get("out_channels") for x in layers] == [24, 16, 24, 24, 48, 72, 120, 240, 1280, None, None]
    doc["network"]["width_mult"] = 1.4
    layers = convert(doc, "w.json")["layers"]
    assert [x.get("out_channels") for x in layers][:3] + [layers[-3]["out_channels"]] == [48, 24, 40, 1792]
    _space(doc)


def test_candidates_skip_and_empty_stages():
    doc = copy.deepcopy(CIFAR10)
    doc["network"].update(candidates=["MB1 7x7", "MB6 3x3"], skip_connect=False, drop_rate=0.2)
    doc["network"]["settings"].insert(2, [48, 0, 2])
    out = convert(doc, "c.json")
    assert out["candidates"] == [{"expand_ratio": 1, "kernel": 7}, {"expand_ratio": 6, "kernel": 3}]
    assert out["skip_connect"] is False
    assert sum(x["type"] == "ChoiceStage" for x in out["layers"]) == 6
    assert all(p.n_choices == 2 for p in A.positions(_space(doc)) if p.choice)


def test_recognises_nnabla_nas_configs_only():
    for doc in (CIFAR10, CIFAR10_LATENCY, IMAGENET_DEFAULT, {"network": {"darts": {"num_cells": 8}}}):
        assert is_nnabla_nas_config(doc)
    for path in (CIFAR, IMAGENET):
        assert not is_nnabla_nas_config(json.loads(path.read_text()))
    assert not is_nnabla_nas_config([]) and not is_nnabla_nas_config({"network": {"foo": {}}})


@pytest.mark.parametrize("space", ["darts", "zoph", "pnas", "random_wired", "fairnas", "ofa_mbv3"])
def test_unsupported_spaces_name_file_and_key(space):
    with pytest.raises(NnasConfigError) as e:
        convert({"input_shape": [3, 32, 32], "network": {"search_space": space}}, "cfg/x.json")
    assert str(e.value) == (f"cfg/x.json: network/search_space: {space!r} is not supported "
                            "(supported: mobilenet)")
    with pytest.raises(ValueError, match=rf"^y.yaml: network/{space}: .* \(supported: mobilenet\)$"):
        convert({"network": {space: {}}}, "y.yaml")


@pytest.mark.parametrize("change, message", [
    (lambda d: d["network"].update(width=2), "x.json: network/width: not a mobilenet SearchNet argument"),
    (lambda d: d["network"].update(candidates=["MB2 3x3"]), "x.json: network/candidates/0: unknown candidate 'MB2 3x3'"),
    (lambda d: d["network"].update(candidates=["MB3 3x3", "skip_connect"]), "x.json: network/candidates/1: 'skip_connect' as an explicit"),
    (lambda d: d["network"].update(candidates=["MB3 3x3", "MB3 3x3"]), "x.json: network/candidates/1: duplicate"),
    (lambda d: d["network"]["settings"][1].__setitem__(2, 3), "x.json: network/settings/1/2: stride must be 1 or 2"),
    (lambda d: d["network"]["settings"].__setitem__(0, [24, 4]), "x.json: network/settings/0: expected [channels, blocks, stride]"),
    (lambda d: d["network"].update(mode="greedy"), "x.json: network/mode: 'greedy' is not one of"),
    (lambda d: d.pop("input_shape"), "x.json: input_shape: expected [channels, height, width]"),
    (lambda d: d.__setitem__("input_shape", [1, 32, 32]), "x.json: input_shape/0: the mobilenet stem takes 3"),
])
def test_bad_mobilenet_configs_give_one_line_errors(change, message):
    doc = copy.deepcopy(CIFAR10)
    change(doc)
    with pytest.raises(SpaceError) as e:
        convert(doc, "x.json")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_every_verb_reads_an_nnabla_nas_config_and_space_convert_writes_ours(tmp_path, capsys):
    from pathlib import Path
    from profiler.cli.main import main
    from profiler.models.manifest import read_manifest
    from profiler.space.searchspace import load_space
    data = Path(__file__).parent / "data"
    cfg = data / "mobilenet_cifar10_search_latency.json"
    space = load_space(cfg)                      # what generate / sample / run load
    assert space.n_choice_blocks == 21 and space.input_shape == (3, 32, 32)
    out = tmp_path / "space.json"
    assert main(["space", "convert", str(cfg), "--out", str(out)]) == 0
    assert "21 choice blocks" in capsys.readouterr().err
    assert json.loads(out.read_text())["layers"] == json.loads(CIFAR.read_text())["layers"]
    assert A.candidate_modules(load_space(out), "leaf") == A.candidate_modules(space, "leaf")
    # a small nnabla-nas config straight into `profiler generate --granularity leaf`
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"input_shape": [3, 16, 16], "network": {
        "search_space": "mobilenet", "num_classes": 10, "settings": [[16, 2, 1]],
        "candidates": ["MB3 3x3"], "skip_connect": False}}))
    assert main(["generate", "--space", str(small), "--out", str(tmp_path / "m"),
                 "--granularity", "leaf", "-q"]) == 0
    uids = [e["uid"] for e in read_manifest(tmp_path / "m")["entries"]]
    assert "Add2[][[1,16,8,8],[1,16,8,8]]" in uids
    assert "Linear[in_features=1280,out_features=10,base_axis=1,bias=True][[1,1280,1,1]]" in uids
    # unsupported spaces and our own files: one line, exit 2
    darts = tmp_path / "darts.json"
    darts.write_text(json.dumps({"input_shape": [3, 32, 32], "network": {"search_space": "darts"}}))
    capsys.readouterr()
    assert main(["space", "convert", str(darts), "--out", str(out)]) == 2
    assert main(["generate", "--space", str(darts), "--out", str(tmp_path / "d")]) == 2
    assert main(["space", "convert", str(CIFAR), "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("network/search_space: 'darts' is not supported (supported: mobilenet)")
    assert err[1] == err[0] and "already a profiler search space" in err[2] and len(err) == 3
