"""Calibrating accumulated module latencies to measured whole-network latencies.

For every sampled network, ``x`` is its *accumulated* latency (the sum of its modules'
table look-ups) and ``y`` its *measured* latency, both in microseconds. Per runtime we fit

    y ~= scale * x + bias

(:class:`ScaleBias`; ordinary least squares, or Huber when ``robust``). The bias restores
per-inference overhead that per-layer times exclude; the scale absorbs fusion and
layout effects of the isolated measurement.

Unlike the original profiler (in-sample errors only, pairs matched by file order):

* every pair carries its architecture id; ids must be unique, and the cross-validation
  folds are assigned from the sorted ids, so the result does not depend on input order;
* :func:`cross_validate` predicts every network with a model that never saw it (k-fold,
  or leave-one-out for small samples) and reports those *held-out* metrics; in-sample
  metrics are kept only for comparison and are labelled as such.

:class:`PerOpScale` is an optional richer model (one non-negative scale per op type plus
a bias) that :func:`fit_runtimes` evaluates with the same folds when per-op features are
given; it is advisory: the generated estimator uses scale and bias.

scikit-learn is imported lazily inside the functions that need it.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from profiler.errors import FitError
from profiler.fit.calibration import Calibration
from profiler.fit.metrics import json_safe_metrics, metrics_from_json, regression_metrics

Pairs = Mapping[str, Tuple[Sequence[str], Sequence[float], Sequence[float]]]
OpFeatures = Mapping[str, Tuple[Sequence[str], Any]]

INSAMPLE_NOTE = ("in-sample: the final model evaluated on the networks it was fitted on; "
                 "optimistic, kept only for comparison with the original profiler")
HELDOUT_NOTE = ("held-out: every network predicted by a model fitted without it "
                "(k-fold, or leave-one-out when n < 2 * folds); 'before' uses the "
                "accumulated latency itself as the prediction")


# --- estimators ---------------------------------------------------------------------------

class _Params:
    """``get_params`` / ``set_params`` / ``repr`` from the ``__init__`` signature (sklearn style)."""

    @classmethod
    def _param_names(cls) -> List[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "_Params":
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__} (valid: {', '.join(valid)})")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_is_fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            from sklearn.exceptions import NotFittedError
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")


def _vector(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


class ScaleBias(_Params):
    """``y = scale_ * x + bias_`` for 1-D ``x`` (accumulated us) and ``y`` (measured us).

    Parameters
    ----------
    robust : bool
        Fit with :class:`sklearn.linear_model.HuberRegressor` (unpenalised, on
        standardised data so the result does not depend on the unit) instead of ordinary
        least squares (:class:`sklearn.linear_model.LinearRegression`).
    epsilon : float
        Huber threshold (>= 1; sklearn's default 1.35), used only when ``robust``.

    Attributes
    ----------
    scale_ : float
    bias_ : float
        In the unit of ``y`` (us).
    n_samples_ : int
    n_features_in_ : int
        Always 1.
    outliers_ : numpy.ndarray of bool
        Samples the Huber fit treated as outliers (all False for least squares).
    """

    def __init__(self, robust: bool = False, epsilon: float = 1.35) -> None:
        self.robust = robust
        self.epsilon = epsilon

    def fit(self, x: Any, y: Any) -> "ScaleBias":
        x = _vector(x, "x")
        y = _vector(y, "y")
        if x.shape != y.shape:
            raise ValueError(f"x and y differ in length ({x.size} != {y.size})")
        if x.size < 2:
            raise ValueError(f"need at least 2 samples to fit a scale and a bias, got {x.size}")
        if np.ptp(x) == 0:
            raise ValueError("x has zero variance; the scale is undetermined")
        if self.robust:
            if not (isinstance(self.epsilon, (int, float)) and self.epsilon >= 1.0):
                raise ValueError(f"epsilon must be a number >= 1, got {self.epsilon!r}")
            from sklearn.linear_model import HuberRegressor
            mx, sx = float(x.mean()), float(x.std())
            my, sy = float(y.mean()), float(y.std()) or 1.0
            huber = HuberRegressor(epsilon=float(self.epsilon), alpha=0.0, max_iter=1000)
            huber.fit(((x - mx) / sx)[:, None], (y - my) / sy)
            scale = sy * float(huber.coef_[0]) / sx
            bias = my + sy * float(huber.intercept_) - scale * mx
            outliers = np.asarray(huber.outliers_, dtype=bool)
        else:
            from sklearn.linear_model import LinearRegression
            ols = LinearRegression().fit(x[:, None], y)
            scale, bias = float(ols.coef_[0]), float(ols.intercept_)
            outliers = np.zeros(x.size, dtype=bool)
        self.scale_ = scale
        self.bias_ = bias
        self.n_samples_ = int(x.size)
        self.n_features_in_ = 1
        self.outliers_ = outliers
        return self

    def predict(self, x: Any) -> np.ndarray:
        self._check_is_fitted("scale_")
        return self.scale_ * _vector(x, "x") + self.bias_

    def score(self, x: Any, y: Any) -> float:
        """R^2 of ``predict(x)`` against ``y`` (sklearn's ``RegressorMixin.score``)."""
        y = _vector(y, "y")
        p = self.predict(x)
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot if ss_tot > 0 else math.nan

    def calibration(self, lat_by_uid: Mapping[str, float], op_type_by_uid: Mapping[str, str]) -> Calibration:
        """``const = bias_``, ``contrib[uid] = scale_ * lat`` (the estimate is floored at 0 us)."""
        self._check_is_fitted("scale_")
        return Calibration("scale-bias", float(self.bias_),
                           {u: float(self.scale_ * v) for u, v in lat_by_uid.items()},
                           {"scale": float(self.scale_), "bias": float(self.bias_), "robust": bool(self.robust)})


def _xy(X: np.ndarray, y: Any) -> Tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a multi-feature fit, checked: one target per row, at least 2 samples."""
    y = _vector(y, "y")
    if X.shape[0] != y.size:
        raise ValueError(f"X and y differ in length ({X.shape[0]} != {y.size})")
    if y.size < 2:
        raise ValueError(f"need at least 2 samples, got {y.size}")
    return X, y


class PerOpScale(_Params):
    """``y = sum_t coef_[t] * X[:, t] + bias_`` with ``coef_ >= 0`` (one scale per op type).

    ``X`` is ``n_networks x n_op_types``: each network's accumulated latency split by op
    type (see :func:`op_feature_matrix`). Fitted with ``LinearRegression(positive=True)``
    (non-negative least squares; the bias is unconstrained).

    Attributes
    ----------
    coef_ : numpy.ndarray
    bias_ : float
    n_features_in_ : int
    """

    def __init__(self) -> None:
        pass

    @staticmethod
    def _matrix(X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (networks x op types), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X must be finite")
        return X

    def fit(self, X: Any, y: Any) -> "PerOpScale":
        X, y = _xy(self._matrix(X), y)
        from sklearn.linear_model import LinearRegression
        model = LinearRegression(positive=True).fit(X, y)
        self.coef_ = np.asarray(model.coef_, dtype=float)
        self.bias_ = float(model.intercept_)
        self.n_features_in_ = int(X.shape[1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        self._check_is_fitted("coef_")
        X = self._matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} op types, the model was fitted with {self.n_features_in_}")
        return X @ self.coef_ + self.bias_


def op_type(uid: str) -> str:
    """The op type of a ModuleUID: its name before the first ``[`` (``Conv``, ``InvertedResidual``)."""
    return uid.split("[", 1)[0]


class OverheadModel(_Params):
    """``y = Σ_t scale_[t] * lat_t + overhead_ * n_modules + bias_``, every coefficient >= 0.

    ``X`` is ``n_networks x (k + 1)``: the network's summed table latency per op type
    (``k = n_op_types`` columns, in the order of ``op_types``), then its number of modules.
    With ``k = 1`` this is the ``module-overhead`` model (one scale); with one column per op
    type the ``per-op`` model. Fitted by non-negative least squares
    (:func:`scipy.optimize.nnls`, on columns scaled to unit norm) with a column of ones
    for the bias: a scale, a per-module overhead (what a module costs inside a network
    beyond its isolated warm time: cold caches, layout changes) and a per-network constant
    (input/output copies of the measured call) are all non-negative physically.

    Attributes
    ----------
    scale_ : numpy.ndarray (k,)
    overhead_ : float
        us per module.
    bias_ : float
        us per network.
    n_features_in_ : int
    """

    def __init__(self, op_types: Sequence[str] = ("*",)) -> None:
        self.op_types = op_types

    @property
    def name(self) -> str:
        return "module-overhead" if list(self.op_types) == ["*"] else "per-op"

    def _matrix(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        k = len(self.op_types)
        if X.ndim != 2 or X.shape[1] != k + 1:
            raise ValueError(f"X must be n x {k + 1} (latency per op type, then module count), got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X must be finite")
        return X

    def fit(self, X: Any, y: Any) -> "OverheadModel":
        X, y = _xy(self._matrix(X), y)
        from scipy.optimize import nnls
        A = np.hstack([X, np.ones((y.size, 1))])
        norm = np.linalg.norm(A, axis=0)
        norm[norm == 0] = 1.0
        coef, _ = nnls(A / norm, y, maxiter=50 * A.shape[1])
        coef = coef / norm
        k = len(self.op_types)
        self.scale_ = coef[:k].astype(float)
        self.overhead_ = float(coef[k])
        self.bias_ = float(coef[k + 1])
        self.n_features_in_ = k + 1
        return self

    def predict(self, X: Any) -> np.ndarray:
        self._check_is_fitted("scale_")
        X = self._matrix(X)
        k = len(self.op_types)
        return X[:, :k] @ self.scale_ + self.overhead_ * X[:, k] + self.bias_

    def _scale_of(self, t: str) -> float:
        names = list(self.op_types)
        if names == ["*"]:
            return float(self.scale_[0])
        if t not in names:
            # an op type no fitted network contains: no evidence for its own scale, use the mean
            return float(np.mean(self.scale_))
        return float(self.scale_[names.index(t)])

    def calibration(self, lat_by_uid: Mapping[str, float], op_type_by_uid: Mapping[str, str]) -> Calibration:
        """``const = bias_``, ``contrib[uid] = scale_[type] * lat + overhead_``."""
        self._check_is_fitted("scale_")
        contrib = {u: self._scale_of(op_type_by_uid.get(u, op_type(u))) * float(v) + self.overhead_
                   for u, v in lat_by_uid.items()}
        return Calibration(self.name, self.bias_, contrib,
                           {"op_types": list(self.op_types), "scale": [float(c) for c in self.scale_],
                            "overhead_us": self.overhead_, "bias_us": self.bias_})


class Offset:
    """A model fitted to ``y - const`` and predicting ``model + const``: the table's measured
    per-network constant (``@network`` row) added once per network, so the inner model's bias
    only absorbs what is left. Attributes of the inner model are readable on the wrapper."""

    def __init__(self, model: Any, const: float) -> None:
        self.model = model
        self.const = float(const)

    def __getattr__(self, name: str) -> Any:
        if name in ("model", "const"):
            raise AttributeError(name)
        return getattr(self.model, name)

    def fit(self, X: Any, y: Any) -> "Offset":
        self.model.fit(X, np.asarray(y, dtype=float) - self.const)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(X) + self.const

    def calibration(self, lat_by_uid: Mapping[str, float], op_type_by_uid: Mapping[str, str]) -> Calibration:
        """The inner model's calibration with ``const`` added to its constant (for scale-bias, its
        ``bias`` parameter becomes relative to the modules' sum alone, as the estimator expects)."""
        cal = self.model.calibration(lat_by_uid, op_type_by_uid)
        params = dict(cal.params, network_const_us=self.const)
        if "bias" in params:
            params["bias_after_const_us"] = params["bias"]
            params["bias"] = float(params["bias"]) + self.const
        return Calibration(cal.model, cal.const + self.const, cal.contrib, params)


def overhead_features(networks: Sequence[Sequence[str]], lat_by_uid: Mapping[str, float],
                      op_types: Sequence[str], op_type_by_uid: Optional[Mapping[str, str]] = None) -> np.ndarray:
    """``n x (k + 1)`` features of :class:`OverheadModel`: latency per op type, module count.

    ``op_types == ["*"]`` sums every module into one column.
    """
    names = list(op_types)
    col = {t: i for i, t in enumerate(names)}
    X = np.zeros((len(networks), len(names) + 1))
    for r, uids in enumerate(networks):
        for u in uids:
            t = "*" if names == ["*"] else (op_type_by_uid or {}).get(u, op_type(u))
            X[r, col[t]] += float(lat_by_uid[u])
        X[r, -1] = len(uids)
    return X


def op_feature_matrix(per_network: Sequence[Mapping[str, float]],
                      op_types: Optional[Sequence[str]] = None) -> Tuple[List[str], np.ndarray]:
    """``[{op_type: us}, ...]`` (one dict per network) -> (op type names, n x k matrix).

    Op types absent from a network count as 0. ``op_types`` fixes the column order
    (default: sorted union).
    """
    names = list(op_types) if op_types is not None else sorted({t for d in per_network for t in d})
    X = np.array([[float(d.get(t, 0.0)) for t in names] for d in per_network], dtype=float)
    return names, X.reshape(len(per_network), len(names))


# --- cross-validation ---------------------------------------------------------------------

@dataclass
class CVResult:
    """Held-out predictions and metrics of one model on one runtime's networks.

    ``heldout_pred[i]`` was predicted by a model fitted on the other folds only;
    ``fold[i]`` is the fold network ``i`` was held out in. ``model`` is refit on all data.
    """

    ids: List[str]
    x: np.ndarray
    y: np.ndarray
    heldout_pred: np.ndarray
    fold: np.ndarray
    n_folds: int
    method: str  # "k-fold" or "leave-one-out"
    before: Dict[str, Any]
    heldout_after: Dict[str, Any]
    insample_after: Dict[str, Any]
    model: Any

    @property
    def accum(self) -> np.ndarray:
        """The uncalibrated prediction: ``x`` itself, or its row sums for per-op features."""
        return self.x if self.x.ndim == 1 else self.x.sum(axis=1)


def _where(name: Optional[str]) -> str:
    return f"{name}: " if name else ""


def _fold_assignment(ids: Sequence[str], k: int, seed: int) -> np.ndarray:
    """Balanced folds from the *sorted* ids and ``seed``, so input order does not matter."""
    n = len(ids)
    order = sorted(range(n), key=lambda i: ids[i])
    perm = np.random.default_rng(seed).permutation(n)
    fold = np.empty(n, dtype=int)
    for j, p in enumerate(perm):
        fold[order[p]] = j % k
    return fold


def _check_inputs(x: Any, y: Any, ids: Sequence[str], name: Optional[str],
                  accum: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    w = _where(name)
    ids = [str(i) for i in ids]
    try:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
    except (TypeError, ValueError) as e:
        raise FitError(f"{w}latencies must be numbers ({e})") from None
    if x.ndim not in (1, 2) or y.ndim != 1:
        raise FitError(f"{w}expected one accumulated and one measured latency per network")
    if not (len(ids) == x.shape[0] == y.size):
        raise FitError(f"{w}{len(ids)} ids, {x.shape[0]} accumulated and {y.size} measured latencies; "
                       f"each network needs all three")
    seen, dup = set(), []
    for i in ids:
        if i in seen:
            dup.append(i)
        seen.add(i)
    if dup:
        raise FitError(f"{w}duplicate network ids ({', '.join(sorted(set(dup))[:5])}); pairs must be unique by id")
    if len(ids) < 3:
        raise FitError(f"{w}only {len(ids)} networks with both an accumulated and a measured latency; "
                       f"need at least 3 to fit and cross-validate (sample and measure more)")
    bad = [ids[i] for i in range(len(ids)) if not (np.all(np.isfinite(x[i])) and math.isfinite(y[i]))]
    if bad:
        raise FitError(f"{w}non-finite latency for {', '.join(bad[:5])}")
    bad = [ids[i] for i in range(len(ids)) if y[i] <= 0]
    if bad:
        raise FitError(f"{w}measured latency must be positive ({', '.join(bad[:5])})")
    if accum is None:
        accum = x if x.ndim == 1 else x.sum(axis=1)
    if np.ptp(accum) == 0:
        raise FitError(f"{w}all {len(ids)} networks have the same accumulated latency "
                       f"({accum[0]:g} us), so the scale cannot be fitted; sample more varied networks")
    return x, y, ids


def cross_validate(x: Any, y: Any, ids: Sequence[str], model_factory: Callable[[], Any],
                   folds: int = 5, seed: int = 0, name: Optional[str] = None,
                   accum: Optional[Any] = None) -> CVResult:
    """k-fold held-out predictions of ``model_factory()`` models, plus the model refit on all.

    ``x`` is 1-D (accumulated us) or 2-D (networks x features, e.g. per-op sums); ``y``
    the measured us; ``ids`` the architecture ids (unique). With fewer than
    ``2 * folds`` networks every network is its own fold (leave-one-out). ``name`` (the
    runtime) prefixes error messages.

    Raises :class:`~profiler.errors.FitError` for fewer than 3 networks, zero variance of
    the accumulated latency, duplicate ids, non-finite or non-positive measurements, or
    a training fold the model cannot be fitted on.
    """
    if accum is not None:
        accum = np.asarray(accum, dtype=float)
    x, y, ids = _check_inputs(x, y, ids, name, accum)
    if not (isinstance(folds, int) and folds >= 2):
        raise FitError(f"{_where(name)}folds must be an integer >= 2, got {folds!r}")
    n = len(ids)
    if n < 2 * folds:
        k, method = n, "leave-one-out"
        fold = np.arange(n)
    else:
        k, method = folds, "k-fold"
        fold = _fold_assignment(ids, k, seed)
    pred = np.empty(n, dtype=float)
    for f in range(k):
        test = fold == f
        train = ~test
        try:
            model = model_factory().fit(x[train], y[train])
        except ValueError as e:
            raise FitError(f"{_where(name)}cannot fit without fold {f + 1}/{k} "
                           f"({', '.join(np.asarray(ids)[test][:3])}): {e}; sample more varied networks") from None
        pred[test] = model.predict(x[test])
    final = model_factory().fit(x, y)
    if accum is None:
        accum = x if x.ndim == 1 else x.sum(axis=1)
    return CVResult(ids=ids, x=x, y=y, heldout_pred=pred, fold=fold, n_folds=k, method=method,
                    before=regression_metrics(y, accum),
                    heldout_after=regression_metrics(y, pred),
                    insample_after=regression_metrics(y, final.predict(x)),
                    model=final)


# --- per-runtime fits ---------------------------------------------------------------------

@dataclass
class RuntimeFit:
    """The scale-and-bias fit of one runtime (see :func:`fit_runtimes`).

    ``heldout_before`` uses the accumulated latency itself as the prediction (no fitting,
    so it is the same on any split); ``heldout_after`` the held-out calibrated predictions;
    ``insample_after`` the final model on its own training data (optimistic).
    ``downweighted``: ids the final Huber fit treated in its linear (outlier) region;
    empty for least squares.
    """

    runtime: str
    n: int
    scale: float
    bias: float
    heldout_before: Dict[str, Any]
    heldout_after: Dict[str, Any]
    insample_after: Dict[str, Any]
    ids: List[str]
    accum: List[float]
    measured: List[float]
    heldout: List[float]
    fold: List[int]
    cv_method: str
    n_folds: int
    downweighted: List[str] = field(default_factory=list)  # Huber's outliers_ (robust fits only)
    per_op: Optional[Dict[str, Any]] = None
    model: str = "scale-bias"                      # the chosen calibration model
    candidates: Dict[str, Any] = field(default_factory=dict)  # name -> {params, heldout_after}
    edges: Dict[str, Any] = field(default_factory=dict)       # metrics.edge_metrics of the held-out
    calibration: Optional[Calibration] = None      # the chosen model's, when module look-ups were given
    network_const: float = 0.0                     # the table's per-network constant (µs), in ``accum``

    @property
    def heldout_pred(self) -> Dict[str, float]:
        """``{architecture id: held-out predicted us}``."""
        return dict(zip(self.ids, self.heldout))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "runtime": self.runtime, "n": self.n, "scale": self.scale, "bias": self.bias,
            "network_const_us": self.network_const,
            "cv": {"method": self.cv_method, "folds": self.n_folds},
            "heldout": {"before": json_safe_metrics(self.heldout_before),
                        "after": json_safe_metrics(self.heldout_after)},
            "insample": {"note": INSAMPLE_NOTE, "after": json_safe_metrics(self.insample_after)},
            "downweighted": list(self.downweighted),
            "per_op": _json_per_op(self.per_op),
            "model": self.model,
            "candidates": {k: {**v, "heldout_after": json_safe_metrics(v["heldout_after"])}
                           for k, v in self.candidates.items()},
            "edges": self.edges,
            "calibration": None if self.calibration is None else {
                "model": self.calibration.model, "const": self.calibration.const,
                "params": self.calibration.params, "contrib": self.calibration.contrib},
            "networks": [{"id": i, "accum_us": a, "measured_us": m, "heldout_pred_us": h, "fold": f}
                         for i, a, m, h, f in zip(self.ids, self.accum, self.measured, self.heldout, self.fold)],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "RuntimeFit":
        nets = d["networks"]
        per_op = d.get("per_op")
        if per_op is not None:
            per_op = {**per_op, "heldout_after": metrics_from_json(per_op["heldout_after"])}
        return cls(runtime=d["runtime"], n=int(d["n"]), scale=float(d["scale"]), bias=float(d["bias"]),
                   heldout_before=metrics_from_json(d["heldout"]["before"]),
                   heldout_after=metrics_from_json(d["heldout"]["after"]),
                   insample_after=metrics_from_json(d["insample"]["after"]),
                   ids=[e["id"] for e in nets], accum=[float(e["accum_us"]) for e in nets],
                   measured=[float(e["measured_us"]) for e in nets],
                   heldout=[float(e["heldout_pred_us"]) for e in nets], fold=[int(e["fold"]) for e in nets],
                   cv_method=d["cv"]["method"], n_folds=int(d["cv"]["folds"]),
                   downweighted=list(d.get("downweighted", [])), per_op=per_op,
                   model=d.get("model", "scale-bias"),
                   candidates={k: {**v, "heldout_after": metrics_from_json(v["heldout_after"])}
                               for k, v in d.get("candidates", {}).items()},
                   edges=d.get("edges", {}), network_const=float(d.get("network_const_us", 0.0)),
                   calibration=None if not d.get("calibration") else Calibration(
                       d["calibration"]["model"], float(d["calibration"]["const"]),
                       {k: float(v) for k, v in d["calibration"]["contrib"].items()},
                       d["calibration"].get("params", {})))


def _json_per_op(per_op: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if per_op is None:
        return None
    return {**per_op, "heldout_after": json_safe_metrics(per_op["heldout_after"])}


@dataclass
class FitReport:
    """Per-runtime fits (insertion order of the input) and how they were made."""

    runtimes: Dict[str, RuntimeFit]
    robust: bool = False
    epsilon: float = 1.35
    folds: int = 5
    seed: int = 0
    selection: str = "scale-bias"   # what was asked: auto or one model name

    @property
    def model(self) -> str:
        return "huber scale+bias" if self.robust else "least-squares scale+bias"

    def to_dict(self) -> Dict[str, Any]:
        """Strict-JSON-serialisable dict (NaN metrics become ``null``)."""
        return {
            "model": {"kind": "scale+bias", "robust": self.robust, "epsilon": self.epsilon,
                      "formula": "measured_us ~= scale * accumulated_us + bias",
                      "selection": self.selection,
                      "chosen": {rt: r.model for rt, r in self.runtimes.items()},
                      "formulas": {"scale-bias": "scale * sum(lat) + bias",
                                   "module-overhead": "scale * sum(lat) + overhead * n_modules + bias; all >= 0",
                                   "per-op": "sum_t scale_t * sum(lat of type t) + overhead * n_modules + bias; "
                                             "all >= 0"},
                      "note": "'scale'/'bias' of a runtime are always the scale-bias fit; 'model' names the "
                              "chosen one, whose held-out metrics are 'heldout.after' and whose "
                              "'calibration' the estimator embeds"},
            "cv": {"folds": self.folds, "seed": self.seed, "note": HELDOUT_NOTE},
            "runtimes": {rt: r.to_dict() for rt, r in self.runtimes.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FitReport":
        return cls(runtimes={rt: RuntimeFit.from_dict(r) for rt, r in d["runtimes"].items()},
                   robust=bool(d["model"]["robust"]), epsilon=float(d["model"]["epsilon"]),
                   folds=int(d["cv"]["folds"]), seed=int(d["cv"]["seed"]),
                   selection=d["model"].get("selection", "scale-bias"))


def _per_op_fit(rt: str, ids: List[str], y: np.ndarray, feats: Tuple[Sequence[str], Any],
                baseline: CVResult, folds: int, seed: int) -> Dict[str, Any]:
    names, X = list(feats[0]), np.asarray(feats[1], dtype=float)
    if X.ndim != 2 or X.shape != (len(ids), len(names)):
        raise FitError(f"{rt}: per-op features must be a {len(ids)} x {len(names)} matrix, got shape {X.shape}")
    cv = cross_validate(X, y, ids, PerOpScale, folds=folds, seed=seed, name=f"{rt} (per-op)")
    better = cv.heldout_after["mape"] < baseline.heldout_after["mape"]
    return {"op_types": names, "coef": [float(c) for c in cv.model.coef_], "bias": float(cv.model.bias_),
            "heldout_after": cv.heldout_after, "heldout_pred_us": [float(p) for p in cv.heldout_pred],
            "better_than_scale_bias": bool(better),
            "note": "advisory: per-op-type scales evaluated on the same folds; the estimator uses scale+bias"}


MODELS = ("scale-bias", "module-overhead", "per-op")
MODEL_CHOICES = ("auto",) + MODELS

# (module uid lists aligned with the ids, {uid: table us}, {uid: op type}) per runtime
Networks = Mapping[str, Tuple[Sequence[Sequence[str]], Mapping[str, float], Mapping[str, str]]]


def fit_runtimes(pairs: Pairs, robust: bool = False, folds: int = 5, seed: int = 0,
                 epsilon: float = 1.35, op_features: Optional[OpFeatures] = None,
                 model: str = "auto", networks: Optional[Networks] = None,
                 extremes: Optional[Mapping[str, str]] = None,
                 constants: Optional[Mapping[str, float]] = None) -> FitReport:
    """Fit and cross-validate the calibration models for each runtime of ``pairs``.

    ``pairs[runtime] = (ids, accumulated_us, measured_us)``, aligned by position within
    one runtime (each triple is one network). ``networks[runtime]`` (module uids of each
    network, the table look-ups and op types) enables the ``module-overhead`` and ``per-op``
    models (:class:`OverheadModel`) and the runtime's :class:`Calibration`. ``model`` is one of
    :data:`MODEL_CHOICES`; ``auto`` picks the lowest held-out MAPE among the models available
    (every model is cross-validated on the same folds and recorded in ``candidates``).
    ``extremes`` (``{id: name}``) names the edge networks in the edge metrics.
    ``constants[runtime]`` is the table's measured per-network constant (µs), already included
    in the accumulated latencies: every model is fitted to ``measured - constant`` on the
    modules alone and adds it back (:class:`Offset`), so its bias is only what is left.
    ``op_features[runtime] = (op_types, matrix)`` optionally adds the older advisory
    :class:`PerOpScale` comparison. Raises :class:`~profiler.errors.FitError` naming the
    runtime on bad data.
    """
    from profiler.fit.metrics import edge_metrics
    if model not in MODEL_CHOICES:
        raise FitError(f"unknown calibration model {model!r}; use one of {', '.join(MODEL_CHOICES)}")
    if model in ("module-overhead", "per-op") and networks is None:
        raise FitError(f"the {model} model needs each network's modules (networks=...)")
    if not pairs:
        raise FitError("no runtime to fit (no networks were paired with measurements)")
    out: Dict[str, RuntimeFit] = {}
    for rt, triple in pairs.items():
        try:
            ids, x, y = triple
        except (TypeError, ValueError):
            raise FitError(f"{rt}: expected (ids, accumulated, measured)") from None
        if np.ndim(x) != 1:
            raise FitError(f"{rt}: the accumulated latency must be one number per network")
        c0 = float((constants or {}).get(rt, 0.0))
        if not math.isfinite(c0) or c0 < 0:
            raise FitError(f"{rt}: the per-network constant must be a finite number >= 0, got {c0!r}")

        def offset(m: Any) -> Any:
            return Offset(m, c0) if c0 else m

        x_raw = np.asarray(x, dtype=float) if np.ndim(x) == 1 else x
        cv = cross_validate(x_raw - c0 if c0 else x_raw, y, ids,
                            lambda: offset(ScaleBias(robust=robust, epsilon=epsilon)),
                            folds=folds, seed=seed, name=rt, accum=x_raw if c0 else None)
        results: Dict[str, CVResult] = {"scale-bias": cv}
        lat = types = None
        if networks is not None and rt in networks:
            uid_lists, lat, types = networks[rt]
            if len(uid_lists) != len(cv.ids):
                raise FitError(f"{rt}: {len(uid_lists)} module lists for {len(cv.ids)} networks")
            all_types = sorted({types.get(u, op_type(u)) for uids in uid_lists for u in uids})
            for name, op_types in (("module-overhead", ["*"]), ("per-op", all_types)):
                X = overhead_features(uid_lists, lat, op_types, types)
                results[name] = cross_validate(X, y, ids, lambda t=op_types: offset(OverheadModel(t)),
                                               folds=folds, seed=seed, name=f"{rt} ({name})", accum=x_raw)
        chosen = min(results, key=lambda k: (results[k].heldout_after["mape"], MODELS.index(k))) \
            if model == "auto" else model
        best = results[chosen]
        per_op = None
        if op_features is not None and rt in op_features:
            per_op = _per_op_fit(rt, cv.ids, cv.y, op_features[rt], cv, folds, seed)
        candidates = {}
        for name, res in results.items():
            m = res.model
            params = ({"scale": float(m.scale_), "bias": float(m.bias_)} if name == "scale-bias" else
                      {"op_types": list(m.op_types), "scale": [float(c) for c in m.scale_],
                       "overhead_us": m.overhead_, "bias_us": m.bias_})
            candidates[name] = {"params": params, "heldout_after": res.heldout_after,
                                "worst_ape": float(res.heldout_after["max_ape"])}
        calib = best.model.calibration(lat, types) if lat is not None else None
        sb = cv.model
        out[rt] = RuntimeFit(
            runtime=rt, n=len(cv.ids), scale=float(sb.scale_), bias=float(sb.bias_),
            heldout_before=cv.before, heldout_after=best.heldout_after, insample_after=best.insample_after,
            ids=list(cv.ids), accum=[float(v) + c0 for v in cv.x], measured=[float(v) for v in cv.y],
            heldout=[float(v) for v in best.heldout_pred], fold=[int(f) for f in cv.fold],
            cv_method=cv.method, n_folds=cv.n_folds,
            downweighted=[i for i, o in zip(cv.ids, sb.outliers_) if o], per_op=per_op,
            model=chosen, candidates=candidates,
            edges=edge_metrics(cv.y, best.heldout_pred, cv.ids, dict(extremes or {})),
            calibration=calib, network_const=c0)
    return FitReport(runtimes=out, robust=bool(robust), epsilon=float(epsilon), folds=folds, seed=seed,
                     selection=model)
