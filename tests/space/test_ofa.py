"""The OFA / MobileNetV3 space: MBConv and ConvBNAct blocks (SE, h-swish), elastic depth,
its schema checks, its UIDs (leaf UIDs against the real nnabla-nas 0.15 OFA layers) and
sampling with depth."""

from __future__ import annotations

import json
import random
import sys
import types

import pytest

from profiler.space import arch as A
from profiler.space import modules as M
from profiler.space.searchspace import ChoiceStage, FixedLayer, load_space

from tests.conftest import CIFAR, IMAGENET, OFA
from tests.space.test_modules import UID_RE
from tests.space.test_searchspace import assert_one_line_error

# OFA's MobileNetV3 (width 1.0), as in mit-han-lab/once-for-all's OFAMobileNetV3:
# stage widths, strides, activations and SE flags, written out independently of the JSON.
OFA_STAGES = [(24, 2, "relu", False), (40, 2, "relu", True), (80, 2, "hswish", False),
              (112, 1, "hswish", True), (160, 2, "hswish", True)]


def _doc() -> dict:
    return json.loads(OFA.read_text())


def test_ofa_space_matches_the_mobilenet_v3_layout():
    space = load_space(OFA)
    assert space.input_shape == (3, 224, 224)
    stages = [l for l in space.layers if isinstance(l, ChoiceStage)]
    assert [(s.out_channels, s.stride, s.act, s.se) for s in stages] == OFA_STAGES
    assert all(s.block == "MBConv" and s.blocks == 4 and s.depth == (2, 3, 4) and not s.skip_connect
               for s in stages)
    assert {(c.kernel, c.expand_ratio) for c in stages[0].candidates} == \
        {(k, e) for k in (3, 5, 7) for e in (3, 4, 6)}
    fixed = [l for l in space.layers if isinstance(l, FixedLayer)]
    assert [l.type for l in fixed] == ["ConvBNAct", "MBConv", "ConvBNAct", "GlobalAvgPool", "ConvBNAct", "Linear"]
    pos = A.positions(space)
    head = [p.options[0] for p in pos if not p.choice][-3:]
    assert head[0].input_shape == (1, 960, 7, 7) and head[1].input_shape == (1, 960, 1, 1)
    mix = head[1]
    assert mix.name == "ConvBNAct" and not mix.attr("bn") and not mix.attr("bias") and mix.attr("act") == "hswish"
    assert head[2].uid == "Linear[in_features=1280,out_features=1000,base_axis=1,bias=True][[1,1280,1,1]]"


def _independent_ofa_block_count() -> int:
    """Unique candidate blocks: per stage the first block (new width/stride) and the others
    (all one shape), 9 candidates each; plus 6 fixed layers."""
    seen = set()
    cin, h = 16, 112
    for cout, s, act, se in OFA_STAGES:
        for b in range(4):
            stride = s if b == 0 else 1
            for e in (3, 4, 6):
                for k in (3, 5, 7):
                    seen.add((cin, cout, stride, h, e, k))
            h = -(-h // stride)
            cin = cout
    return len(seen) + 6


def test_ofa_unique_modules_and_uid_format():
    space = load_space(OFA)
    blocks = A.candidate_modules(space, "block")
    assert len(blocks) == _independent_ofa_block_count() == 96
    for g in M.GRANULARITIES:
        mods = A.candidate_modules(space, g)
        assert len({m.uid for m in mods}) == len(mods)
        for m in mods:
            assert UID_RE.match(m.uid), m.uid
    leaves = {m.uid for m in A.candidate_modules(space, "leaf")}
    assert "Hswish[][[1,16,112,112]]" in leaves                         # stem
    assert "Hsigmoid[][[1,120,1,1]]" in leaves                          # SE gate, stage 40, MB3
    assert "Mul2[][[1,120,28,28],[1,120,1,1]]" in leaves
    assert "ReLU[inplace=True][[1,16,112,112]]" in leaves               # first block, in place
    assert "ReLU[inplace=False][[1,32,1,1]]" in leaves                  # SE reduce of 120 -> 32
    assert not any(u.startswith("ReLU6") for u in leaves)


def test_uids_are_stable_across_loads_and_spaces_without_new_types_are_unchanged():
    for path in (OFA, CIFAR, IMAGENET):
        a = [m.uid for g in M.GRANULARITIES for m in A.candidate_modules(load_space(path), g)]
        b = [m.uid for g in M.GRANULARITIES for m in A.candidate_modules(load_space(path), g)]
        assert a == b
    for path in (CIFAR, IMAGENET):
        names = {m.name for g in M.GRANULARITIES for m in A.candidate_modules(load_space(path), g)}
        assert names.isdisjoint({"MBConv", "ConvBNAct", "Hswish", "Hsigmoid", "Mul2", "ReLU"})


def test_mb_conv_leaves_and_cost():
    b = M.mb_conv(40, 40, 5, 1, 4, "relu", True, (1, 40, 28, 28))
    assert b.attr("mid_channels") == 160 and b.attr("residual") is True
    names = [leaf.name for leaf in b.leaves()]
    assert names == ["Conv", "BatchNormalization", "ReLU", "Conv", "BatchNormalization", "ReLU",
                     "GlobalAvgPool", "Conv", "ReLU", "Conv", "Hsigmoid", "Mul2",
                     "Conv", "BatchNormalization", "Add2"]
    se_mid = M.make_divisible(160 // 4)
    macs = 28 * 28 * 160 * 40 + 28 * 28 * 160 * 25 + 160 * se_mid * 2 + 28 * 28 * 40 * 160
    assert M.cost(b)["macs"] == macs
    assert M.mb_conv(16, 16, 3, 1, 1, "relu", False, (1, 16, 8, 8)).leaves()[0].attr("group") == 16
    assert M.mb_conv(24, 40, 7, 2, 3, "hswish", False, (1, 24, 56, 56)).output_shape == (1, 40, 28, 28)
    assert [M.make_divisible(v) for v in (18, 24, 30, 36, 60)] == [24, 24, 32, 40, 64]
    with pytest.raises(ValueError, match="activation"):
        M.activation("gelu", (1, 8, 2, 2))


@pytest.fixture(scope="module")
def ofa_layers():
    # The published nnabla-nas 0.15.0 wheel lacks nnabla_nas/contrib/classification/ofa/networks,
    # which nnabla_nas/contrib/__init__.py imports; an empty stand-in lets its OFA layers import.
    name = "nnabla_nas.contrib.classification.ofa.networks"
    if name not in sys.modules:
        stub = types.ModuleType(name)
        stub.ofa_mbv3 = stub.ofa_xception = stub.ofa_resnet50 = None
        sys.modules[name] = stub
    from nnabla_nas.contrib.common.ofa import layers
    return layers


def _nnas_leaf_uids(module, shape):
    import nnabla as nn
    module.apply(training=False)
    module(nn.Variable(shape))
    out = []
    for _, m in module.get_modules():
        if len(m.modules) == 0 and len(m.input_shapes) > 0:
            text = str(m) + str([tuple(s) for s in m.input_shapes])
            out.append(text.replace(" ", "").replace("(", "[").replace(")", "]"))
    return out


@pytest.mark.parametrize("cin, cout, k, s, e, act, se", [
    (24, 40, 5, 2, 3, "relu", True), (112, 112, 7, 1, 6, "hswish", True),
    (40, 80, 3, 2, 4, "hswish", False), (16, 16, 3, 1, 1, "relu", False)])
def test_mb_conv_leaf_uids_are_what_nnabla_nas_ofa_layers_print(ofa_layers, cin, cout, k, s, e, act, se):
    """Ours minus the leaves nnabla-nas computes outside modules (SE squeeze/product, the
    residual add) equal what its MBConvLayer prints, in its order."""
    h = 28
    ours = M.mb_conv(cin, cout, k, s, e, act, se, (1, cin, h, h))
    layer = ofa_layers.MBConvLayer(cin, cout, kernel=(k, k), stride=(s, s), expand_ratio=e,
                                   act_func={"hswish": "h_swish"}.get(act, act), use_se=se)
    expected = _nnas_leaf_uids(layer, (1, cin, h, h))
    assert [l.uid for l in ours.leaves() if l.name not in ("GlobalAvgPool", "Mul2", "Add2")] == expected


@pytest.mark.parametrize("cin, cout, k, s, act, bn, shape", [
    (3, 16, 3, 2, "hswish", True, (1, 3, 224, 224)), (960, 1280, 1, 1, "hswish", False, (1, 960, 1, 1)),
    (8, 8, 3, 1, "relu", True, (1, 8, 6, 6))])
def test_conv_bn_act_leaf_uids_are_what_nnabla_nas_conv_layer_prints(ofa_layers, cin, cout, k, s, act, bn, shape):
    ours = M.conv_bn_act(cin, cout, k, s, shape, act, bn=bn)
    layer = ofa_layers.ConvLayer(cin, cout, kernel=(k, k), stride=(s, s), use_bn=bn,
                                 act_func={"hswish": "h_swish"}.get(act, act))
    assert [l.uid for l in ours.leaves()] == _nnas_leaf_uids(layer, shape)


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["layers"][2].__setitem__("depth", [2, 3]), "x.json: layers/2/depth: the largest depth must equal blocks (4)"),
    (lambda d: d["layers"][2].__setitem__("skip_connect", True), "x.json: layers/2/skip_connect: cannot be combined with depth"),
    (lambda d: d["layers"][2].__setitem__("block", "InvertedResidual"), "x.json: layers/2/act: only for MBConv stages"),
    (lambda d: d["layers"][2].__setitem__("act", "gelu"), "x.json: layers/2/act: 'gelu' is not one of"),
    (lambda d: d["layers"][2].__setitem__("depth", [0, 4]), "x.json: layers/2/depth/0: 0 is less than the minimum"),
    (lambda d: d["layers"][1].pop("act"), "x.json: layers/1: 'act' is a required property"),
    (lambda d: d["layers"][9].__setitem__("kernel", 3), "x.json: layers/9: ConvBNAct after GlobalAvgPool"),
    (lambda d: d["layers"].insert(9, {"type": "MBConv", "out_channels": 8, "expand_ratio": 1, "kernel": 1,
                                      "stride": 1, "act": "relu"}), "x.json: layers/9: MBConv after GlobalAvgPool"),
])
def test_invalid_ofa_documents_name_key_path(mutate, expected):
    doc = _doc()
    mutate(doc)
    assert_one_line_error(doc, expected)


def _depths(pos, choices):
    choice_pos = [p for p in pos if p.choice]
    return [A.depth_of(choice_pos, choices, idx) for idx, _ in A.depth_groups(choice_pos)]


def test_depth_positions_allow_skip_only_on_trailing_blocks():
    pos = A.positions(load_space(OFA))
    choice_pos = [p for p in pos if p.choice]
    assert len(choice_pos) == 20 and len(A.depth_groups(choice_pos)) == 5
    assert [p.skip for p in choice_pos[:4]] == [False, False, True, True]
    full = tuple(0 for _ in choice_pos)
    assert len([b for b in A.blocks_of(pos, full) if b is not None]) == 26
    short = A.with_depths(choice_pos, full, [2, 3, 4, 2, 3])
    assert _depths(pos, short) == [2, 3, 4, 2, 3]
    assert len([b for b in A.blocks_of(pos, short) if b is not None]) == 26 - 2 - 1 - 2 - 1
    bad = list(full)
    bad[2] = 9                                   # block 3 of stage 1 skipped, block 4 kept
    with pytest.raises(ValueError, match="elastic depth"):
        A.blocks_of(pos, tuple(bad))
    with pytest.raises(ValueError, match="out of range"):
        A.blocks_of(pos, tuple([9] + list(full[1:])))   # the first block has no skip


@pytest.mark.parametrize("strategy", A.STRATEGIES)
def test_depth_sampling_covers_every_depth_with_stable_ids(strategy):
    pos = A.positions(load_space(OFA))
    archs = A.sample(pos, 120, seed=5, strategy=strategy, with_extremes=True)
    assert len({a.choices for a in archs}) == 120
    seen = [set() for _ in range(5)]
    for a in archs:
        A.blocks_of(pos, a.choices)                        # trailing-skip rule holds
        for i, d in enumerate(_depths(pos, a.choices)):
            seen[i].add(d)
    assert all(s == {2, 3, 4} for s in seen)
    again = A.sample(pos, 40, seed=5, strategy=strategy, with_extremes=True)
    assert [(a.arch_id, a.choices) for a in again] == [(a.arch_id, a.choices) for a in archs[:40]]


def test_extremes_include_min_and_max_depth():
    pos = A.positions(load_space(OFA))
    ext = dict(A.extremes(pos))
    assert _depths(pos, ext["smallest"]) == [2] * 5 and _depths(pos, ext["skip-largest"]) == [2] * 5
    assert _depths(pos, ext["largest"]) == [4] * 5 and _depths(pos, ext["cand-0"]) == [4] * 5

    def macs(choices):
        return sum(M.cost(b)["macs"] for b in A.blocks_of(pos, choices) if b)
    others = [macs(a.choices) for a in A.sample(pos, 60, seed=2, strategy="uniform")]
    assert macs(ext["smallest"]) < min(others) and macs(ext["largest"]) > max(others)


def test_spaces_without_depth_draw_exactly_as_before():
    """No elastic stage: the uniform draw is one randrange per position (skip included), as
    it was before depth existed, so existing samples and ids are unchanged."""
    pos = A.positions(load_space(CIFAR))
    choice_pos = [p for p in pos if p.choice]
    rng = random.Random(7)
    expected = []
    while len(expected) < 10:
        c = tuple(rng.randrange(p.n_choices) for p in choice_pos)
        if c not in expected:
            expected.append(c)
    assert [a.choices for a in A.sample(pos, 10, seed=7, strategy="uniform")] == expected
    assert A.depth_groups(choice_pos) == []


@pytest.mark.parametrize("granularity", M.GRANULARITIES)
def test_estimator_py_estimates_depth_sampled_ofa_architectures(tmp_path, granularity):
    """estimator.py built for the OFA space: elastic-depth choices (trailing skips) give the
    same estimate as the look-ups of the architecture's module UIDs."""
    from profiler.fit.calibration import Calibration
    from profiler.fit.codegen import load_source, write_estimator
    from profiler.pipeline.fit import describe_space
    space = load_space(OFA)
    rng = random.Random(3)
    lat = {m.uid: rng.uniform(1.0, 300.0) for m in A.candidate_modules(space, granularity)}
    cal = Calibration("scale-bias", 12.5, {u: 1.1 * v for u, v in lat.items()}, {"scale": 1.1, "bias": 12.5})
    desc = describe_space(space, granularity)
    path = write_estimator(tmp_path / "estimator.py", {"ORT_CPU": cal}, "Forward Propagate", "Median_Time",
                           {"device": "test"}, desc)
    est = load_source(path.read_text(encoding="utf-8"))
    pos = A.positions(space)
    archs = A.sample(pos, 30, seed=4, strategy="spread", with_extremes=True)
    depths = {tuple(_depths(pos, a.choices)) for a in archs}
    assert len(depths) > 10
    for a in archs:
        uids = M.module_uids(A.blocks_of(pos, a.choices), granularity)
        assert est.estimate_choices(list(a.choices), "ORT_CPU") == pytest.approx(cal.estimate(uids), rel=1e-12)
