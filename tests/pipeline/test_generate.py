"""Model generation: manifest, ONNX validity, nnabla/onnxruntime agreement, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from profiler.space import arch as A
from profiler.pipeline.generate import generate
from profiler.models.manifest import entry_file, read_manifest
from profiler.space.searchspace import load_space

from tests.conftest import CIFAR


def _kind(entry: dict) -> str:
    """One representative per distinct kind of computation."""
    attrs = entry["attrs"]
    if entry["name"] == "InvertedResidual":
        return f"IR(e1={attrs['expand_ratio'] == 1},res={attrs['residual']},s={attrs['stride'][0]})"
    if entry["name"] == "MBConv":
        return (f"MB(e1={attrs['expand_ratio'] == 1},res={attrs['residual']},s={attrs['stride'][0]},"
                f"act={attrs['act']},se={attrs['se']})")
    if entry["name"] == "ConvBNAct":
        return f"ConvBNAct(bn={attrs['bn']},act={attrs['act']},k={attrs['kernel'][0]})"
    if entry["name"] == "Conv":
        return (f"Conv(dw={attrs['group'] > 1},k={attrs['kernel'][0]},pad={attrs['pad'] is not None},"
                f"bias={attrs['with_bias']})")
    if entry["name"] == "ReLU":
        return f"ReLU(inplace={attrs['inplace']})"
    return entry["name"]


def _run_both(doc: dict, entry: dict) -> tuple:
    import onnxruntime as ort
    from profiler.models.build import _nnabla, _quiet
    _nnabla()
    from nnabla.utils.nnp_graph import NnpLoader
    rng = np.random.RandomState(0)
    xs = {f"x{i}": rng.uniform(-1, 1, shape).astype(np.float32)
          for i, shape in enumerate(entry["input_shapes"])}     # Add2 leaves have two inputs
    sess = ort.InferenceSession(str(entry_file(doc, entry, "onnx")), providers=["CPUExecutionProvider"])
    assert sorted(i.name for i in sess.get_inputs()) == sorted(xs)
    y_ort = sess.run(None, xs)[0]
    with _quiet():
        nnp = NnpLoader(str(entry_file(doc, entry, "nnp")))
        net = nnp.get_network(nnp.get_network_names()[0], batch_size=1)
    assert sorted(net.inputs) == sorted(xs)
    for name, x in xs.items():
        net.inputs[name].d = x
    y = net.outputs["y"]
    y.forward()
    return y_ort, y.d.copy()


MIN_KINDS = {"cifar_blocks": 7, "cifar_leaves": 10, "ofa_blocks": 12, "ofa_leaves": 14}


@pytest.mark.parametrize("fixture", ["cifar_blocks", "cifar_leaves", "ofa_blocks", "ofa_leaves"])
def test_onnx_and_nnabla_agree_for_every_module_type(fixture, request):
    doc = read_manifest(request.getfixturevalue(fixture))
    reps = {}
    for e in doc["entries"]:
        reps.setdefault(_kind(e), e)
    assert len(reps) >= MIN_KINDS[fixture], sorted(reps)
    if fixture == "cifar_leaves":
        assert {"Add2", "Linear", "Conv(dw=False,k=1,pad=False,bias=False)",
                "Conv(dw=False,k=1,pad=True,bias=False)"} <= set(reps)
    if fixture == "ofa_blocks":   # every MBConv variant of the OFA space and both head convs
        assert {"MB(e1=True,res=True,s=1,act=relu,se=False)", "MB(e1=False,res=False,s=2,act=relu,se=True)",
                "MB(e1=False,res=True,s=1,act=hswish,se=True)", "MB(e1=False,res=True,s=1,act=hswish,se=False)",
                "ConvBNAct(bn=False,act=hswish,k=1)", "ConvBNAct(bn=True,act=hswish,k=3)"} <= set(reps)
    if fixture == "ofa_leaves":   # SE and h-swish leaves
        assert {"Hswish", "Hsigmoid", "Mul2", "ReLU(inplace=True)", "ReLU(inplace=False)",
                "Conv(dw=False,k=1,pad=True,bias=True)", "GlobalAvgPool", "Add2"} <= set(reps)
    for kind, e in sorted(reps.items()):
        y_ort, y_nn = _run_both(doc, e)
        assert y_ort.shape == tuple(e["output_shape"]) or y_ort.size == np.prod(e["output_shape"]), kind
        scale = max(1.0, float(np.abs(y_nn).max()))
        np.testing.assert_allclose(y_ort.reshape(y_nn.shape), y_nn, rtol=1e-4, atol=1e-4 * scale,
                                   err_msg=f"{kind}: {e['uid']}")
        assert float(np.abs(y_nn).max()) > 0, f"{kind} produced all zeros"


def test_manifest_lists_every_unique_module(cifar_blocks):
    doc = read_manifest(cifar_blocks)
    expected = [m.uid for m in A.candidate_modules(load_space(CIFAR), "block")]
    assert [e["uid"] for e in doc["entries"]] == expected
    assert doc["kind"] == "modules" and doc["granularity"] == "block"
    assert doc["space"]["sha256"] == hashlib.sha256(CIFAR.read_bytes()).hexdigest()
    for e in doc["entries"]:
        for kind in ("nnp", "onnx"):
            path = entry_file(doc, e, kind)
            assert path.is_file() and path.parent == cifar_blocks
        assert e["macs"] >= 0 and e["flops"] >= e["macs"] and e["params"] >= 0
        assert e["op_type"]
    irs = [e for e in doc["entries"] if e["name"] == "InvertedResidual"]
    # MB1 (dw, bn, relu, project, bn), MBe without / with the residual Add2 leaf
    assert {len(e["leaves"]) for e in irs} == {5, 8, 9}
    assert all((len(e["leaves"]) == 9) == e["attrs"]["residual"] for e in irs)


def test_onnx_files_are_checker_clean_with_opset_13(cifar_leaves):
    doc = read_manifest(cifar_leaves)
    entries = doc["entries"][:25] + [e for e in doc["entries"][25:] if e["name"] == "Add2"][:1]
    assert any(e["name"] == "Add2" for e in entries)
    for e in entries:
        model = onnx.load(str(entry_file(doc, e, "onnx")))
        onnx.checker.check_model(model, full_check=True)
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [13]
        assert [i.name for i in model.graph.input] == [f"x{i}" for i in range(len(e["input_shapes"]))]


def test_generation_is_deterministic_and_leaves_foreign_files(tmp_path, cifar_blocks):
    out = tmp_path / "gen"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    generate(CIFAR, out, "block")
    a = {p.name: p.read_bytes() for p in cifar_blocks.iterdir()}
    b = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "notes.txt"}
    assert a.keys() == b.keys()
    for name in a:
        if name == "manifest.json":
            da, db = json.loads(a[name]), json.loads(b[name])
            assert da["entries"] == db["entries"]
        else:
            assert a[name] == b[name], name
    assert (out / "notes.txt").read_text() == "mine"
    # a second run reuses the files it wrote (same bytes, same manifest entries)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    generate(CIFAR, out, "block")
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert {k: v for k, v in after.items() if k != "manifest.json"} == \
           {k: v for k, v in before.items() if k != "manifest.json"}


def test_read_manifest_errors(tmp_path):
    from profiler.errors import ManifestError
    with pytest.raises(ManifestError, match="not found; create it with 'profiler generate'"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "profiler-models", "version": 99, "entries": []}')
    with pytest.raises(ManifestError, match="version 99 is newer"):
        read_manifest(tmp_path)


def test_generate_writes_the_null_network_of_the_per_network_constant(cifar_blocks):
    import numpy as np
    import onnxruntime as ort
    from profiler.models.manifest import files_intact, read_manifest
    doc = read_manifest(cifar_blocks)
    c = doc["constant"]
    assert c["uid"] == "@network" and c["uid"] not in {e["uid"] for e in doc["entries"]}
    assert c["input_shapes"] == [[1, 3, 32, 32]] and c["output_shape"] == [1, 10]
    assert files_intact(cifar_blocks, c)
    sess = ort.InferenceSession(str(cifar_blocks / c["files"]["onnx"]), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32)
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    assert y.shape == (1, 10) and np.array_equal(y.ravel(), x.ravel()[:10])   # no compute, only the shapes
