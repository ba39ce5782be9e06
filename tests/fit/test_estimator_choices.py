"""estimator.py for NAS loops: choices, labels, the latency matrix, expected latency, batches, units,
and the bad inputs of issue 12 item 11 (negative latencies, non-UTF-8 files, --accum nan)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from profiler.fit.calibration import Calibration
from profiler.fit.codegen import _modules_of, load_source, write_estimator
from profiler.pipeline.fit import describe_space
from profiler.space import arch as A
from profiler.space import modules as M
from profiler.space.searchspace import load_space

CIFAR = Path(__file__).resolve().parents[2] / "search_spaces" / "mobilenet_v2_cifar10.json"
RT = "ORT_CPU"


@pytest.fixture(scope="module", params=["block", "leaf"])
def est(request, tmp_path_factory):
    g = request.param
    space = load_space(CIFAR)
    rng = random.Random(1)
    uids = [m.uid for m in A.candidate_modules(space, g)]
    lat = {u: rng.uniform(1.0, 300.0) for u in uids}
    bias = -269.67  # a negative constant, as fitted in issue 12
    cals = {RT: Calibration("scale-bias", bias, {u: 1.1 * v for u, v in lat.items()}, {"scale": 1.1, "bias": bias}),
            "NNABLA_CPU": Calibration("module-overhead", 5.0, {u: 0.9 * v + 3.0 for u, v in lat.items()})}
    desc = describe_space(space, g)
    tmp = tmp_path_factory.mktemp("est_" + g)
    path = write_estimator(tmp / "estimator.py", cals, "Layers Time", "Median_Time", {"device": "test"}, desc)
    pos = A.positions(space)
    cp = [p for p in pos if p.choice]
    archs = [[rng.randrange(p.n_choices) for p in cp] for _ in range(1000)]
    mods = [M.module_uids(A.blocks_of(pos, a), g) for a in archs]
    (tmp / "archs.json").write_text(json.dumps({"choices": archs, "uids": mods}))
    return {"dir": tmp, "path": path, "cals": cals, "desc": desc, "archs": archs, "mods": mods,
            "mod": load_source(path.read_text(encoding="utf-8")), "pos": pos, "g": g}


def _run(cwd, args, stdin=None):
    return subprocess.run([sys.executable, "-I", "-S", *args], cwd=cwd, capture_output=True, input=stdin, timeout=60)


def test_describe_space_uses_the_project_labels_and_uids(est):
    d = est["desc"]
    assert len(d["positions"]) == 21 and [f["label"] for f in d["fixed"]] == [
        "ConvBNReLU", "InvertedResidual", "ConvBNReLU", "GlobalAvgPool", "Linear"]
    p = d["positions"][1]
    assert p["labels"] == ["MB3_k3", "MB6_k3", "MB3_k5", "MB6_k5", "MB3_k7", "MB6_k7", "skip"] and p["skip"]
    assert p["modules"][-1] == [] and p["stride"] == 1 and p["shape"] == [1, 24, 16, 16]
    assert not d["positions"][0]["skip"] and "skip" not in d["positions"][0]["labels"]
    assert len(p["modules"][0]) == (1 if est["g"] == "block" else 9)  # 8 leaves + Add2 (residual)


def test_every_function_agrees_with_the_uid_api_isolated(est):
    code = ("import sys, json; sys.path.insert(0, '.'); import estimator as E\n"
            "d = json.load(open('archs.json')); out = {}\n"
            "for rt in E.RUNTIMES:\n"
            "    const, m = E.latency_matrix(rt)\n"
            "    labels = [[E.CANDIDATES[i][c] for i, c in enumerate(a)] for a in d['choices']]\n"
            "    reg = E.LatencyRegularizer(rt)\n"
            "    out[rt] = {'uids': [E.estimate(u, rt) for u in d['uids']],\n"
            "      'choices': [E.estimate_choices(a, rt) for a in d['choices']],\n"
            "      'labels': [E.estimate_labels(l, rt) for l in labels],\n"
            "      'dict': [E.estimate_labels(dict(enumerate(l)), rt) for l in labels[:50]],\n"
            "      'many': E.estimate_many(d['choices'], rt),\n"
            "      'reg_c': [reg(a) for a in d['choices']], 'reg_u': [reg(u) for u in d['uids']],\n"
            "      'ms': [E.estimate_choices(a, rt, unit='ms') for a in d['choices']],\n"
            "      'matrix': [const + sum(m[i][c] for i, c in enumerate(a)) for a in d['choices']],\n"
            "      'onehot': [E.expected_latency([[1.0 if j == c else 0.0 for j in range(len(m[i]))]"
            " for i, c in enumerate(a)], rt) for a in d['choices'][:100]]}\n"
            "print(json.dumps([out, sorted(k for k in sys.modules if k.split('.')[0] in ('numpy', 'profiler'))]))")
    proc = _run(est["dir"], ["-c", code])
    assert proc.returncode == 0, proc.stderr.decode()
    out, leaked = json.loads(proc.stdout)
    assert leaked == []
    for rt, cal in est["cals"].items():
        o = out[rt]
        ref = [cal.estimate(u) for u in est["mods"]]
        assert o["uids"] == ref  # the Python-side Calibration, bit for bit
        assert o["choices"] == o["labels"] == o["many"] == o["reg_c"] == o["reg_u"] == ref
        assert o["dict"] == ref[:50]
        assert o["ms"] == [v / 1000.0 for v in ref]
        assert np.allclose(o["matrix"], ref, rtol=1e-12) and np.allclose(o["onehot"], ref[:100], rtol=1e-12)
        assert min(ref) > 0  # these calibrations never floor on CIFAR


def test_numpy_batches_and_expected_latency(est):
    E = est["mod"]
    arr = np.array(est["archs"], dtype=np.int8)
    for rt, cal in est["cals"].items():
        ref = np.array([cal.estimate(u) for u in est["mods"]])
        for a in (arr, arr.astype(np.int64), arr.astype(np.uint8), np.asfortranarray(arr)):
            got = E.estimate_many(a, rt)
            assert isinstance(got, np.ndarray) and np.allclose(got, ref, rtol=1e-12, atol=0)
        assert np.allclose(E.estimate_many(arr, rt, unit="ms"), ref / 1000.0, rtol=1e-12)
        const, m = E.latency_matrix(rt)
        rng = np.random.default_rng(0)
        probs = [rng.dirichlet(np.ones(len(r))) for r in m]
        want = const + sum(float(np.dot(p, r)) for p, r in zip(probs, m))
        assert E.expected_latency(probs, rt) == pytest.approx(want, rel=1e-12)
        assert E.expected_latency([p.tolist() for p in probs], rt) == pytest.approx(want, rel=1e-12)
        assert E.expected_latency(probs, rt, unit="ms") == pytest.approx(want / 1000.0, rel=1e-12)
        assert E.min_estimate(rt) <= min(ref)


def test_batches_go_in_blocks_and_name_the_first_bad_row(est, monkeypatch):
    E = est["mod"]
    monkeypatch.setattr(E, "_CHUNK", 7)  # many blocks and a short last one (1000 = 142 * 7 + 6)
    arr = np.array(est["archs"], dtype=np.int8)
    for rt, cal in est["cals"].items():
        ref = np.array([cal.estimate(u) for u in est["mods"]])
        for a in (arr, arr.astype(np.uint8), arr[:6], arr[:0]):
            assert np.allclose(E.estimate_many(a, rt), ref[:len(a)], rtol=1e-12, atol=0)
        assert np.allclose(E.estimate_many(arr, rt, unit="ms"), ref / 1000.0, rtol=1e-12, atol=0)
    for row, col, value, needle in ((500, 3, 7, "choice 3 is 7, out of range for block 3"),
                                    (999, 20, -1, "choice 20 is -1, out of range"),
                                    (998, 0, 6, "choice 0 is 6, out of range for block 0")):
        bad = arr.copy()
        bad[row, col] = value
        bad[row + 1:, :] = 100  # later rows are worse: the first bad row is named
        with pytest.raises(E.ChoiceError, match=needle):
            E.estimate_many(bad, RT)
    with pytest.raises(E.ChoiceError, match="choice 5 is 200, out of range"):
        E.estimate_many(np.where(np.arange(21) == 5, 200, arr).astype(np.uint8), RT)


def test_choices_name_a_module_missing_for_the_runtime(est, tmp_path):
    cal = est["cals"][RT]
    desc = est["desc"]
    linear = _modules_of(desc, est["archs"][0])[-1]
    cand = desc["positions"][4]["modules"][2][0]
    assert linear.startswith("Linear") and cand != linear

    def without(uid):
        return Calibration("scale-bias", cal.const, {u: v for u, v in cal.contrib.items() if u != uid}, cal.params)

    path = write_estimator(tmp_path / "estimator.py", {RT: cal, "NOLIN": without(linear), "NOCAND": without(cand)},
                           "Layers Time", "Median_Time", {"device": "test"}, desc)
    E = load_source(path.read_text(encoding="utf-8"))
    a = [0] * 21
    assert E.estimate_choices(a, RT) == cal.estimate(_modules_of(desc, a))
    with pytest.raises(E.UnknownModuleError) as info:
        E.estimate_choices(a, "NOLIN")
    assert "module %s is not in the embedded look-up table for runtime 'NOLIN'" % linear in str(info.value)
    a[4] = 2
    first = min(i for i, c in enumerate(a) if cand in desc["positions"][i]["modules"][c])  # leaves are shared
    with pytest.raises(E.UnknownModuleError, match="%s at choice block %d" % (E.CANDIDATES[first][a[first]], first)):
        E.estimate_choices(a, "NOCAND")
    with pytest.raises(E.UnknownModuleError, match="at choice block %d" % first):
        E.estimate_many([[0] * 21, a], "NOCAND")


def test_expected_latency_gradient_in_nnabla_is_the_matrix(est):
    nn = pytest.importorskip("nnabla")
    E = est["mod"]
    const, m = E.latency_matrix(RT)
    probs = [nn.Variable.from_numpy_array(np.full(len(r), 1.0 / len(r))) for r in m]
    for p in probs:
        p.need_grad = True
    y = E.expected_latency(probs, RT)
    y.forward()
    for p in probs:
        p.grad.zero()
    y.backward()
    assert float(y.d) == pytest.approx(const + sum(sum(r) / len(r) for r in m), rel=1e-5)
    for p, r in zip(probs, m):
        assert np.allclose(p.g, r, rtol=1e-5)


@pytest.mark.parametrize("call, needle", [
    (lambda E: E.estimate_choices([0] * 20, RT), "expected 21 choices"),
    (lambda E: E.estimate_choices([6] + [0] * 20, RT), "choice 0 is 6, out of range for block 0 (6 candidates"),
    (lambda E: E.estimate_choices([0] * 20 + [-1], RT), "choice 20 is -1, out of range"),
    (lambda E: E.estimate_labels(["skip"] + ["MB6_k5"] * 20, RT), "choice block 0 (stage 2, stride 1, 16->24 channels) does not allow skip"),
    (lambda E: E.estimate_labels(["MB6 5x5"] * 21, RT), "unknown label 'MB6 5x5' at choice block 0; its candidates: MB3_k3"),
    (lambda E: E.estimate_labels({0: "MB3_k3"}, RT), "label dict lacks choice blocks [1, 2"),
    (lambda E: E.estimate_many(np.zeros((3, 20), np.int8), RT), "shape (n, 21)"),
    (lambda E: E.estimate_many(np.full((3, 21), 9, np.int8), RT), "choice 0 is 9, out of range"),
    (lambda E: E.expected_latency([[1.0]] * 21, RT), "choice block 0 has 6 candidates"),
    (lambda E: E.estimate_choices([0] * 21, RT, unit="s"), "unit must be 'us' or 'ms'"),
    (lambda E: E.estimate_choices([0] * 20 + [-7], RT), "choice 20 is -7, out of range"),
    (lambda E: E.estimate_choices([0] * 20 + [-14], RT), "choice 20 is -14, out of range"),
    (lambda E: E.estimate_choices([0.5] + [0] * 20, RT), "choice 0 is 0.5, not an integer index"),
    (lambda E: E.estimate_choices([float("inf")] + [0] * 20, RT), "choice 0 is inf, not an integer index"),
    (lambda E: E.estimate_choices(5, RT), "choices must be a sequence of 21 choice indices, got 5"),
    (lambda E: E.estimate_choices("0" * 21, RT), "choices must be a sequence of 21"),
    (lambda E: E.estimate_many([[0] * 21, [0] * 22], RT), "expected 21 choices"),
    (lambda E: E.estimate_many([[0] * 21, [1, None] + [0] * 19], RT), "choice 1 is None, not an integer index"),
])
def test_choice_errors_are_one_clear_line(est, call, needle):
    E = est["mod"]
    with pytest.raises(E.ChoiceError) as info:
        call(E)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def _cli(est, args, stdin=None):
    proc = _run(est["dir"], ["estimator.py", *args], stdin)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_never_negative_and_cli_bad_input(est):
    d = est["dir"]
    gap = [u for u in est["cals"][RT].contrib if u.startswith("GlobalAvgPool")]
    (d / "empty.txt").write_text("\n")
    (d / "gap.txt").write_text(gap[0] + "\n")
    (d / "latin1.txt").write_bytes("Conv[µ]\n".encode("latin-1"))
    assert est["mod"].estimate([], RT) == 0.0 and est["mod"].estimate(gap, RT) == 0.0
    for f in ("empty.txt", "gap.txt"):
        rc, out, err = _cli(est, ["--uids", f, "--runtime", RT])
        assert (rc, out, err) == (0, "0.0\n", "")
    rc, out, err = _cli(est, ["--accum", "-10", "--runtime", RT])
    assert (rc, out) == (0, "0.0\n")
    for args, needle in ((["--uids", "latin1.txt"], "latin1.txt is not UTF-8 text (byte 0xb5 at offset 5)"),
                         (["--uids", "-"], "stdin is not UTF-8 text"),
                         (["--accum", "nan"], "must be a finite number of us, got nan"),
                         (["--accum", "inf"], "finite number"),
                         (["--accum", "abc"], "must be a number"),
                         (["--choices", "0,1"], "expected 21 choices"),
                         (["--labels", "skip"], "expected 21 labels")):
        rc, out, err = _cli(est, [*args, "--runtime", RT], stdin=b"\xff\xfe" if "-" in args else None)
        assert rc == 2 and out == "" and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and needle in err, (needle, err)
    rc, out, err = _cli(est, ["--accum", "100", "--runtime", "NNABLA_CPU"])
    assert rc == 2 and "calibrated with model 'module-overhead'" in err


def test_cli_choices_labels_and_units(est):
    a = est["archs"][7]
    ref = est["cals"][RT].estimate(est["mods"][7])
    labels = [est["mod"].CANDIDATES[i][c] for i, c in enumerate(a)]
    rc, out, _ = _cli(est, ["--choices", ",".join(map(str, a)), "--runtime", RT])
    assert rc == 0 and float(out) == ref
    rc, out, _ = _cli(est, ["--labels", ",".join(labels), "--runtime", RT, "--unit", "ms"])
    assert rc == 0 and float(out) == ref / 1000.0
    assert _modules_of(est["desc"], a) == est["mods"][7]


def test_elastic_depth_skips_only_trailing_blocks(tmp_path):
    """OFA's elastic depth: a stage keeps its first d blocks (d allowed) and skips the rest;
    every choice API refuses a skip in the middle, as the space's own sampler never makes one."""
    space = load_space(CIFAR.parent / "ofa_mbv3_imagenet.json")
    rng = random.Random(3)
    uids = [m.uid for m in A.candidate_modules(space, "block")]
    cal = Calibration("scale-bias", 10.0, {u: rng.uniform(1.0, 300.0) for u in uids}, {"scale": 1.0, "bias": 10.0})
    desc = describe_space(space, "block")
    assert desc["depths"] and all(d["depths"] == [2, 3, 4] for d in desc["depths"])
    E = load_source(write_estimator(tmp_path / "estimator.py", {RT: cal}, "Forward Propagate", "Median_Time",
                                    {"device": "test"}, desc).read_text(encoding="utf-8"))
    pos = A.positions(space)
    good = [list(a.choices) for a in A.sample(pos, 20, 0, with_extremes=True)]
    for a in good:  # the sampler's architectures pass, and agree with the UID API
        assert E.estimate_choices(a, RT) == pytest.approx(E.estimate(M.module_uids(A.blocks_of(pos, a), "block"), RT))
    blocks, _ = desc["depths"][0]["blocks"], None
    bad = list(good[1])  # the largest: every block kept; now skip the third block of the first stage only
    bad[blocks[2]] = desc["positions"][blocks[2]]["labels"].index("skip")
    with pytest.raises(E.ChoiceError, match="elastic-depth stage.*block block skip block"):
        E.estimate_choices(bad, RT)
    labels = [E.CANDIDATES[i][c] for i, c in enumerate(bad)]
    with pytest.raises(E.ChoiceError, match="elastic-depth"):
        E.estimate_labels(labels, RT)
    with pytest.raises(E.ChoiceError, match="elastic-depth"):
        E.estimate_many([good[0], bad], RT)
    for dtype in (np.int8, np.int64):
        with pytest.raises(E.ChoiceError, match="row 2: .*elastic-depth"):
            E.estimate_many(np.array([good[0], good[2], bad], dtype=dtype), RT)
        assert np.allclose(E.estimate_many(np.array(good, dtype=dtype), RT), [E.estimate_choices(a, RT) for a in good])
