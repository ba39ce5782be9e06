"""ModuleUIDs and the candidate modules of a space (pure, no nnabla)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from profiler.space import arch as A
from profiler.space import modules as M
from profiler.space.searchspace import load_space

from tests.conftest import CIFAR, IMAGENET

SEED_UID = ("Conv[in_channels=192,out_channels=192,kernel=[5,5],stride=[1,1],pad=[2,2],dilation=None,"
            "base_axis=1,group=192,with_bias=False,fix_parameters=False,channel_last=False][[1,192,16,16]]")
UID_RE = re.compile(r"^[A-Za-z0-9]+\[[^\s\[\]]*(\[[^\s\[\]]*\][^\s\[\]]*)*\]\[(\[\d+(,\d+)*\])(,\[\d+(,\d+)*\])*\]$")


def _independent_block_count(stages, c_in, kernels_expands, h):
    """Count unique candidate blocks by (cin, cout, stride, spatial, e, k), written out by hand."""
    seen = set()
    for cout, n, s in stages:
        for b in range(n):
            stride = s if b == 0 else 1
            for e, k in kernels_expands:
                seen.add((c_in, cout, stride, h, e, k))
            h = -(-h // stride)
            c_in = cout
    return len(seen)


def test_cifar_unique_block_count_matches_independent_count():
    space = load_space(CIFAR)
    stages = [(24, 4, 1), (32, 4, 1), (64, 4, 2), (96, 4, 1), (160, 4, 2), (320, 1, 1)]
    cands = [(e, k) for k in (3, 5, 7) for e in (3, 6)]
    choice = _independent_block_count(stages, 16, cands, 16)
    assert choice == 66  # 11 distinct (cin, cout, stride, shape) configurations x 6 candidates
    fixed = 5  # stem ConvBNReLU, MB1 block, head ConvBNReLU, GlobalAvgPool, Linear
    assert len(A.candidate_modules(space, "block")) == choice + fixed


def test_cifar_unique_leaf_count_matches_independent_count():
    """Leaves counted from first principles: conv/bn/relu/add keyed by their real parameters.

    A conv is (cin, cout, kernel, stride, group, input size, pad kind): nnabla-nas builds
    1x1 projections without a pad (``pad=None``) and everything else with one, so a 1x1
    expansion and a 1x1 projection never share a leaf. Residual adds are keyed by shape.
    """
    convs, bns, relus, adds = set(), set(), set(), set()
    # stem 3->32 s2 on 32x32
    convs.add((3, 32, 3, 2, 1, 32, "pad")); bns.add((32, 16)); relus.add((32, 16))
    # MB1: dw 32 k3 s1 on 16, project 32->16 (no residual: 32 != 16)
    convs.add((32, 32, 3, 1, 32, 16, "pad")); bns.add((32, 16)); relus.add((32, 16))
    convs.add((32, 16, 1, 1, 1, 16, None)); bns.add((16, 16))
    c_in, h = 16, 16
    for cout, n, s in [(24, 4, 1), (32, 4, 1), (64, 4, 2), (96, 4, 1), (160, 4, 2), (320, 1, 1)]:
        for b in range(n):
            stride = s if b == 0 else 1
            oh = -(-h // stride)
            for e in (3, 6):
                hid = c_in * e
                convs.add((c_in, hid, 1, 1, 1, h, "pad")); bns.add((hid, h)); relus.add((hid, h))
                for k in (3, 5, 7):
                    convs.add((hid, hid, k, stride, hid, h, "pad")); bns.add((hid, oh)); relus.add((hid, oh))
                convs.add((hid, cout, 1, 1, 1, oh, None)); bns.add((cout, oh))
            if stride == 1 and c_in == cout:
                adds.add((cout, oh))
            c_in, h = cout, oh
    convs.add((320, 1280, 1, 1, 1, 4, "pad")); bns.add((1280, 4)); relus.add((1280, 4))
    expected = len(convs) + len(bns) + len(relus) + len(adds) + 2  # + GlobalAvgPool + Linear
    leaves = A.candidate_modules(load_space(CIFAR), "leaf")
    assert len(leaves) == expected
    assert sum(m.name == "Conv" for m in leaves) == len(convs)
    assert sum(m.name == "Add2" for m in leaves) == len(adds)
    pads = [m.attr("pad") for m in leaves if m.name == "Conv" and m.attr("kernel") == (1, 1)]
    assert pads.count(None) == sum(1 for c in convs if c[-1] is None)
    assert pads.count((0, 0)) == sum(1 for c in convs if c[2] == 1 and c[-1] == "pad")


def test_seed_uid_reproduced_exactly():
    leaves = [m.uid for m in A.candidate_modules(load_space(CIFAR), "leaf")]
    assert SEED_UID in leaves
    assert "ReLU6[][[1,32,16,16]]" in leaves
    assert "BatchNormalization[n_features=32,fix_parameters=False,eps=1e-05,decay_rate=0.9][[1,32,16,16]]" in leaves


def test_uid_format_for_every_module_of_both_spaces():
    for path in (CIFAR, IMAGENET):
        space = load_space(path)
        for g in M.GRANULARITIES:
            for m in A.candidate_modules(space, g):
                assert UID_RE.match(m.uid), m.uid
                assert " " not in m.uid and "(" not in m.uid and ")" not in m.uid


def test_conv_pad_prints_as_nnabla_nas_prints_it():
    """nnabla-nas's Mo.Conv prints the pad it was given: None and [0,0] are two UIDs."""
    a = M.conv(16, 32, 1, 1, (1, 16, 8, 8), pad=None)
    b = M.conv(16, 32, 1, 1, (1, 16, 8, 8), pad=(0, 0))
    c = M.conv(16, 32, 1, 1, (1, 16, 8, 8), pad=0)
    assert "pad=None" in a.uid and "pad=[0,0]" in b.uid and b.uid == c.uid
    assert a.uid != b.uid and a.output_shape == b.output_shape == (1, 32, 8, 8)
    ir = M.inverted_residual(16, 24, 3, 1, 6, (1, 16, 8, 8))
    convs = [leaf for leaf in ir.leaves() if leaf.name == "Conv"]
    assert [cv.attr("pad") for cv in convs] == [(0, 0), (1, 1), None]   # expand, dw, project
    lin = M.linear(1280, 10, (1, 1280, 1, 1))
    assert lin.uid == "Linear[in_features=1280,out_features=10,base_axis=1,bias=True][[1,1280,1,1]]"


def test_uids_are_stable_across_loads():
    first = [m.uid for m in A.candidate_modules(load_space(CIFAR), "block")]
    second = [m.uid for m in A.candidate_modules(load_space(CIFAR), "block")]
    assert first == second
    assert len(set(first)) == len(first)


def test_file_stem_is_safe_and_distinct():
    uids = [m.uid for m in A.candidate_modules(load_space(IMAGENET), "leaf")]
    stems = [M.file_stem(u) for u in uids]
    assert len(set(stems)) == len(stems)
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", s) and len(s) < 80 for s in stems)


def test_block_leaves_and_cost():
    ir = M.inverted_residual(32, 32, 5, 1, 6, (1, 32, 8, 8))
    names = [leaf.name for leaf in ir.leaves()]
    assert names == ["Add2", "Conv", "BatchNormalization", "ReLU6", "Conv", "BatchNormalization",
                     "ReLU6", "Conv", "BatchNormalization"]
    assert ir.leaves()[0].uid == "Add2[][[1,32,8,8],[1,32,8,8]]"
    assert ir.attr("residual") is True
    assert ir.output_shape == (1, 32, 8, 8)
    c = M.cost(ir)
    hidden = 192
    macs = 8 * 8 * hidden * 32 + 8 * 8 * hidden * 25 + 8 * 8 * 32 * hidden
    assert c["macs"] == macs
    assert M.inverted_residual(32, 64, 3, 2, 3, (1, 32, 8, 8)).output_shape == (1, 64, 4, 4)


def test_sampling_is_seeded_and_respects_skip_rules():
    pos = A.positions(load_space(CIFAR))
    a = A.sample(pos, 20, seed=3)
    b = A.sample(pos, 20, seed=3)
    c = A.sample(pos, 20, seed=4)
    assert [x.choices for x in a] == [x.choices for x in b]
    assert [x.choices for x in a] != [x.choices for x in c]
    assert len({x.choices for x in a}) == 20
    choice_pos = [p for p in pos if p.choice]
    # first block of each stage changes channels or stride: no skip there
    assert [p.skip for p in choice_pos][:5] == [False, True, True, True, False]
    for arch in a:
        blocks = A.blocks_of(pos, arch.choices)
        uids = M.module_uids(blocks, "block")
        assert len(uids) == sum(b is not None for b in blocks)


def test_spread_sampling_adds_distinct_extremes_with_stable_ids():
    pos = A.positions(load_space(CIFAR))
    ext = A.extremes(pos)
    names = [n for n, _ in ext]
    assert names[:3] == ["smallest", "largest", "skip-largest"] and "cand-0" in names
    assert len({c for _, c in ext}) == len(ext)
    choice_pos = [p for p in pos if p.choice]
    smallest = dict(ext)["smallest"]
    assert all(c == len(p.options) for p, c in zip(choice_pos, smallest) if p.skip)
    for strategy in A.STRATEGIES:
        a = A.sample(pos, 40, seed=1, strategy=strategy, with_extremes=True)
        assert [x.extreme for x in a[:len(ext)]] == names and all(x.extreme is None for x in a[len(ext):])
        assert len({x.choices for x in a}) == 40 and len({x.arch_id for x in a}) == 40
        b = A.sample(pos, 25, seed=1, strategy=strategy, with_extremes=True)
        assert [(x.arch_id, x.choices) for x in b] == [(x.arch_id, x.choices) for x in a[:25]]
    with pytest.raises(ValueError, match="strategy"):
        A.sample(pos, 5, seed=0, strategy="sobol")


def test_spread_sampling_spans_a_wider_range_than_uniform():
    pos = A.positions(load_space(CIFAR))

    def macs(strategy):
        archs = A.sample(pos, 200, seed=0, strategy=strategy)
        return np.array([sum(M.cost(b)["macs"] for b in A.blocks_of(pos, a.choices) if b) for a in archs])
    u, s = macs("uniform"), macs("spread")
    assert np.percentile(s, 10) < np.percentile(u, 10) and np.percentile(s, 90) > np.percentile(u, 90)
    assert s.std() > 1.5 * u.std()
