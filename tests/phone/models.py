"""Tiny ONNX modules and a manifest for the phone tests (written with onnx.helper, no nnabla)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np


def _conv_block(name: str, c_in: int, c_out: int, hw: int, kernel: int = 3, fault: Optional[str] = None,
                residual: bool = False, unsupported: bool = False):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(abs(hash(name)) % (2 ** 32))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, hw, hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c_out, hw, hw])
    w = numpy_helper.from_array(rng.standard_normal((c_out, c_in, kernel, kernel)).astype(np.float32), "w")
    scale = numpy_helper.from_array(np.ones(c_out, np.float32), "bn_scale")
    bias = numpy_helper.from_array(np.zeros(c_out, np.float32), "bn_bias")
    mean = numpy_helper.from_array(np.zeros(c_out, np.float32), "bn_mean")
    var = numpy_helper.from_array(np.ones(c_out, np.float32), "bn_var")
    lo = numpy_helper.from_array(np.array(0, np.float32), "clip_lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "clip_hi")
    pad = kernel // 2
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="block/conv", kernel_shape=[kernel, kernel],
                         pads=[pad] * 4, strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["b"],
                         name="block/bn"),
        helper.make_node("Clip", ["b", "clip_lo", "clip_hi"], ["r" if residual or unsupported else "y"],
                         name="block/relu6"),
    ]
    inits = [w, scale, bias, mean, var, lo, hi]
    if residual:
        nodes.append(helper.make_node("Add", ["r", "x"], ["y"], name="block/add"))
    if unsupported:
        nodes.append(helper.make_node("Einsum", ["r"], ["y"], name="block/einsum", equation="nchw->nchw"))
    graph = helper.make_graph(nodes, name, [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if fault:
        helper.set_model_props(model, {"fake_fault": fault})
    return model


def write_models(out: Path, specs: Sequence[Dict]) -> Path:
    """Write one ONNX file per spec and a ``profiler-models`` manifest; return ``out``.

    A spec: ``{"uid", "c_in", "c_out", "hw", "kernel"?, "residual"?, "fault"?, "unsupported"?}``.
    """
    import onnx

    from profiler.models.manifest import write_manifest
    from profiler.space.modules import file_stem

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries: List[Dict] = []
    for spec in specs:
        stem = file_stem(spec["uid"])
        model = _conv_block(stem, spec["c_in"], spec["c_out"], spec["hw"], spec.get("kernel", 3),
                            spec.get("fault"), spec.get("residual", False), spec.get("unsupported", False))
        onnx.save(model, str(out / f"{stem}.onnx"))
        (out / f"{stem}.nnp").write_bytes(b"")  # the phone target reads only the ONNX file
        entries.append({"uid": spec["uid"], "files": {"onnx": f"{stem}.onnx", "nnp": f"{stem}.nnp"},
                        "input_shapes": [[1, spec["c_in"], spec["hw"], spec["hw"]]],
                        "output_shape": [1, spec["c_out"], spec["hw"], spec["hw"]]})
    write_manifest(out, {"kind": "modules", "space": {"name": "phone-test", "path": None, "sha256": None},
                         "granularity": "block", "entries": entries})
    return out


def conv_uid(c_in: int, c_out: int, hw: int, k: int = 3) -> str:
    return (f"ConvBNReLU[in_channels={c_in},out_channels={c_out},kernel=[{k},{k}],stride=[1,1]]"
            f"[[1,{c_in},{hw},{hw}]]")


def standard_specs(n: int = 4) -> List[Dict]:
    """``n`` distinct healthy conv blocks."""
    sizes = [(3, 8, 16), (8, 8, 16), (8, 16, 8), (16, 16, 8), (16, 24, 4), (24, 24, 4), (4, 4, 8), (4, 8, 8)]
    return [{"uid": conv_uid(ci, co, hw), "c_in": ci, "c_out": co, "hw": hw, "residual": ci == co}
            for ci, co, hw in sizes[:n]]
