"""Build modules and networks with nnabla and save them as NNP and ONNX.

nnabla is imported lazily. The ONNX file is produced by nnabla's own exporter
(``NnpImporter`` -> ``OnnxExporter``), called directly so TensorFlow is never imported.
Parameters are random but seeded from the UID, so a module's files are reproducible.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
import zipfile
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from profiler.space import modules as M

ONNX_OPSET = 13
INPUT_PREFIX = "x"
OUTPUT_NAME = "y"


@contextlib.contextmanager
def _quiet():
    """Silence the converter's prints to stdout and its numpy deprecation warnings."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _nnabla():
    logging.getLogger("nnabla").setLevel(logging.WARNING)  # before import: it logs at import
    with _quiet():
        import nnabla as nn
        import nnabla.functions as F
        import nnabla.parametric_functions as PF
    return nn, F, PF


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def build_spec(spec: M.ModuleSpec, x: Any, scope: str) -> Any:
    """Apply ``spec`` to the nnabla variable ``x`` and return its output variable."""
    nn, F, PF = _nnabla()
    with nn.parameter_scope(scope):
        if spec.name in M.BLOCK_TYPES:
            h = x
            gate_input = None
            leaves = spec.leaves()
            chain = [leaf for leaf in leaves if leaf.name != "Add2"]
            for i, leaf in enumerate(chain):
                if leaf.name == "GlobalAvgPool":     # a block's squeeze-and-excitation starts
                    gate_input = h
                if leaf.name == "Mul2":              # ... and ends: features times the gate
                    h = F.mul2(gate_input, h)
                    continue
                h = build_spec(leaf, h, f"l{i}")
            if len(chain) < len(leaves):        # the residual add (Add2 leaf), applied last
                h = F.add2(h, x)
            return h
        if spec.name == "Conv":
            return PF.convolution(x, spec.attr("out_channels"), spec.attr("kernel"),
                                  pad=spec.attr("pad"), stride=spec.attr("stride"),
                                  group=spec.attr("group"), with_bias=spec.attr("with_bias"))
        if spec.name == "BatchNormalization":
            return PF.batch_normalization(x, batch_stat=False, eps=spec.attr("eps"),
                                          decay_rate=spec.attr("decay_rate"))
        if spec.name == "ReLU6":
            return F.relu6(x)
        if spec.name == "ReLU":
            return F.relu(x)
        if spec.name == "Hswish":                   # as nnabla-nas's Mo.Hswish computes it
            return x * F.relu6(x + 3.0) / 6.0
        if spec.name == "Hsigmoid":                 # as nnabla-nas's Mo.Hsigmoid computes it
            return F.relu6(x + 3.0) / 6.0
        if spec.name == "GlobalAvgPool":
            return F.global_average_pooling(x)
        if spec.name == "Linear":
            return PF.affine(x, spec.attr("out_features"), base_axis=spec.attr("base_axis"))
    raise ValueError(f"cannot build module type {spec.name}")


def _randomise_parameters(seed: int) -> None:
    """Give BN statistics non-trivial values (weights already come from a seeded rng)."""
    import numpy as np
    nn, _, _ = _nnabla()
    rng = np.random.RandomState(seed)
    for name, p in sorted(nn.get_parameters(grad_only=False).items()):
        if name.endswith("/mean") or name.endswith("/beta"):
            p.d = rng.normal(0.0, 0.1, p.shape)
        elif name.endswith("/var") or name.endswith("/gamma"):
            p.d = rng.uniform(0.5, 1.5, p.shape)


def build_graph(blocks: Sequence[Optional[M.ModuleSpec]], seed_text: str) -> Tuple[Any, Any]:
    """Build a fresh graph of ``blocks`` (``None`` = identity) on a batch-1 input.

    Returns ``(input variables, output variable)``; global parameters are reset first.
    Standalone ``Add2`` (``x0 + x1``) and ``Mul2`` (``x0 * x1``, the second a broadcast
    ``[n,c,1,1]`` gate) leaves are the modules with two inputs.
    """
    import numpy as np
    nn, _, _ = _nnabla()
    import nnabla.random
    nn.clear_parameters()
    seed = _seed(seed_text)
    nnabla.random.prng = np.random.RandomState(seed)
    first = next(b for b in blocks if b is not None)
    if first.name in M.TWO_INPUT_LEAVES:
        if len([b for b in blocks if b is not None]) != 1:
            raise ValueError(f"a {first.name} leaf is built only as a module of its own")
        _, F, _ = _nnabla()
        xs = [nn.Variable(s) for s in first.input_shapes]
        op = F.add2 if first.name == "Add2" else F.mul2
        return xs, op(xs[0], xs[1])
    x = nn.Variable(first.input_shape)
    h = x
    for i, b in enumerate(blocks):
        if b is None:
            continue
        if tuple(h.shape) != tuple(b.input_shape):
            raise RuntimeError(f"shape mismatch at block {i}: graph has {h.shape}, "
                               f"spec expects {b.input_shape} ({b.uid})")
        h = build_spec(b, h, f"b{i}")
    _randomise_parameters(seed)
    return [x], h


def record_supernet_shapes(positions: Sequence[Any]) -> Dict[str, Tuple[int, ...]]:
    """Record each option's real input shape as nnabla infers it through the supernet.

    The supernet is walked position by position as in "full" mode (every option of a choice
    position applied to the same input, as a MixedOp does, and their outputs -- all of one
    shape, or it is an error -- summed into the next position's input). Each option is built
    on its own and its parameters are dropped before the next, so memory is bounded by the
    largest single option, not the whole supernet. Returns ``{uid: input shape}``.
    """
    nn, _, _ = _nnabla()
    nn.clear_parameters()
    shape = tuple(positions[0].options[0].input_shape)
    seen: Dict[str, Tuple[int, ...]] = {}
    try:
        for pos in positions:
            outs = set()
            for j, opt in enumerate(pos.options):
                seen.setdefault(opt.uid, shape)
                y = build_spec(opt, nn.Variable(shape), f"p{pos.index}/o{j}")
                outs.add(tuple(y.shape))
                del y
                nn.clear_parameters()
            if pos.skip:
                outs.add(shape)
            if len(outs) != 1:
                raise RuntimeError(f"internal error: the options of position {pos.index} give outputs "
                                   f"of different shapes {sorted(outs)} in the nnabla supernet")
            shape = outs.pop()
    finally:
        nn.clear_parameters()
    return seen


def save_nnp(path: Path, xs: Sequence[Any], y: Any, name: str) -> None:
    """Save the graph ``xs -> y`` with the current parameters as a deterministic NNP.

    Inputs are named ``x0``, ``x1``, ... in order."""
    nn, _, _ = _nnabla()
    from nnabla.utils.save import save
    names = {f"{INPUT_PREFIX}{i}": x for i, x in enumerate(xs)}
    contents = {
        "networks": [{"name": name, "batch_size": 1, "outputs": {OUTPUT_NAME: y},
                      "names": names}],
        "executors": [{"name": "Runtime", "network": name, "data": list(names),
                       "output": [OUTPUT_NAME]}],
    }
    from profiler.files import temp_path
    tmp = temp_path(path)
    try:
        with _quiet():
            save(str(tmp), contents, variable_batch_size=False)
        _normalise_zip(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _normalise_zip(src: Path, dst: Path) -> None:
    """Rewrite a zip with fixed timestamps so identical content gives identical bytes."""
    from profiler.files import replacing
    with replacing(dst) as tmp, zipfile.ZipFile(src) as zin, \
            zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in sorted(zin.infolist(), key=lambda i: i.filename):
            data = zin.read(info.filename)
            zi = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(zi, data)


def export_onnx(nnp_path: Path, onnx_path: Path, opset: int = ONNX_OPSET) -> None:
    """Convert an NNP file to ONNX with nnabla's exporter and check the result."""
    _nnabla()
    import onnx
    with _quiet():
        from nnabla.utils.converter.nnabla import NnpImporter
        from nnabla.utils.converter.onnx import OnnxExporter
    from profiler.files import replacing
    with replacing(onnx_path) as tmp:
        with _quiet():
            nnp = NnpImporter(str(nnp_path), expand_network=True, executor_index=None).execute()
            OnnxExporter(nnp, 1, -1, opset=str(opset)).execute(str(tmp))
        model = onnx.load(str(tmp))
        _canonical_names(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))


def _canonical_names(model: Any) -> None:
    """Rename nodes and internal tensors by position.

    The exporter numbers names with a process-wide counter, so the same model exported
    twice would differ; positional names make the bytes depend on the graph only.
    """
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    keep |= {i.name for i in g.initializer if "/" in i.name}  # parameters keep nnabla names
    mapping: Dict[str, str] = {}

    def rename(name: str) -> str:
        if not name or name in keep:
            return name
        if name not in mapping:
            mapping[name] = f"t{len(mapping)}"
        return mapping[name]

    for init in g.initializer:
        init.name = rename(init.name)
    for i, node in enumerate(g.node):
        node.name = f"n{i}_{node.op_type}"
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    for v in g.value_info:
        v.name = rename(v.name)


def write_model(blocks: Sequence[Optional[M.ModuleSpec]], out_dir: Path, stem: str,
                seed_text: str, name: str) -> Dict[str, str]:
    """Build ``blocks`` as one model and write ``stem.nnp`` and ``stem.onnx`` to ``out_dir``."""
    xs, y = build_graph(blocks, seed_text)
    nnp = out_dir / f"{stem}.nnp"
    onnx_file = out_dir / f"{stem}.onnx"
    save_nnp(nnp, xs, y, name)
    export_onnx(nnp, onnx_file)
    return {"nnp": nnp.name, "onnx": onnx_file.name, "output_shape": list(y.shape)}


def write_null_model(out_dir: Path, stem: str, input_shape: Sequence[int],
                     output_shape: Sequence[int]) -> Dict[str, str]:
    """The null network of the per-network constant: ``input_shape`` in, ``output_shape`` out,
    no compute (reshape, slice of the first elements, reshape). Writes ``stem.nnp``/``.onnx``."""
    nn, F, _ = _nnabla()
    n_in = 1
    for d in input_shape:
        n_in *= int(d)
    n_out = 1
    for d in output_shape:
        n_out *= int(d)
    if n_out > n_in:
        raise ValueError(f"null network: output {list(output_shape)} is larger than input {list(input_shape)}")
    nn.clear_parameters()
    x = nn.Variable(tuple(int(d) for d in input_shape))
    h = F.slice(F.reshape(x, (1, n_in)), start=(0, 0), stop=(1, n_out), step=(1, 1))
    y = F.reshape(h, tuple(int(d) for d in output_shape))
    nnp = out_dir / f"{stem}.nnp"
    onnx_file = out_dir / f"{stem}.onnx"
    save_nnp(nnp, [x], y, stem)
    export_onnx(nnp, onnx_file)
    return {"nnp": nnp.name, "onnx": onnx_file.name}


@dataclass(frozen=True)
class ModelTask:
    """One model to write: its blocks, file stem, parameter seed text and network name."""

    blocks: Tuple[Optional[M.ModuleSpec], ...]
    stem: str
    seed_text: str
    name: str


def _run_task(task: "ModelTask", out_dir: Path) -> Dict[str, Any]:
    return write_model(task.blocks, out_dir, task.stem, task.seed_text, task.name)


def write_models(tasks: Sequence["ModelTask"], out_dir: Path, jobs: Optional[int] = None,
                 on_done: Optional[Callable[[int, "ModelTask", Dict[str, Any]], None]] = None
                 ) -> List[Dict[str, Any]]:
    """Write every task's model, in ``jobs`` processes (default: one per CPU, at most 8).

    Each file depends only on its own task (seeded parameters, positional ONNX names), so
    the output is identical whatever the number of processes. ``on_done(i, task, result)``
    is called in this process as models finish; results are returned in task order.
    """
    jobs = jobs or min(8, os.cpu_count() or 1)
    results: List[Optional[Dict[str, Any]]] = [None] * len(tasks)
    if jobs <= 1 or len(tasks) < 4:
        for i, t in enumerate(tasks):
            results[i] = _run_task(t, out_dir)
            if on_done:
                on_done(i, t, results[i])
        return results  # type: ignore[return-value]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    ctx = multiprocessing.get_context("spawn")  # no inherited nnabla state
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_run_task, t, out_dir): i for i, t in enumerate(tasks)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_done:
                on_done(i, tasks[i], results[i])
    return results  # type: ignore[return-value]
