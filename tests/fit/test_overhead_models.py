"""Calibration models with a per-module overhead, on synthetic data with a known ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from profiler.errors import FitError
from profiler.fit.metrics import edge_metrics
from profiler.fit.models import OverheadModel, ScaleBias, fit_runtimes, overhead_features
from profiler.fit.report import read_report, report_dict, summary_lines, write_report

SCALE, OVERHEAD, CONST = 1.05, 40.0, 30.0   # the truth: y = 1.05 * Σlat + 40 us per module + 30 us


def _space(seed: int = 0):
    rng = np.random.default_rng(seed)
    lat = {f"M[{i}]": float(rng.uniform(20, 120)) for i in range(40)}
    lat.update({f"Small[{i}]": float(rng.uniform(2, 6)) for i in range(5)})
    return rng, lat


def _truth(uids, lat):
    return SCALE * sum(lat[u] for u in uids) + OVERHEAD * len(uids) + CONST


def _mid_networks(rng, lat, n=60):
    """Networks of 14..22 ordinary modules: the middle of the range, like a uniform sample."""
    big = [u for u in lat if u.startswith("M[")]
    nets = [list(rng.choice(big, size=int(rng.integers(14, 23)), replace=False)) for _ in range(n)]
    y = [_truth(u, lat) * (1 + rng.normal(0, 0.005)) for u in nets]
    return nets, y


def test_overhead_model_recovers_a_known_per_module_overhead():
    rng, lat = _space()
    nets, y = _mid_networks(rng, lat)
    X = overhead_features(nets, lat, ["*"])
    m = OverheadModel().fit(X, y)
    assert m.scale_[0] == pytest.approx(SCALE, rel=0.02)
    assert m.overhead_ == pytest.approx(OVERHEAD, abs=2.0)
    assert m.bias_ >= 0 and m.overhead_ >= 0
    calib = m.calibration(lat, {})
    assert calib.model == "module-overhead"
    assert calib.estimate(nets[0]) == pytest.approx(float(m.predict(X[:1])[0]), rel=1e-9)


def test_extreme_network_old_model_wrong_new_model_right():
    rng, lat = _space(1)
    nets, y = _mid_networks(rng, lat)
    tiny = [f"Small[{i}]" for i in range(3)]             # the smallest network: 3 cheap modules
    truth = _truth(tiny, lat)
    sb = ScaleBias().fit([sum(lat[u] for u in n) for n in nets], y)
    old = sb.calibration(lat, {}).estimate(tiny)
    new = OverheadModel().fit(overhead_features(nets, lat, ["*"]), y).calibration(lat, {}).estimate(tiny)
    assert abs(old - truth) / truth > 0.1      # a global line cannot carry the overhead to few modules
    assert abs(new - truth) / truth < 0.03


def test_estimates_are_never_negative():
    rng, lat = _space(2)
    nets, _ = _mid_networks(rng, lat)
    x = np.array([sum(lat[u] for u in n) for n in nets])
    y = 0.6 * x - 270.0                                   # the seed's fits: negative bias
    sb = ScaleBias().fit(x, y)
    assert sb.bias_ < 0
    c = sb.calibration(lat, {})
    assert c.estimate([]) == 0.0 and c.estimate(["Small[0]"]) >= 0.0
    m = OverheadModel().fit(overhead_features(nets, lat, ["*"]), y)
    assert m.bias_ >= 0 and m.overhead_ >= 0 and np.all(m.scale_ >= 0)
    assert m.calibration(lat, {}).estimate([]) >= 0.0


def test_per_op_model_recovers_scales_per_type():
    rng = np.random.default_rng(3)
    lat = {f"Conv[{i}]": float(rng.uniform(20, 100)) for i in range(30)}
    lat.update({f"Add[{i}]": float(rng.uniform(5, 30)) for i in range(30)})
    nets = [list(rng.choice(list(lat), size=int(rng.integers(5, 25)), replace=False)) for _ in range(80)]
    y = [sum((0.8 if u.startswith("Conv") else 2.0) * lat[u] for u in n) + 5.0 * len(n) + 10 for n in nets]
    m = OverheadModel(["Add", "Conv"]).fit(overhead_features(nets, lat, ["Add", "Conv"]), y)
    assert m.scale_ == pytest.approx([2.0, 0.8], rel=1e-6)
    assert m.overhead_ == pytest.approx(5.0, rel=1e-6) and m.bias_ == pytest.approx(10.0, rel=1e-5)
    assert m.calibration(lat, {}).model == "per-op"


def _fit(model="auto"):
    rng, lat = _space(4)
    nets, y = _mid_networks(rng, lat)
    nets = [[f"Small[{i}]" for i in range(3)], [f"M[{i}]" for i in range(30)]] + nets
    y = [_truth(nets[0], lat), _truth(nets[1], lat)] + y
    ids = [f"arch-{i:04d}" for i in range(len(nets))]
    x = [sum(lat[u] for u in n) for n in nets]
    return fit_runtimes({"CPU": (ids, x, y)}, model=model, networks={"CPU": (nets, lat, {})},
                        extremes={"arch-0000": "smallest", "arch-0001": "largest"})


def test_auto_picks_the_lowest_heldout_error_and_reports_edges(tmp_path):
    report = _fit()
    r = report.runtimes["CPU"]
    mapes = {k: v["heldout_after"]["mape"] for k, v in r.candidates.items()}
    assert set(mapes) == {"scale-bias", "module-overhead", "per-op"}
    assert r.model == min(mapes, key=mapes.get) and r.model != "scale-bias"
    assert r.heldout_after["mape"] == mapes[r.model]
    assert abs(r.edges["extremes"]["smallest"]["error_pct"]) < 5
    assert len(r.edges["deciles"]) == 10 and sum(d["n"] for d in r.edges["deciles"]) == r.n
    assert [c["percentile"] for c in r.edges["constraint"]] == [10, 25, 50]
    assert r.calibration is not None and r.calibration.model == r.model
    files = write_report(report, tmp_path)
    doc = json.loads(files["report_json"].read_text())
    assert doc["runtimes"]["CPU"]["model"] == r.model and doc["model"]["selection"] == "auto"
    back = read_report(files["report_json"]).runtimes["CPU"]
    assert back.model == r.model and back.edges == doc["runtimes"]["CPU"]["edges"]
    assert back.calibration.contrib == pytest.approx(r.calibration.contrib)
    assert report_dict(read_report(files["report_json"])) == doc
    assert any("extremes: smallest" in l for l in summary_lines(report))


def test_forced_model_and_bad_model():
    assert _fit("scale-bias").runtimes["CPU"].model == "scale-bias"
    with pytest.raises(FitError, match="unknown calibration model"):
        _fit("cubic")
    with pytest.raises(FitError, match="needs each network's modules"):
        fit_runtimes({"CPU": (["a", "b", "c"], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])}, model="per-op")


def test_constraint_check_counts_overshoot():
    y = np.arange(1.0, 11.0)                     # measured 1..10; p50 bound = 5.5
    p = y.copy()
    p[9] = 5.0                                   # the slowest network predicted within the p50 bound
    e = edge_metrics(y, p, [f"n{i}" for i in range(10)], {"n9": "largest"})
    c50 = next(c for c in e["constraint"] if c["percentile"] == 50)
    assert c50["n_predicted_within"] == 6 and c50["overshoot"] == pytest.approx(1 / 6)
    assert e["worst"]["id"] == "n9" and e["extremes"]["largest"]["error_pct"] == pytest.approx(-50.0)


def test_every_fitted_model_goes_into_estimator_py(tmp_path):
    """module-overhead and per-op calibrations (list-valued params) render, verify and predict
    exactly what the fitted model predicts, through the generated file's UID API."""
    from profiler.fit.codegen import load_source, write_estimator
    rng, lat = _space(3)
    nets, y = _mid_networks(rng, lat)
    types = {u: u.split("[")[0] for u in lat}
    op_types = sorted(set(types.values()))
    models = {"ORT_CPU": OverheadModel().fit(overhead_features(nets, lat, ["*"]), y),
              "NNABLA_CPU": OverheadModel(op_types).fit(overhead_features(nets, lat, op_types, types), y)}
    cals = {rt: m.calibration(lat, types) for rt, m in models.items()}
    assert isinstance(cals["NNABLA_CPU"].params["scale"], list)
    path = write_estimator(tmp_path / "estimator.py", cals, "Forward Propagate", "Median_Time")
    est = load_source(path.read_text(), "est_overhead_models")
    for rt, m in models.items():
        X = overhead_features(nets[:5], lat, m.op_types, types)
        for net, want in zip(nets[:5], m.predict(X)):
            assert est.estimate(net, rt) == pytest.approx(float(want), rel=1e-9)


def test_a_measured_network_constant_is_added_once_and_the_bias_keeps_only_the_rest():
    """Truth: y = 1.05 Σlat + 40 µs/module + 30 µs. With a table constant of 25 µs (measured, in the
    accumulated latency), every model fits measured - 25 and adds it back: the bias is the 5 µs
    left, the calibration constant the whole 30 µs; without the row the bias must find all 30."""
    rng, lat = _space(3)
    nets, _ = _mid_networks(rng, lat, 80)
    nets += [["Small[0]"], ["Small[1]", "Small[2]"], list(lat)[:3]]
    y = [_truth(u, lat) * (1 + rng.normal(0, 2e-4)) for u in nets]
    c0 = 25.0
    raw = [sum(lat[u] for u in n) for n in nets]
    ids = [f"a{i:03d}" for i in range(len(nets))]
    networks = {"CPU": (nets, lat, {})}
    with_c = fit_runtimes({"CPU": (ids, [r + c0 for r in raw], y)}, networks=networks,
                          model="module-overhead", constants={"CPU": c0})
    without = fit_runtimes({"CPU": (ids, raw, y)}, networks=networks, model="module-overhead")
    a, b = with_c.runtimes["CPU"], without.runtimes["CPU"]
    assert a.network_const == c0 and b.network_const == 0.0
    assert any("per-network constant 25 us" in l for l in summary_lines(with_c))
    assert not any("per-network constant" in l for l in summary_lines(without))
    assert a.calibration.params["bias_us"] == pytest.approx(CONST - c0, abs=3.0)
    assert a.calibration.const == pytest.approx(CONST, abs=3.0)
    assert b.calibration.params["bias_us"] == pytest.approx(CONST, abs=3.0)
    assert a.calibration.params["network_const_us"] == c0 and "network_const_us" not in b.calibration.params
    assert a.accum == pytest.approx([r + c0 for r in raw])          # the raw sum includes it
    assert a.heldout_before["mape"] < b.heldout_before["mape"]      # closer before any calibration
    # the estimate of the smallest network carries the constant once
    assert a.calibration.estimate(["Small[0]"]) == pytest.approx(_truth(["Small[0]"], lat), rel=0.05)
    # scale-bias: 'bias' is relative to the modules' sum alone (what estimator.py's linear API uses)
    sb = fit_runtimes({"CPU": (ids, [r + c0 for r in raw], y)}, networks=networks, model="scale-bias",
                      constants={"CPU": c0}).runtimes["CPU"]
    p = sb.calibration.params
    assert p["bias"] == pytest.approx(p["bias_after_const_us"] + c0) and sb.bias == p["bias_after_const_us"]
    assert sb.calibration.const == pytest.approx(p["bias"])
    d = sb.to_dict()
    assert d["network_const_us"] == c0 and type(sb).from_dict(d).network_const == c0


def test_a_negative_network_constant_is_refused():
    with pytest.raises(FitError, match="CPU: the per-network constant"):
        fit_runtimes({"CPU": (["a", "b", "c"], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0])}, constants={"CPU": -1.0})
