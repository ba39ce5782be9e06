"""Metrics, scale-and-bias fitting and held-out cross-validation."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from profiler.errors import FitError
from profiler.fit.models import (CVResult, FitReport, PerOpScale, ScaleBias, cross_validate, fit_runtimes,
                          op_feature_matrix)
from profiler.fit.metrics import METRIC_NAMES, regression_metrics


def _ids(n, start=0):
    return [f"arch-{i:04d}" for i in range(start, start + n)]


def _line(n, scale=1.3, bias=250.0, noise=20.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(1000.0, 5000.0, n)
    return x, scale * x + bias + rng.normal(0.0, noise, n)


# --- metrics ------------------------------------------------------------------------------

def test_metrics_hand_computed():
    m = regression_metrics([100, 200, 400, 800], [210, 190, 400, 1000])
    # relative errors: +110 %, -5 %, 0 %, +25 %
    assert list(m) == list(METRIC_NAMES)
    assert m["n"] == 4
    assert m["mape"] == pytest.approx(35.0)
    assert m["max_ape"] == pytest.approx(110.0)
    # errors 110, -10, 0, 200 -> mean square (12100 + 100 + 0 + 40000) / 4
    assert m["rmse"] == pytest.approx(math.sqrt(13050.0))
    # mean 375: SS_tot = 275^2 + 175^2 + 25^2 + 425^2 = 287500; SS_res = 52200
    assert m["r2"] == pytest.approx(1 - 52200 / 287500)
    # predicted ranks 2,1,3,4: d^2 sum 2 -> 1 - 6*2/(4*15); one discordant pair of 6
    assert m["spearman"] == pytest.approx(0.8)
    assert m["kendall"] == pytest.approx(4 / 6)
    assert m["within_5"] == 0.5  # -5 % (inclusive boundary) and 0 %
    assert m["within_10"] == 0.5


def test_metrics_perfect_and_boundaries():
    m = regression_metrics([100, 200, 300], [110, 180, 300])  # +10 %, -10 %, 0 %
    assert m["within_10"] == 1.0
    assert m["within_5"] == pytest.approx(1 / 3)
    p = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert p["mape"] == 0 and p["rmse"] == 0 and p["r2"] == 1 and p["spearman"] == pytest.approx(1.0)


def test_metrics_small_samples_are_nan_not_errors():
    two = regression_metrics([100, 200], [110, 190])
    assert two["n"] == 2 and math.isnan(two["spearman"]) and math.isnan(two["kendall"])
    assert two["r2"] == pytest.approx(1 - 200 / 5000)
    one = regression_metrics([100], [90])
    assert math.isnan(one["r2"]) and one["mape"] == pytest.approx(10.0)
    const = regression_metrics([100, 100, 100], [90, 100, 110])
    assert math.isnan(const["r2"]) and math.isnan(const["spearman"])


@pytest.mark.parametrize("t, p", [([], []), ([1, 2], [1]), ([0, 1, 2], [1, 1, 2]), ([1, 2, np.nan], [1, 2, 3]),
                                  ([[1, 2]], [[1, 2]])])
def test_metrics_reject_bad_input(t, p):
    with pytest.raises(ValueError):
        regression_metrics(t, p)


# --- ScaleBias ----------------------------------------------------------------------------

def test_scale_bias_recovers_known_line():
    x, y = _line(200, scale=1.3, bias=250.0, noise=20.0)
    model = ScaleBias()
    assert model.fit(x, y) is model
    assert model.scale_ == pytest.approx(1.3, abs=0.01)
    assert model.bias_ == pytest.approx(250.0, abs=25.0)
    assert model.n_samples_ == 200 and not model.outliers_.any()
    assert np.allclose(model.predict(x), model.scale_ * x + model.bias_, rtol=0, atol=0)
    robust = ScaleBias(robust=True).fit(x, y)
    assert robust.scale_ == pytest.approx(1.3, abs=0.01)
    assert robust.bias_ == pytest.approx(250.0, abs=25.0)


def test_scale_bias_exact_line_and_unit_invariance():
    x = np.array([10.0, 20.0, 35.0, 50.0, 80.0])
    for robust in (False, True):
        m = ScaleBias(robust=robust).fit(x, 0.5 * x + 7.0)
        assert m.scale_ == pytest.approx(0.5, rel=1e-6) and m.bias_ == pytest.approx(7.0, rel=1e-5)
        # the same data in nanoseconds gives the same scale and 1000x the bias
        m2 = ScaleBias(robust=robust).fit(1e3 * x, 1e3 * (0.5 * x + 7.0))
        assert m2.scale_ == pytest.approx(0.5, rel=1e-6) and m2.bias_ == pytest.approx(7000.0, rel=1e-5)


def test_robust_fit_resists_an_outlier():
    rng = np.random.default_rng(3)
    x = np.linspace(1000.0, 5000.0, 40)
    y = 1.2 * x + 300.0 + rng.normal(0.0, 5.0, x.size)
    y[-1] *= 3.0  # one network measured during a thermal throttle
    ols = ScaleBias().fit(x, y)
    huber = ScaleBias(robust=True).fit(x, y)
    assert abs(ols.scale_ - 1.2) > 0.1
    assert huber.scale_ == pytest.approx(1.2, abs=0.01)
    assert huber.bias_ == pytest.approx(300.0, abs=30.0)
    assert huber.outliers_[-1]


def test_scale_bias_sklearn_conventions():
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    m = ScaleBias(robust=True, epsilon=2.0)
    assert m.get_params() == {"robust": True, "epsilon": 2.0}
    assert not hasattr(m, "scale_")  # __init__ only assigns
    c = clone(m)
    assert c.get_params() == m.get_params() and c is not m
    assert m.set_params(epsilon=1.5) is m and m.epsilon == 1.5
    with pytest.raises(ValueError, match="invalid parameter"):
        m.set_params(alpha=1)
    with pytest.raises(NotFittedError):
        ScaleBias().predict([1.0])
    assert repr(m) == "ScaleBias(robust=True, epsilon=1.5)"
    # refitting overwrites every fitted attribute
    m.fit([1, 2, 3], [2, 4, 6])
    m.fit([1, 2, 3, 4], [1, 2, 3, 4])
    assert m.scale_ == pytest.approx(1.0) and m.n_samples_ == 4 and m.outliers_.size == 4
    assert m.score([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)


@pytest.mark.parametrize("x, y, match", [
    ([1.0], [1.0], "at least 2"), ([1, 2], [1, 2, 3], "differ"), ([2, 2, 2], [1, 2, 3], "zero variance"),
    ([[1, 2], [3, 4]], [1, 2], "1-D"), ([1, np.inf], [1, 2], "finite"),
])
def test_scale_bias_rejects_bad_data(x, y, match):
    with pytest.raises(ValueError, match=match):
        ScaleBias().fit(x, y)
    with pytest.raises(ValueError, match="epsilon"):
        ScaleBias(robust=True, epsilon=0.5).fit([1, 2, 3], [1, 2, 3])


# --- cross-validation ---------------------------------------------------------------------

def _refit_fold_predictions(cv: CVResult, factory):
    pred = np.empty(len(cv.ids))
    for f in range(cv.n_folds):
        test = cv.fold == f
        pred[test] = factory().fit(cv.x[~test], cv.y[~test]).predict(cv.x[test])
    return pred


def test_cv_kfold_predictions_are_held_out():
    x, y = _line(40, noise=80.0, seed=5)
    cv = cross_validate(x, y, _ids(40), ScaleBias, folds=5, seed=1)
    assert cv.method == "k-fold" and cv.n_folds == 5
    assert sorted(np.bincount(cv.fold)) == [8, 8, 8, 8, 8]
    # each network's prediction is exactly the one of a model fitted without its fold ...
    assert np.allclose(cv.heldout_pred, _refit_fold_predictions(cv, ScaleBias), rtol=1e-12, atol=0)
    # ... which is not what the model fitted on all data predicts for it
    insample = cv.model.predict(x)
    assert np.max(np.abs(cv.heldout_pred - insample)) > 1.0
    assert cv.heldout_after["rmse"] > cv.insample_after["rmse"]
    assert cv.before["mape"] > 10 * cv.heldout_after["mape"]  # accumulated vs calibrated


def test_cv_leave_one_out_for_small_samples_and_high_leverage_point():
    # a high-leverage network off the line: in-sample the fit bends towards it, held out it cannot
    x = np.array([1000.0, 1200.0, 1400.0, 1600.0, 1800.0, 6000.0])
    y = 1.0 * x + 100.0
    y[-1] = 9000.0
    ids = _ids(6)
    cv = cross_validate(x, y, ids, ScaleBias, folds=5)
    assert cv.method == "leave-one-out" and cv.n_folds == 6 and list(cv.fold) == list(range(6))
    for i in range(6):
        keep = np.arange(6) != i
        expected = ScaleBias().fit(x[keep], y[keep]).predict(x[i:i + 1])[0]
        assert cv.heldout_pred[i] == pytest.approx(expected, rel=1e-12)
    ape_in = abs(cv.model.predict(x[-1:])[0] - y[-1]) / y[-1]
    ape_out = abs(cv.heldout_pred[-1] - y[-1]) / y[-1]
    assert ape_out > 0.2 > ape_in + 0.1
    assert cv.heldout_after["mape"] > 1.5 * cv.insample_after["mape"]


def test_cv_is_independent_of_input_order():
    x, y = _line(30, noise=50.0, seed=2)
    ids = _ids(30)
    a = cross_validate(x, y, ids, ScaleBias, folds=5, seed=7)
    perm = np.random.default_rng(9).permutation(30)
    b = cross_validate(x[perm], y[perm], [ids[i] for i in perm], ScaleBias, folds=5, seed=7)
    pa = dict(zip(a.ids, a.heldout_pred))
    pb = dict(zip(b.ids, b.heldout_pred))
    assert pa.keys() == pb.keys()
    assert all(pa[k] == pytest.approx(pb[k], rel=1e-12) for k in pa)
    assert a.model.scale_ == pytest.approx(b.model.scale_, rel=1e-12)
    c = cross_validate(x, y, ids, ScaleBias, folds=5, seed=8)
    assert not np.array_equal(a.fold, c.fold)  # the seed does change the folds


@pytest.mark.parametrize("x, y, ids, match", [
    ([1.0, 2.0], [1.0, 2.0], _ids(2), "only 2 networks"),
    ([5.0, 5.0, 5.0, 5.0], [1.0, 2.0, 3.0, 4.0], _ids(4), "same accumulated latency"),
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], ["a", "b", "a"], "duplicate network ids"),
    ([1.0, 2.0, 3.0], [1.0, 2.0], _ids(3), "each network needs all three"),
    ([1.0, 2.0, 3.0], [1.0, -2.0, 3.0], _ids(3), "must be positive"),
    ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], _ids(3), "non-finite"),
    ([1.0, 1.0, 2.0], [1.0, 2.0, 3.0], _ids(3), "cannot fit without fold"),
])
def test_cv_fit_errors_name_the_runtime(x, y, ids, match):
    with pytest.raises(FitError, match=match) as err:
        cross_validate(x, y, ids, ScaleBias, name="GPU_FP16")
    msg = str(err.value)
    assert msg.startswith("GPU_FP16: ") and "\n" not in msg


# --- fit_runtimes -------------------------------------------------------------------------

def test_fit_runtimes_report():
    x, y = _line(50, scale=1.1, bias=400.0, noise=30.0, seed=4)
    x2, y2 = _line(8, scale=0.6, bias=90.0, noise=5.0, seed=6)
    pairs = {"CPU": (_ids(50), x, y), "DSP": (_ids(8), x2, y2)}
    rep = fit_runtimes(pairs, folds=5, seed=0)
    assert list(rep.runtimes) == ["CPU", "DSP"]
    cpu, dsp = rep.runtimes["CPU"], rep.runtimes["DSP"]
    final = ScaleBias().fit(x, y)
    assert cpu.scale == final.scale_ and cpu.bias == final.bias_
    assert cpu.n == 50 and cpu.cv_method == "k-fold" and dsp.cv_method == "leave-one-out"
    assert set(cpu.heldout_pred) == set(_ids(50))
    cv = cross_validate(x, y, _ids(50), ScaleBias, folds=5, seed=0)
    assert [cpu.heldout_pred[i] for i in cv.ids] == list(cv.heldout_pred)
    assert cpu.heldout_after == cv.heldout_after and cpu.insample_after == cv.insample_after
    assert cpu.heldout_before == regression_metrics(y, x)
    d = rep.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert "in-sample" in d["runtimes"]["CPU"]["insample"]["note"]
    assert d["runtimes"]["CPU"]["networks"][0] == {"id": "arch-0000", "accum_us": x[0], "measured_us": y[0],
                                                   "heldout_pred_us": cpu.heldout_pred["arch-0000"],
                                                   "fold": cpu.fold[0]}
    assert FitReport.from_dict(json.loads(text)).to_dict() == d


def test_fit_runtimes_nan_metrics_serialise_as_null():
    rep = fit_runtimes({"CPU": (_ids(3), [1.0, 2.0, 3.0], [5.0, 5.0, 5.0])})  # constant y: r2 is NaN
    assert math.isnan(rep.runtimes["CPU"].heldout_after["r2"])
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["runtimes"]["CPU"]["heldout"]["after"]["r2"] is None
    assert math.isnan(FitReport.from_dict(d).runtimes["CPU"].heldout_after["r2"])


def test_fit_runtimes_errors():
    with pytest.raises(FitError, match="no runtime"):
        fit_runtimes({})
    with pytest.raises(FitError, match="^DSP: only 2 networks"):
        fit_runtimes({"CPU": (_ids(3), [1, 2, 3], [2, 3, 4]), "DSP": (_ids(2), [1, 2], [2, 3])})
    with pytest.raises(FitError, match="^CPU: all 3 networks have the same accumulated latency"):
        fit_runtimes({"CPU": (_ids(3), [7, 7, 7], [2, 3, 4])})


def test_robust_fit_runtimes_flags_downweighted():
    x = np.linspace(1000.0, 5000.0, 30)
    y = 1.2 * x + 300.0
    y[4] *= 2.5
    rep = fit_runtimes({"CPU": (_ids(30), x, y)}, robust=True)
    r = rep.runtimes["CPU"]
    assert r.scale == pytest.approx(1.2, abs=1e-3) and "arch-0004" in r.downweighted
    assert rep.to_dict()["model"]["robust"] is True


# --- per-op-type model --------------------------------------------------------------------

def _per_op_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    per_net = [{"conv": float(rng.uniform(500, 3000)), "bn": float(rng.uniform(100, 1500)),
                "relu6": float(rng.uniform(50, 400))} for _ in range(n)]
    names, X = op_feature_matrix(per_net)
    coef = {"bn": 0.1, "conv": 1.4, "relu6": 0.3}  # BN folded away, ReLU6 mostly fused
    y = X @ np.array([coef[t] for t in names]) + 200.0 + rng.normal(0, 5.0, n)
    return names, X, y


def test_op_feature_matrix():
    names, X = op_feature_matrix([{"conv": 1.0}, {"bn": 2.0, "conv": 3.0}])
    assert names == ["bn", "conv"] and X.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    names, X = op_feature_matrix([], op_types=["a"])
    assert X.shape == (0, 1)


def test_per_op_scale_recovers_non_negative_coefficients():
    names, X, y = _per_op_data()
    m = PerOpScale().fit(X, y)
    assert names == ["bn", "conv", "relu6"]
    assert np.all(m.coef_ >= 0)
    assert m.coef_ == pytest.approx([0.1, 1.4, 0.3], abs=0.02)
    assert m.bias_ == pytest.approx(200.0, abs=20.0)
    with pytest.raises(ValueError, match="op types"):
        m.predict(X[:, :2])


def test_fit_runtimes_compares_per_op_model_on_the_same_folds():
    names, X, y = _per_op_data(seed=1)
    ids = _ids(60)
    rep = fit_runtimes({"CPU": (ids, X.sum(axis=1), y)}, op_features={"CPU": (names, X)})
    r = rep.runtimes["CPU"]
    assert r.per_op["better_than_scale_bias"] is True
    assert r.per_op["heldout_after"]["mape"] < r.heldout_after["mape"]
    assert r.per_op["op_types"] == names
    json.dumps(rep.to_dict(), allow_nan=False)
    with pytest.raises(FitError, match="per-op features"):
        fit_runtimes({"CPU": (ids, X.sum(axis=1), y)}, op_features={"CPU": (names, X[:10])})


def test_importing_fit_stays_cheap():
    code = ("import sys, profiler.fit.models, profiler.fit.report, profiler.fit.codegen, profiler.fit.metrics;"
            "print(sorted(m for m in ('sklearn', 'scipy', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
