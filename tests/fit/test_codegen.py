"""The generated estimator.py: standalone, exact round trip, table loading, CLI and errors.

The generated file is always exercised in a fresh interpreter started with ``-I -S`` from
``tmp_path`` (no site-packages, no current directory on sys.path), so neither the profiler
nor numpy can be imported there.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from profiler.fit.calibration import Calibration
from profiler.fit.codegen import embedded_sha256, load_source, render_estimator, write_estimator
from profiler.errors import FitError, TableError
from profiler.fit.models import ScaleBias

RUNTIMES = ("CPU", "GPU_FP16", "DSP")
KEY, STAT = "Layers Time", "Avg_Time"


def _uid(i: int, rng) -> str:
    c = int(rng.choice([16, 24, 32, 64, 96, 192]))
    h = int(rng.choice([8, 16, 32]))
    kind = ["Conv", "BatchNormalization", "ReLU6", "MBConv"][i % 4]
    return (f"{kind}[in_channels={c},out_channels={c * 2},kernel=(3,3),pad=(1,1),stride=(1,1),"
            f"id={i}][[1,{c},{h},{h}]]")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A 300-module table on 3 runtimes (DSP lacks two modules), 120 architectures, fits."""
    rng = np.random.default_rng(42)
    uids = [_uid(i, rng) for i in range(300)]
    values = {rt: {u: float(rng.uniform(1.0, 400.0)) for u in uids} for rt in RUNTIMES}
    missing_on_dsp = uids[:2]
    for u in missing_on_dsp:
        del values["DSP"][u]
    archs = {}
    for a in range(120):
        pool = uids[2:] if a % 2 else uids
        archs[f"arch-{a:04d}"] = [pool[int(j)] for j in rng.integers(0, len(pool), int(rng.integers(5, 40)))]
    models, accum = {}, {}
    for k, rt in enumerate(RUNTIMES):
        ids = [i for i, us in archs.items() if all(u in values[rt] for u in us)]
        x = []
        for i in ids:
            s = 0.0
            for u in archs[i]:
                s += values[rt][u]
            x.append(s)
        x = np.array(x)
        y = (1.1 + 0.2 * k) * x + 300.0 * (k + 1) + rng.normal(0.0, 25.0, x.size)
        models[rt] = ScaleBias(robust=(rt == "DSP")).fit(x, y)
        accum[rt] = dict(zip(ids, x.tolist()))
    coefs = {rt: (m.scale_, m.bias_) for rt, m in models.items()}
    cals = {rt: _cal(values[rt], *coefs[rt]) for rt in RUNTIMES}
    tmp = tmp_path_factory.mktemp("estimator")
    prov = {"device": "Pixel 7 (Tensor G2)", "sdk": "SNPE 2.10.0", "date": "2024-05-01T12:00:00Z",
            "table": "work/table.json", "table_sha256": "ab" * 32, "profiler_version": "9.9.9",
            "heldout": {rt: {"n": 60, "mape": 3.5, "within_10": 0.95, "spearman": 0.99, "r2": float("nan")}
                        for rt in RUNTIMES}}
    path = write_estimator(tmp / "estimator.py", cals, KEY, STAT, prov)
    (tmp / "archs.json").write_text(json.dumps(archs))
    return {"dir": tmp, "path": path, "values": values, "coefs": coefs, "cals": cals, "models": models, "archs": archs,
            "accum": accum, "uids": uids, "missing_on_dsp": missing_on_dsp, "provenance": prov}


def _cal(values, scale, bias):
    return Calibration("scale-bias", bias, {u: scale * v for u, v in values.items()}, {"scale": scale, "bias": bias})


def _run(cwd: Path, args, stdin=None):
    return subprocess.run([sys.executable, "-I", "-S", *args], cwd=cwd, capture_output=True, text=True,
                          input=stdin, timeout=60)


def _py(cwd: Path, code: str):
    """Run ``code`` in an isolated interpreter with only ``cwd`` importable; return parsed JSON stdout."""
    prelude = "import sys, json; sys.path.insert(0, '.'); "
    out = _run(cwd, ["-c", prelude + code])
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _rel_close(a: float, b: float, rel: float = 1e-9) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


# --- standalone ---------------------------------------------------------------------------

def test_generated_file_imports_only_the_standard_library(setup):
    src = setup["path"].read_text(encoding="utf-8")
    tree = ast.parse(src, feature_version=(3, 8))  # no syntax newer than Python 3.8
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            imported.add(node.module.split(".")[0])
    assert imported and imported <= set(sys.stdlib_module_names), imported
    assert "profiler" not in imported


def test_isolated_interpreter_cannot_see_the_profiler(setup):
    got = _py(setup["dir"], "import importlib.util as u; print(json.dumps([u.find_spec(m) is None "
                            "for m in ('profiler', 'numpy', 'sklearn')]))")
    assert got == [True, True, True]


def test_predictions_equal_scale_bias_predict(setup):
    code = ("import estimator; archs = json.load(open('archs.json')); out = {}\n"
            "for rt in estimator.RUNTIMES:\n"
            "    out[rt] = {}\n"
            "    for i, uids in archs.items():\n"
            "        try: out[rt][i] = [estimator.estimate(uids, rt), estimator.accumulate(uids, rt)]\n"
            "        except estimator.UnknownModuleError: pass\n"
            "print(json.dumps({'runtimes': list(estimator.RUNTIMES), 'out': out,"
            " 'modules': sorted(m for m in sys.modules if m.split('.')[0] in ('profiler', 'numpy'))}))")
    got = _py(setup["dir"], code)
    assert got["runtimes"] == list(RUNTIMES)
    assert got["modules"] == []
    checked = 0
    for rt in RUNTIMES:
        accum = setup["accum"][rt]
        assert set(got["out"][rt]) == set(accum)  # exactly the architectures the table covers
        ids = sorted(accum)
        expected = setup["models"][rt].predict(np.array([accum[i] for i in ids]))
        for i, e in zip(ids, expected):
            est, acc = got["out"][rt][i]
            assert _rel_close(acc, setup["coefs"][rt][0] * accum[i])  # contributions, no constant
            assert _rel_close(est, float(e)), (rt, i, est, e)
            checked += 1
    assert checked > 250


def test_estimate_accum_and_regularizer(setup):
    arch = setup["archs"]["arch-0001"]
    code = ("import estimator; uids = json.load(open('archs.json'))['arch-0001']\n"
            "r = estimator.LatencyRegularizer('GPU_FP16', bound_us=2000.0, weight=0.2)\n"
            "lat = r(uids)\n"
            "print(json.dumps({'accum': [estimator.estimate_accum(v, 'CPU') for v in (0.0, 1234.5, 1e6)],"
            " 'reg': lat, 'mod': estimator.estimate(uids, 'GPU_FP16'), 'reg_accum': r.accumulate(uids),"
            " 'pen': r.penalty(uids), 'pen_lo': r.penalty_of(100.0), 'pen_neg': r.penalty_of(-5.0),"
            " 'unit': estimator.UNIT, 'key': [estimator.KEY, estimator.STAT]}))")
    got = _py(setup["dir"], code)
    m = setup["models"]["CPU"]
    assert got["accum"] == pytest.approx(list(m.predict(np.array([0.0, 1234.5, 1e6]))), rel=1e-12)
    assert got["reg"] == got["mod"]
    lat = setup["coefs"]["GPU_FP16"][1] + got["reg_accum"]
    assert _rel_close(got["reg"], lat)
    assert got["pen"] == pytest.approx(min(1.0, 2000.0 / lat) ** 0.2, rel=1e-12)
    assert lat > 2000.0 and got["pen"] < 1.0  # the bound binds for this network
    assert got["pen_lo"] == 1.0 and got["pen_neg"] == 1.0
    assert got["unit"] == "us" and got["key"] == [KEY, STAT]
    assert len(arch) > 0


def test_embedded_hash_and_header(setup):
    src = setup["path"].read_text(encoding="utf-8")
    sha = embedded_sha256(setup["cals"])
    got = _py(setup["dir"], "import estimator; print(json.dumps([estimator.EMBEDDED_SHA256, "
                            "estimator.embedded_sha256(), estimator.__doc__, estimator.PROVENANCE]))")
    assert got[0] == got[1] == sha
    doc, prov = got[2], got[3]
    for text in ("microseconds", "Layers Time", "Avg_Time", "Pixel 7 (Tensor G2)", "SNPE 2.10.0",
                 "2024-05-01T12:00:00Z", "ab" * 32, "9.9.9", sha, "3.50 %", "95.0 %", "LatencyRegularizer",
                 "--table", "table_path", "python estimator.py --uids"):
        assert text in doc, text
    for rt in RUNTIMES:
        scale, bias = setup["coefs"][rt]
        assert repr(scale) in doc and repr(bias) in doc
    assert prov["heldout"]["CPU"]["r2"] is None  # NaN made JSON-safe
    assert src.startswith("#!/usr/bin/env python3\n\"\"\"Latency estimator for Pixel 7")


def test_large_table_stays_compact(tmp_path):
    rng = np.random.default_rng(0)
    uids = [_uid(i, rng) for i in range(10_000)]
    values = {rt: {u: float(rng.uniform(1, 500)) for u in uids} for rt in ("CPU", "GPU")}
    cals = {"CPU": Calibration("x", 200.0, values["CPU"]), "GPU": Calibration("x", 50.0, values["GPU"])}
    src = render_estimator(cals, KEY, STAT, {})
    uid_bytes = sum(len(u) for u in uids)
    # each uid appears once (plus quotes/indent), each value once per runtime (repr + ", ")
    assert len(src) < uid_bytes + 10_000 * 8 + 2 * 10_000 * 22 + 20_000
    mod = load_source(src)
    assert mod.accumulate(uids[:3], "GPU") == values["GPU"][uids[0]] + values["GPU"][uids[1]] + values["GPU"][uids[2]]


# --- table loading ------------------------------------------------------------------------

def _table_json(values, scale_by=1.0):
    doc = {}
    for rt, per in values.items():
        for uid, v in per.items():
            doc.setdefault(uid, {})[rt] = {
                "Layers Time": {"Min_Time": v * 0.9, "Avg_Time": v * scale_by, "Max_Time": v * 1.2},
                "Forward Propagate": {"Avg_Time": v + 500.0},
                "Total Inference Time": {"Avg_Time": v + 600.0}}
    return doc


def test_table_path_replaces_the_embedded_table(setup, tmp_path):
    tdir = setup["dir"]
    (tdir / "table2.json").write_text(json.dumps(_table_json(setup["values"], scale_by=2.0)))
    code = ("import estimator; uids = json.load(open('archs.json'))['arch-0003']\n"
            "t = estimator.load_table('table2.json')\n"
            "r = estimator.LatencyRegularizer('CPU', table_path='table2.json')\n"
            "print(json.dumps([estimator.accumulate(uids, 'CPU'), estimator.accumulate(uids, 'CPU', 'table2.json'),"
            " estimator.estimate(uids, 'CPU', table_path='table2.json'), r(uids), sorted(t),"
            " estimator.accumulate(uids, 'CPU', 'table2.json') == estimator.accumulate(uids, 'CPU', 'table2.json')]))")
    base, doubled, est, reg, rts, cached = _py(tdir, code)
    assert sorted(rts) == sorted(RUNTIMES)
    assert doubled == pytest.approx(2 * base, rel=1e-12)
    assert _rel_close(est, setup["coefs"]["CPU"][1] + doubled)
    assert reg == est and cached is True


def test_table_path_errors(setup):
    tdir = setup["dir"]
    (tdir / "bad.json").write_text("[1, 2]")
    (tdir / "notjson.json").write_text("{nope")
    (tdir / "cpu_only.json").write_text(json.dumps(_table_json({"CPU": setup["values"]["CPU"]})))
    code = ("import estimator\n"
            "out = []\n"
            "for path, rt in (('bad.json', 'CPU'), ('notjson.json', 'CPU'), ('cpu_only.json', 'DSP'),"
            " ('missing.json', 'CPU')):\n"
            "    try: estimator.accumulate([], rt, path); out.append(None)\n"
            "    except Exception as e: out.append([type(e).__name__, str(e), isinstance(e, KeyError)])\n"
            "print(json.dumps(out))")
    bad, notjson, cpu_only, missing = _py(tdir, code)
    assert bad[0] == "TableFormatError" and "bad.json" in bad[1]
    assert notjson[0] == "TableFormatError" and "not valid JSON" in notjson[1]
    assert cpu_only[0] == "UnknownRuntimeError" and cpu_only[2]
    assert "'DSP'" in cpu_only[1] and "cpu_only.json" in cpu_only[1] and "CPU" in cpu_only[1]
    assert missing[0] == "FileNotFoundError"


# --- errors -------------------------------------------------------------------------------

def test_unknown_uid_and_runtime_errors(setup):
    missing = setup["missing_on_dsp"][0]
    code = ("import estimator\n"
            f"uid = {missing!r}\n"
            "out = []\n"
            "for call in (lambda: estimator.estimate([uid], 'DSP'), lambda: estimator.estimate([uid], 'NPU'),"
            " lambda: estimator.LatencyRegularizer('NPU'), lambda: estimator.estimate_accum(1.0, 'cpu'),"
            " lambda: estimator.LatencyRegularizer('DSP').estimate(['x', uid])):\n"
            "    try: call(); out.append(None)\n"
            "    except KeyError as e: out.append([type(e).__name__, str(e), getattr(e, 'uid', None),"
            " getattr(e, 'runtime', None)])\n"
            "print(json.dumps(out))")
    mod_err, rt_err, reg_err, case_err, reg_uid = _py(setup["dir"], code)
    assert mod_err[0] == "UnknownModuleError" and mod_err[2] == missing and mod_err[3] == "DSP"
    assert missing in mod_err[1] and "'DSP'" in mod_err[1] and "\n" not in mod_err[1]
    assert not mod_err[1].startswith("'")  # a readable message, not KeyError's repr
    for err, rt in ((rt_err, "NPU"), (reg_err, "NPU"), (case_err, "cpu")):
        assert err[0] == "UnknownRuntimeError" and err[3] == rt
        assert f"unknown runtime {rt!r}" in err[1] and "CPU, GPU_FP16, DSP" in err[1]
    assert reg_uid[0] == "UnknownModuleError" and reg_uid[2] == "x"


def test_regularizer_argument_errors(setup):
    code = ("import estimator\n"
            "out = []\n"
            "for kw in ({'bound_us': 0}, {'weight': -1}, {}):\n"
            "    try: r = estimator.LatencyRegularizer('CPU', **kw); r.penalty_of(10.0); out.append(None)\n"
            "    except ValueError as e: out.append(str(e))\n"
            "print(json.dumps(out))")
    bound, weight, nobound = _py(setup["dir"], code)
    assert "bound_us must be positive" in bound and "weight" in weight and "no bound" in nobound


# --- CLI ----------------------------------------------------------------------------------

def test_cli_file_stdin_table_accum(setup):
    tdir = setup["dir"]
    uids = setup["archs"]["arch-0002"]
    (tdir / "arch.txt").write_text("\n".join(uids) + "\n\n")
    accum = setup["accum"]["CPU"]["arch-0002"]
    expected = setup["models"]["CPU"].predict([accum])[0]

    out = _run(tdir, ["estimator.py", "--uids", "arch.txt", "--runtime", "CPU"])
    assert out.returncode == 0 and out.stderr == ""
    assert _rel_close(float(out.stdout), expected)

    out = _run(tdir, ["estimator.py", "--uids", "-", "--runtime", "CPU"], stdin="\r\n".join(uids))
    assert out.returncode == 0 and _rel_close(float(out.stdout), expected)

    out = _run(tdir, ["estimator.py", "--uids", "arch.txt", "--runtime", "CPU", "--sum"])
    assert out.returncode == 0 and _rel_close(float(out.stdout), setup["coefs"]["CPU"][0] * accum)

    (tdir / "table3.json").write_text(json.dumps(_table_json(setup["values"], scale_by=3.0)))
    out = _run(tdir, ["estimator.py", "--uids", "arch.txt", "--runtime", "CPU", "--table", "table3.json"])
    assert out.returncode == 0
    assert _rel_close(float(out.stdout), setup["models"]["CPU"].predict([3 * accum])[0], rel=1e-9)

    out = _run(tdir, ["estimator.py", "--accum", "1500.25", "--runtime", "GPU_FP16"])
    assert out.returncode == 0
    assert _rel_close(float(out.stdout), setup["models"]["GPU_FP16"].predict([1500.25])[0])


@pytest.mark.parametrize("args, needles", [
    (["--uids", "arch_bad.txt", "--runtime", "DSP"], ["is not in the embedded look-up table", "'DSP'"]),
    (["--uids", "arch_bad.txt", "--runtime", "NPU"], ["unknown runtime 'NPU'", "CPU, GPU_FP16, DSP"]),
    (["--uids", "no_such_file.txt", "--runtime", "CPU"], ["cannot read no_such_file.txt", "No such file"]),
    (["--uids", "arch_bad.txt", "--runtime", "CPU", "--table", "nope.json"], ["cannot read nope.json"]),
    (["--runtime", "CPU"], ["one of the arguments --uids --choices --labels --accum is required"]),
])
def test_cli_errors_are_one_line_and_exit_2(setup, args, needles):
    tdir = setup["dir"]
    (tdir / "arch_bad.txt").write_text(setup["missing_on_dsp"][1] + "\n")
    out = _run(tdir, ["estimator.py", *args])
    assert out.returncode == 2
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("estimator.py: error: ")
    for n in needles:
        assert n in last, (n, last)
    if "--uids" in args and "arch_bad.txt" in args and "DSP" in args:
        assert setup["missing_on_dsp"][1] in last
        assert len(out.stderr.strip().splitlines()) == 1


# --- codegen inputs, verification and writing ---------------------------------------------

def test_render_rejects_bad_inputs():
    vals = {"CPU": {"a": 1.0, "b": 2.0}}
    with pytest.raises(FitError, match="no fitted runtime"):
        render_estimator({}, KEY, STAT, {})
    with pytest.raises(TableError, match="GPU has no module contributions"):
        render_estimator({"GPU": Calibration("x", 0.0, {})}, KEY, STAT, {})
    with pytest.raises(TableError, match="must be finite"):
        render_estimator({"CPU": Calibration("x", 0.0, {"a": float("nan")})}, KEY, STAT, {})
    with pytest.raises(FitError, match="non-finite"):
        render_estimator({"CPU": Calibration("scale-bias", 0.0, vals["CPU"], {"scale": float("inf"), "bias": 0.0})},
                         KEY, STAT, {})
    with pytest.raises(FitError, match="non-finite calibration constant"):
        render_estimator({"CPU": Calibration("x", float("nan"), vals["CPU"])}, KEY, STAT, {})


def test_hostile_provenance_and_uids_cannot_break_the_file(tmp_path):
    uids = ['Conv[a="""b"""]', "BN[\\x00]", "Ünïcode[µ]", "tab\there"]
    vals = {"C'P\"U": {u: float(i + 1) for i, u in enumerate(uids)}}
    prov = {"device": 'evil """\nimport os\\', "sdk": "\x00\x01", "extra": {"nested": [1, float("nan")]}}
    path = write_estimator(tmp_path / "sub" / "est.py", {"C'P\"U": _cal(vals["C'P\"U"], 2.0, 1.0)}, 'Layers "Time"',
                           "Avg", prov)
    assert [p.name for p in path.parent.iterdir()] == ["est.py"]  # no temporary file left behind
    code = ("import est; print(json.dumps([est.estimate(%r, %r), est.PROVENANCE['device'], est.KEY, "
            "est.PROVENANCE['extra']]))" % (uids, "C'P\"U"))
    got = _py(path.parent, code)
    assert got == [2.0 * 10.0 + 1.0, prov["device"], 'Layers "Time"', {"nested": [1, None]}]
    # rewriting replaces the file atomically
    write_estimator(path, {"C'P\"U": _cal(vals["C'P\"U"], 3.0, 0.0)}, KEY, STAT, {})
    assert _py(path.parent, "import est; print(json.dumps(est.COEFFICIENTS))") == {"C'P\"U": [3.0, 0.0]}
