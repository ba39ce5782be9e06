"""Host runtimes: time one model with onnxruntime (ORT_CPU) or nnabla (NNABLA_CPU).

Runs inside a worker process (see :mod:`profiler.host.worker`). The three LatencyKeys are
defined precisely in docs/design.md:

* ``Total Inference Time``: one whole call as an application makes it: the input is copied
  from a host buffer into the runtime, the graph runs, the output is copied back.
* ``Forward Propagate``: the graph execution only, inputs and outputs already bound
  (onnxruntime ``run_with_iobinding`` on pre-allocated OrtValues; nnabla ``y.forward()``).
* ``Layers Time``: the sum of per-node kernel times of one run (onnxruntime's profiler
  ``*_kernel_time`` events; nnabla: each function's ``forward`` timed in graph order),
  measured in separate profiled runs so profiling does not perturb the other two keys.

A batch of modules is timed interleaved (see :func:`measure_batch`).

All samples are microseconds, one per inference.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass

from profiler.session.target import MeasureConfig
from typing import Any, Callable, Dict, List, Optional, Sequence

Clock = Callable[[], int]
HOST_RUNTIMES = ("ORT_CPU", "NNABLA_CPU")


def calibrate(fn: Callable[[], Any], cfg: MeasureConfig, clock: Clock = time.perf_counter_ns) -> int:
    """Repeats needed so the timed loop lasts about ``cfg.min_time_s`` (pyperf-style)."""
    t0 = clock()
    fn()
    single_ns = max(clock() - t0, 1)
    n = int(cfg.min_time_s * 1e9 / single_ns)
    return max(cfg.min_repeat, min(cfg.max_repeat, n))


def time_calls(fn: Callable[[], Any], n: int, clock: Clock = time.perf_counter_ns) -> List[float]:
    """Call ``fn`` ``n`` times; return each call's duration in microseconds."""
    out = []
    for _ in range(n):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000.0)
    return out


def _random_inputs(shapes: Sequence[Sequence[int]], seed: int = 0) -> List[Any]:
    import numpy as np
    rng = np.random.RandomState(seed)
    return [rng.uniform(-1.0, 1.0, size=tuple(s)).astype(np.float32) for s in shapes]


@dataclass
class Prepared:
    """A model loaded and ready to time: the three ways of running it."""

    forward: Callable[[], Any]
    total: Callable[[], Any]
    profiled_run: Callable[[], None]
    layer_samples: Callable[[], List[float]]
    keep: Any = None  # objects that must outlive the closures (sessions, buffers)


def prepare_ort(onnx_path: str, shapes: Sequence[Sequence[int]], cfg: MeasureConfig) -> Prepared:
    import numpy as np
    import onnxruntime as ort

    def options(profile: bool) -> Any:
        so = ort.SessionOptions()
        so.intra_op_num_threads = cfg.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if profile:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="ortprof-"), "p")
        return so

    sess = ort.InferenceSession(onnx_path, options(False), providers=["CPUExecutionProvider"])
    inputs = _random_inputs(shapes)
    names = [i.name for i in sess.get_inputs()]
    feeds = dict(zip(names, inputs))

    def total() -> Any:
        fresh = {k: np.array(v, copy=True) for k, v in feeds.items()}  # caller's buffer -> runtime
        return [np.array(o, copy=True) for o in sess.run(None, fresh)]

    # OrtValues made from numpy arrays borrow their memory: keep the arrays alive.
    bound = {name: arr for name, arr in feeds.items()}
    binding = sess.io_binding()
    for name, arr in bound.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr))
    for meta, o in zip(sess.get_outputs(), sess.run(None, feeds)):
        bound["out:" + meta.name] = np.empty_like(o)
        binding.bind_ortvalue_output(meta.name, ort.OrtValue.ortvalue_from_numpy(bound["out:" + meta.name]))

    def forward() -> None:
        sess.run_with_iobinding(binding)

    psess = ort.InferenceSession(onnx_path, options(True), providers=["CPUExecutionProvider"])
    runs = [0]

    def profiled_run() -> None:
        psess.run(None, feeds)
        runs[0] += 1

    def layer_samples() -> List[float]:
        trace = psess.end_profiling()
        try:
            return ort_layer_times(trace)[-runs[0]:] if runs[0] else []
        finally:
            _remove_trace(trace)

    return Prepared(forward, total, profiled_run, layer_samples, keep=(sess, psess, bound, binding))


def _remove_trace(path: str) -> None:
    try:
        os.remove(path)
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def ort_layer_times(trace_path: str) -> List[float]:
    """Per-run sums of node kernel times (µs) from an onnxruntime profiling trace."""
    with open(trace_path, encoding="utf-8") as f:
        events = json.load(f)
    return parse_ort_trace(events)


def parse_ort_trace(events: Sequence[Dict[str, Any]]) -> List[float]:
    """Pure: group ``Node`` ``*_kernel_time`` events by the ``model_run`` that contains them."""
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    sums = [0.0] * len(runs)
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        for i, (start, end) in enumerate(runs):
            if start <= e["ts"] <= end:
                sums[i] += float(e["dur"])
                break
    return sums


def prepare_nnabla(nnp_path: str, shapes: Sequence[Sequence[int]], cfg: MeasureConfig) -> Prepared:
    import numpy as np
    from profiler.models.build import _nnabla, _quiet
    _nnabla()
    from nnabla.utils.nnp_graph import NnpLoader

    with _quiet():
        nnp = NnpLoader(nnp_path)
        net = nnp.get_network(nnp.get_network_names()[0], batch_size=1)
    xs = [net.inputs[k] for k in sorted(net.inputs)]
    y = list(net.outputs.values())[0]
    inputs = _random_inputs(shapes)
    for var, arr in zip(xs, inputs):
        var.d = arr

    def forward() -> None:
        y.forward(clear_no_need_grad=True)

    def total() -> Any:
        for var, arr in zip(xs, inputs):
            var.d = arr
        y.forward(clear_no_need_grad=True)
        return np.array(y.d, copy=True)

    funcs: List[Any] = []
    y.visit(funcs.append)
    layers: List[float] = []
    clock = time.perf_counter_ns

    def profiled_run() -> None:
        y.forward()  # every intermediate buffer allocated and valid
        acc = 0
        for f in funcs:
            t0 = clock()
            f.forward(f.inputs, f.outputs)
            acc += clock() - t0
        layers.append(acc / 1000.0)

    return Prepared(forward, total, profiled_run, lambda: list(layers), keep=(nnp, net))


def prepare(runtime: str, item: Dict[str, Any], cfg: MeasureConfig) -> Prepared:
    """Load one manifest entry (``onnx``/``nnp`` absolute paths, ``input_shapes``)."""
    if runtime == "ORT_CPU":
        return prepare_ort(item["onnx"], item["input_shapes"], cfg)
    if runtime == "NNABLA_CPU":
        return prepare_nnabla(item["nnp"], item["input_shapes"], cfg)
    raise ValueError(f"unknown host runtime {runtime!r} (choose from {', '.join(HOST_RUNTIMES)})")


def _chunks(n: int, rounds: int) -> List[int]:
    rounds = max(1, min(rounds, n))
    return [n // rounds + (1 if i < n % rounds else 0) for i in range(rounds)]


def measure_batch(runtime: str, items: Sequence[Dict[str, Any]], cfg: MeasureConfig,
                  on_failure: Optional[Callable[[Dict[str, Any], BaseException], None]] = None
                  ) -> Dict[str, Dict[str, List[float]]]:
    """Time every item, interleaved: ``cfg.rounds`` rounds, each running every item in turn.

    Interleaving spreads each module's samples over the whole batch duration, so a burst of
    background load inflates all modules a little instead of one module a lot. Returns
    ``{uid: samples}``; an item that fails is passed to ``on_failure`` and left out.
    """
    ready: Dict[str, Prepared] = {}
    counts: Dict[str, int] = {}
    samples: Dict[str, Dict[str, List[float]]] = {}

    def fail(item: Dict[str, Any], err: BaseException) -> None:
        ready.pop(item["uid"], None)
        samples.pop(item["uid"], None)
        if on_failure:
            on_failure(item, err)

    by_uid = {it["uid"]: it for it in items}
    for item in items:
        try:
            p = prepare(runtime, item, cfg)
            for _ in range(cfg.warmup):
                p.forward()
                p.total()
            counts[item["uid"]] = calibrate(p.forward, cfg)
            ready[item["uid"]] = p
            samples[item["uid"]] = {"Forward Propagate": [], "Total Inference Time": [], "Layers Time": []}
        except Exception as e:  # noqa: BLE001 - a module that cannot run is recorded, not fatal
            fail(item, e)
    plans = {uid: (_chunks(counts[uid], cfg.rounds), _chunks(cfg.layer_runs, cfg.rounds)) for uid in ready}
    for r in range(max(1, cfg.rounds)):
        for uid in list(ready):
            p, (chunks, lchunks) = ready[uid], plans[uid]
            try:
                if r < len(chunks):
                    samples[uid]["Forward Propagate"] += time_calls(p.forward, chunks[r])
                    samples[uid]["Total Inference Time"] += time_calls(p.total, chunks[r])
                if r < len(lchunks):
                    for _ in range(lchunks[r]):
                        p.profiled_run()
            except Exception as e:  # noqa: BLE001
                fail(by_uid[uid], e)
    for uid in list(ready):
        try:
            samples[uid]["Layers Time"] = ready[uid].layer_samples()
        except Exception as e:  # noqa: BLE001
            fail(by_uid[uid], e)
    return samples


def runtime_versions(runtime: str) -> Dict[str, str]:
    if runtime == "ORT_CPU":
        import onnxruntime
        return {"onnxruntime": onnxruntime.__version__}
    from profiler.models.build import _nnabla
    nn, _, _ = _nnabla()
    return {"nnabla": nn.__version__}
