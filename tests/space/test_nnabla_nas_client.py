"""Against the real client: nnabla-nas 0.15.0 (installed by tools/bootstrap-venv.sh).

(a) nnabla-nas's own active-leaf UIDs at batch 1, over all candidates, equal the leaf modules
    ``profiler generate --granularity leaf`` writes, for the three mobilenet configs;
(b) for 200 sampled architectures per config the generated nnabla_nas_estimator's value
    (read from the SearchNet's mixed ops) equals the UID-based estimate of the same choices;
(c) the ProxylessNAS searcher's reward ``min(1, bound/value)**weight`` computes from it.
SearchNets are built once per config (module-scoped).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from profiler.fit.calibration import Calibration
from profiler.fit.codegen import write_estimator, write_nnabla_nas_adapter
from profiler.pipeline.fit import describe_space
from profiler.models.manifest import read_manifest
from profiler.space import arch as A
from profiler.space import modules as M
from profiler.space.searchspace import load_space

DATA = Path(__file__).parent / "data"
CONFIGS = ("mobilenet_cifar10_search.json", "mobilenet_imagenet_search.json",
           "mobilenet_imagenet_search_songhan.json")
OFA_NETWORKS = "nnabla_nas.contrib.classification.ofa.networks"


@pytest.fixture(scope="module")
def nnas():
    # The published nnabla-nas 0.15.0 wheel lacks nnabla_nas/contrib/classification/ofa/networks,
    # which nnabla_nas/contrib/__init__.py imports; an empty stand-in lets the mobilenet space
    # import (none of nnabla-nas's code is vendored).
    if OFA_NETWORKS not in sys.modules:
        stub = types.ModuleType(OFA_NETWORKS)
        stub.ofa_mbv3 = stub.ofa_xception = stub.ofa_resnet50 = None
        sys.modules[OFA_NETWORKS] = stub
    from nnabla_nas import module as Mo
    from nnabla_nas.contrib.classification.mobilenet import SearchNet
    from nnabla_nas.utils.estimator.latency import LatencyEstimator
    return types.SimpleNamespace(Mo=Mo, SearchNet=SearchNet, LatencyEstimator=LatencyEstimator)


def _kwargs(doc, mode):
    net = {k: v for k, v in doc["network"].items() if k != "search_space"}
    net["mode"] = mode
    return net


def _uid(module, batch=1):
    """nnabla-nas's ``str(module) + str(input_shapes)`` as the original profiler wrote it."""
    shapes = [(batch,) + tuple(s[1:]) for s in module.input_shapes]
    return (str(module) + str(shapes)).replace(" ", "").replace("(", "[").replace(")", "]")


def _active_leaves(net, Mo):
    """What nnabla-nas's Estimator.get_estimation sums over (Identity/Dropout left out)."""
    return [m for _, m in net.get_modules()
            if len(m.modules) == 0 and m.need_grad and len(m.input_shapes) > 0
            and not isinstance(m, (Mo.Identity, Mo.Dropout))]


@pytest.fixture(scope="module")
def nets(nnas):
    import nnabla as nn
    out = {}
    for name in CONFIGS:
        doc = json.loads((DATA / name).read_text())
        full = nnas.SearchNet(**_kwargs(doc, "full")).apply(training=False)
        full(nn.Variable([1] + doc["input_shape"]))
        sample = nnas.SearchNet(**_kwargs(doc, "sample")).apply(training=False)
        out[name] = types.SimpleNamespace(doc=doc, full=full, sample=sample,
                                          space=load_space(DATA / name))
    return out


def _value(uid):
    return 1.0 + int(hashlib.sha256(uid.encode()).hexdigest()[:6], 16) % 5000 / 10.0


def _load(path):
    spec = importlib.util.spec_from_file_location(f"_est_{path.parent.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def estimators(nets, tmp_path_factory):
    """Per config and granularity: a generated estimator.py (synthetic look-ups, scale 1.1,
    bias 40 us) and the nnabla_nas_estimator.py written beside it."""
    out = {}
    for name, n in nets.items():
        for g in M.GRANULARITIES:
            d = tmp_path_factory.mktemp(f"{name[:-5]}-{g}")
            uids = [m.uid for m in A.candidate_modules(n.space, g)]
            cal = Calibration("scale-bias", 40.0, {u: 1.1 * _value(u) for u in uids},
                              {"scale": 1.1, "bias": 40.0})
            est = write_estimator(d / "estimator.py", {"ORT_CPU": cal}, "Forward Propagate",
                                  "Median_Time", space=describe_space(n.space, g))
            adapter = write_nnabla_nas_adapter(est)
            out[name, g] = types.SimpleNamespace(est=_load(est), adapter=_load(adapter))
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_nnabla_nas_leaf_uids_equal_ours(name, nets, nnas, cifar_leaves):
    n = nets[name]
    theirs = {_uid(m) for m in _active_leaves(n.full, nnas.Mo)}
    ours = {m.uid for m in A.candidate_modules(n.space, "leaf")}   # what generate writes
    assert theirs == ours
    assert len(theirs) == {"mobilenet_cifar10_search.json": 126}.get(name, len(theirs))
    if name == "mobilenet_cifar10_search.json":
        # the same network as search_spaces/mobilenet_v2_cifar10.json: the real generate output
        assert {e["uid"] for e in read_manifest(cifar_leaves)["entries"]} == theirs
        pads = Counter(u.split(",pad=")[1].split(",dilation")[0] for u in theirs
                       if u.startswith("Conv[") and "kernel=[1,1]" in u)
        assert pads == {"None": 22, "[0,0]": 13}


def _set_active(net, choices, Mo):
    ops = [m for _, m in net.get_modules() if isinstance(m, Mo.MixedOp)]
    assert len(ops) == len(choices)
    for op, c in zip(ops, choices):
        assert 0 <= c < len(op._ops)
        op.active_index = c


@pytest.mark.parametrize("name", CONFIGS)
def test_adapter_estimates_the_active_architecture(name, nets, nnas, estimators):
    n = nets[name]
    pos = A.positions(n.space)
    choice_pos = [p for p in pos if p.choice]
    rng = random.Random(15)
    for g in M.GRANULARITIES:
        e = estimators[name, g]

        def by_uids(choices, runtime, est=e.est, g=g):
            return est.estimate(M.module_uids(A.blocks_of(pos, choices), g), runtime) / 1000.0

        # the default adapter reads the estimator's own estimate_choices; the injected by_uids
        # (the UID API over the profiler's arch logic) is the independent reference
        reg = e.adapter.ProfilerLatencyEstimator(runtime="ORT_CPU", bound=2.0, weight=0.1,
                                                 estimate_choices=by_uids)
        assert isinstance(reg, nnas.LatencyEstimator)
        default = e.adapter.ProfilerLatencyEstimator(runtime="ORT_CPU", bound=2.0, weight=0.1)
        for _ in range(200):
            choices = [rng.randrange(p.n_choices) for p in choice_pos]
            _set_active(n.sample, choices, nnas.Mo)
            value = reg.get_estimation(n.sample)
            assert value == pytest.approx(by_uids(choices, "ORT_CPU"), rel=1e-12)
            assert default.get_estimation(n.sample) == pytest.approx(value, rel=1e-9)
            factor = min(1.0, reg._bound / value) ** reg._weight          # (c) the searcher's reward
            assert 0.0 < factor <= 1.0 and factor == pytest.approx(reg.reward(value))


def test_sampled_forward_at_training_batch(nets, nnas, estimators):
    """A forward in sample mode at batch 8 (as in training), each mixed op forced through its
    architecture parameter: the adapter's ms equals the estimator over nnabla-nas's own
    active-leaf UIDs at batch 1."""
    import nnabla as nn
    name = "mobilenet_cifar10_search.json"
    n = nets[name]
    e = estimators[name, "leaf"]
    reg = e.adapter.ProfilerLatencyEstimator(runtime="ORT_CPU", bound=2.0, weight=0.1)
    ops = [m for _, m in n.sample.get_modules() if isinstance(m, nnas.Mo.MixedOp)]
    rng = random.Random(3)
    for _ in range(3):
        choices = [rng.randrange(len(op._ops)) for op in ops]
        for op, c in zip(ops, choices):
            d = np.full(op._alpha.shape, -1e4, dtype=np.float32)
            d[c] = 0.0
            op._alpha.d = d
        n.sample(nn.Variable([8] + n.doc["input_shape"]))
        assert [op.active_index for op in ops] == choices
        leaves = [_uid(m) for m in _active_leaves(n.sample, nnas.Mo)
                  if not hasattr(m, "is_active") or m.is_active]
        assert reg.get_estimation(n.sample) == pytest.approx(
            e.est.estimate(leaves, "ORT_CPU") / 1000.0, rel=1e-12)


def test_registered_name_resolves_like_a_config(nets, nnas, estimators):
    e = estimators["mobilenet_cifar10_search.json", "leaf"]
    cls = e.adapter.register()
    import nnabla_nas.utils.estimator as EST
    # nnabla_nas/utils/cli/args.py: regularizer[k] = EST.__dict__[k](**params)
    reg = EST.__dict__["ProfilerLatencyEstimator"](**{"weight": 0.1, "bound": 2.0, "n_run": 100,
                                                      "estimate_choices": lambda c, rt: 3.0})
    assert type(reg) is cls and isinstance(reg, nnas.LatencyEstimator)
    assert reg._bound == 2.0 and reg._weight == 0.1 and reg.get_estimation(nets["mobilenet_cifar10_search.json"].sample) == 3.0
    with pytest.raises(TypeError, match="unknown argument"):
        cls(bogus=1, estimate_choices=lambda c, rt: 1.0)
    assert cls(runtime="ORT_CPU").get_estimation(nets["mobilenet_cifar10_search.json"].sample) > 0
