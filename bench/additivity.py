"""Additivity: does the raw sum of a network's module look-ups match the measured network?

Issue 13, part 1. Everything that is compared is measured in ONE process, interleaved round by
round (networks, their modules one by one, the modules chained, identity models), so machine
drift cancels out of the ratios. Per onnxruntime session-option variant (``--variants``):

* ``net``      whole network, ``run_with_iobinding`` (= the product's Forward Propagate);
* ``net_tit``  whole network, ``sess.run`` on a fresh input copy, output copied (= Total
               Inference Time, the product's default measured key);
* ``mod``      each module alone, ``run_with_iobinding`` (Forward Propagate of the table);
* ``cold``     each module alone right after evicting L2 (an 8 MiB buffer is read first);
* ``chain``    a network's modules run back to back in this process, each module's output
               buffer bound as the next one's input, one timer around the whole chain;
* ``ident``    a 1-node Identity model per input shape (+ [1,1]): per-call overhead;
* ``prof``     profiled sessions (``enable_profiling``): Layers Time (sum of ``*_kernel_time``
               events) of modules, networks and identities, and the wall time of a profiled
               run, to measure the profiler's own per-node cost.

Candidate keys, each summed over a network's modules and compared with ``net`` (and
``net_tit``): FP raw sum, FP minus identity overhead (per shape / one [1,1] constant), chained
execution, cold-cache FP, Layers Time, plus a least-squares fit ``net = sum - a*n + b`` that
shows the per-module excess ``a`` and the per-network constant ``b`` the data implies.

Networks: ``--num`` sampled (seed 0) plus extremes: skip wherever allowed with the cheapest /
the most expensive candidate elsewhere, and the most expensive candidate everywhere.

    .venv/bin/python bench/additivity.py --work /tmp/add --num 20 --rounds 10
    .venv/bin/python bench/additivity.py --work /tmp/add --analyse   # re-print a kept run

Writes ``DIR/additivity.json`` (all medians) and prints the summary tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics as st
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from common import CIFAR, print_table  # also puts the repository on sys.path

VARIANTS = {
    # the product's settings (profiler.host.timing.prepare_ort): ORT_ENABLE_ALL, arena on
    "default": {},
    # no layout optimisation (NCHWc): Conv+BN / Conv+Relu fusions stay, no Reorder nodes
    "extended": {"opt": "extended"},
    "noarena": {"arena": False},
    "basic": {"opt": "basic"},
}
FLUSH_BYTES = 8 << 20


# ---------------------------------------------------------------- models

def build_models(work: Path, num: int) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Module and network manifests (generate / sample, plus extreme networks)."""
    from profiler.space import arch as A
    from profiler.pipeline.generate import generate
    from profiler.models.manifest import read_manifest
    from profiler.models.build import ModelTask, write_models
    from profiler.pipeline.sample import network_entry, sample
    from profiler.space.searchspace import load_space

    mods_dir, nets_dir, ext_dir = work / "mods", work / "nets", work / "extreme"
    if not (mods_dir / "manifest.json").exists():
        generate(CIFAR, mods_dir, "block")
    if not (nets_dir / "manifest.json").exists():
        sample(CIFAR, num, 0, nets_dir)
    mods = read_manifest(mods_dir)["entries"]
    nets = read_manifest(nets_dir)["entries"]
    for e in mods:
        e["path"] = str(mods_dir / e["files"]["onnx"])
    for e in nets:
        e["path"] = str(nets_dir / e["files"]["onnx"])

    pos = A.positions(load_space(CIFAR))
    cp = [p for p in pos if p.choice]
    labels = cp[0].labels
    cheap, dear = labels.index("MB3_k3"), labels.index("MB6_k7")
    extremes = {
        "skip-min": tuple(p.n_choices - 1 if p.skip else cheap for p in cp),
        "skip-max": tuple(p.n_choices - 1 if p.skip else dear for p in cp),
        "full-max": tuple(dear for _ in cp),
        "full-min": tuple(cheap for _ in cp),
    }
    ext_dir.mkdir(parents=True, exist_ok=True)
    archs = [A.Architecture(k, v) for k, v in extremes.items()]
    todo = [ModelTask(tuple(A.blocks_of(pos, a.choices)), a.arch_id, a.arch_id, "network")
            for a in archs if not (ext_dir / f"{a.arch_id}.onnx").exists()]
    if todo:
        write_models(todo, ext_dir)
    for a in archs:
        e = network_entry(a, pos, {"nnp": f"{a.arch_id}.nnp", "onnx": f"{a.arch_id}.onnx"})
        e["path"] = str(ext_dir / f"{a.arch_id}.onnx")
        nets.append(e)
    return mods, nets


def reorder_model(path: Path, shape: Sequence[int]) -> str:
    """x -> ReorderInput -> ReorderOutput -> y (onnxruntime's NCHWc layout ops): what a module
    pays at its boundaries under ORT_ENABLE_ALL and a network does not (plus one call)."""
    import onnx
    from onnx import TensorProto, helper
    if not path.exists():
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
        nodes = [helper.make_node("ReorderInput", ["x"], ["t"], domain="com.microsoft.nchwc"),
                 helper.make_node("ReorderOutput", ["t"], ["y"], domain="com.microsoft.nchwc",
                                  channels=int(shape[1]))]
        g = helper.make_graph(nodes, "reorder", [x], [y])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                                helper.make_opsetid("com.microsoft.nchwc", 1)])
        m.ir_version = 7
        onnx.save(m, str(path))
    return str(path)


def reorderable(shape: Sequence[int]) -> bool:
    return len(shape) == 4 and shape[1] % 4 == 0


def identity_model(path: Path, shape: Sequence[int]) -> str:
    import onnx
    from onnx import TensorProto, helper
    if not path.exists():
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
        g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "ident", [x], [y])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        m.ir_version = 7
        onnx.save(m, str(path))
    return str(path)


# ---------------------------------------------------------------- sessions

def options(variant: Dict[str, Any], profile_dir: str = "") -> Any:
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    lvl = variant.get("opt", "all")
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[lvl]
    so.enable_cpu_mem_arena = variant.get("arena", True)
    if profile_dir:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tempfile.mkdtemp(prefix="prof-", dir=profile_dir), "p")
    return so


class Bound:
    """A session with input/output bound to numpy buffers (``forward``) and a plain run."""

    def __init__(self, sess: Any, inp: Any, out: Any):
        import onnxruntime as ort
        self.sess, self.inp, self.out = sess, inp, out
        self.binding = sess.io_binding()
        self.binding.bind_ortvalue_input(sess.get_inputs()[0].name, ort.OrtValue.ortvalue_from_numpy(inp))
        self.binding.bind_ortvalue_output(sess.get_outputs()[0].name, ort.OrtValue.ortvalue_from_numpy(out))
        self.feed_name = sess.get_inputs()[0].name

    def forward(self) -> None:
        self.sess.run_with_iobinding(self.binding)

    def total(self) -> Any:
        import numpy as np
        fresh = np.array(self.inp, copy=True)
        return [np.array(o, copy=True) for o in self.sess.run(None, {self.feed_name: fresh})]


def session(path: str, variant: Dict[str, Any], profile_dir: str = "") -> Any:
    import onnxruntime as ort
    return ort.InferenceSession(path, options(variant, profile_dir), providers=["CPUExecutionProvider"])


def bound(sess: Any, in_shape: Sequence[int], seed: int = 0) -> Bound:
    import numpy as np
    rng = np.random.RandomState(seed)
    inp = rng.uniform(-1, 1, size=tuple(in_shape)).astype(np.float32)
    out0 = sess.run(None, {sess.get_inputs()[0].name: inp})[0]
    return Bound(sess, inp, np.empty_like(out0))


def chain_of(sessions: Sequence[Any], in_shape: Sequence[int]) -> List[Bound]:
    """Bind module i's output buffer as module i+1's input (reshaped view when needed)."""
    import numpy as np
    rng = np.random.RandomState(1)
    x = rng.uniform(-1, 1, size=tuple(in_shape)).astype(np.float32)
    out: List[Bound] = []
    for s in sessions:
        want = [d if isinstance(d, int) else 1 for d in s.get_inputs()[0].shape]
        x = x.reshape(want)
        y = np.empty_like(s.run(None, {s.get_inputs()[0].name: x})[0])
        out.append(Bound(s, x, y))
        x = y
    return out


# ---------------------------------------------------------------- measurement

def measure(work: Path, mods: List[Dict[str, Any]], nets: List[Dict[str, Any]], variants: List[str],
            rounds: int, reps: int, prof_runs: int) -> Dict[str, Any]:
    import numpy as np
    from profiler.host.timing import ort_layer_times

    clock = time.perf_counter_ns
    by_uid = {m["uid"]: m for m in mods}
    shapes = sorted({tuple(m["input_shapes"][0]) for m in mods} | {tuple(m["output_shape"]) for m in mods}
                    | {(1, 1)})
    idir = work / "ident"
    idir.mkdir(exist_ok=True)
    ident_paths = {s: identity_model(idir / ("x".join(map(str, s)) + ".onnx"), s) for s in shapes}
    pdir = work / "prof"
    pdir.mkdir(exist_ok=True)
    flush = np.ones(FLUSH_BYTES // 8)

    items: Dict[str, Dict[str, Any]] = {}   # key -> {"fn": callable, "cold": bool}
    profiled: Dict[str, Any] = {}          # key -> (session, feeds)
    for vname in variants:
        v = VARIANTS[vname]
        msess = {m["uid"]: session(m["path"], v) for m in mods}
        for m in mods:
            b = bound(msess[m["uid"]], m["input_shapes"][0])
            items[f"{vname}|mod|{m['uid']}"] = {"fn": b.forward}
            if vname == "default":
                items[f"{vname}|cold|{m['uid']}"] = {"fn": b.forward, "cold": True}
        for s, p in ident_paths.items():
            b = bound(session(p, v), s)
            items[f"{vname}|ident|{list(s)}"] = {"fn": b.forward}
            if vname == "default":
                items[f"{vname}|ident_tit|{list(s)}"] = {"fn": b.total}
                if reorderable(s):
                    rp = reorder_model(idir / ("reorder-" + "x".join(map(str, s)) + ".onnx"), s)
                    items[f"{vname}|reorder|{list(s)}"] = {"fn": bound(session(rp, v), s).forward}
        for n in nets:
            b = bound(session(n["path"], v), n["input_shapes"][0])
            items[f"{vname}|net|{n['uid']}"] = {"fn": b.forward}
            items[f"{vname}|net_tit|{n['uid']}"] = {"fn": b.total}
            ch = chain_of([msess[u] for u in n["module_uids"]["block"]], n["input_shapes"][0])
            fns = [c.forward for c in ch]

            def run_chain(fns: List[Any] = fns) -> None:
                for f in fns:
                    f()
            items[f"{vname}|chain|{n['uid']}"] = {"fn": run_chain}
        if vname == "default":  # profiled sessions: Layers Time and profiler cost
            for kind, entries in (("mod", mods), ("net", nets)):
                for e in entries:
                    s = session(e["path"], v, str(pdir))
                    x = np.random.RandomState(0).uniform(-1, 1, e["input_shapes"][0]).astype(np.float32)
                    profiled[f"{vname}|prof_{kind}|{e['uid']}"] = (s, {s.get_inputs()[0].name: x})
            for s_, p in ident_paths.items():
                s = session(p, v, str(pdir))
                x = np.zeros(s_, np.float32)
                profiled[f"{vname}|prof_ident|{list(s_)}"] = (s, {"x": x})

    samples: Dict[str, List[float]] = {k: [] for k in items}
    psamples: Dict[str, List[float]] = {k: [] for k in profiled}
    for it in items.values():       # warm-up
        for _ in range(3):
            it["fn"]()
    for s, feeds in profiled.values():
        s.run(None, feeds)
    keys = list(items)
    t_start = time.time()
    for r in range(rounds):
        order = keys if r % 2 == 0 else keys[::-1]   # alternate the order: no position bias
        for k in order:
            it, out = items[k], samples[k]
            fn = it["fn"]
            for _ in range(reps):
                if it.get("cold"):
                    flush.sum()
                t0 = clock()
                fn()
                out.append((clock() - t0) / 1000.0)
        for k, (s, feeds) in profiled.items():
            for _ in range(prof_runs):
                t0 = clock()
                s.run(None, feeds)
                psamples[k].append((clock() - t0) / 1000.0)
        print(f"round {r + 1}/{rounds} ({time.time() - t_start:.0f} s)", file=sys.stderr)
    out: Dict[str, Any] = {k: st.median(v) for k, v in samples.items()}
    for k, (s, _f) in profiled.items():
        out[k.replace("prof_", "profwall_")] = st.median(psamples[k])
        trace = s.end_profiling()
        lt = ort_layer_times(trace)
        out[k.replace("prof_", "lt_")] = st.median(lt[1:]) if len(lt) > 1 else float("nan")
        out[k.replace("prof_", "nodes_")] = _nodes_per_run(trace)
        os.remove(trace)
    return out


def _nodes_per_run(trace: str) -> float:
    with open(trace, encoding="utf-8") as f:
        ev = json.load(f)
    runs = sum(1 for e in ev if e.get("name") == "model_run")
    nodes = sum(1 for e in ev if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"))
    return nodes / max(runs, 1)


# ---------------------------------------------------------------- analysis

def mape(pred: Sequence[float], meas: Sequence[float]) -> float:
    return 100.0 * st.mean(abs(p - m) / m for p, m in zip(pred, meas))


def analyse(res: Dict[str, Any], mods: List[Dict[str, Any]], nets: List[Dict[str, Any]],
            variants: List[str]) -> Dict[str, Any]:
    import numpy as np
    summary: Dict[str, Any] = {}
    sampled = [n for n in nets if n["uid"].startswith("arch-")]
    extreme = [n for n in nets if not n["uid"].startswith("arch-")]
    for vname in variants:
        g = lambda kind, key: res[f"{vname}|{kind}|{key}"]  # noqa: E731
        ident = lambda shape: g("ident", str(list(shape)))  # noqa: E731
        by_uid = {m["uid"]: m for m in mods}
        i0 = ident((1, 1))
        cands: Dict[str, Any] = {
            "FP raw sum": lambda n: sum(g("mod", u) for u in n["module_uids"]["block"]),
            "FP - n*ident[1,1]": lambda n: sum(g("mod", u) - i0 for u in n["module_uids"]["block"]),
            "FP - ident(shape)": lambda n: sum(g("mod", u) - ident(by_uid[u]["input_shapes"][0])
                                               for u in n["module_uids"]["block"]),
            "(FP - ident[1,1]) + ident[1,1] once": lambda n: sum(g("mod", u) - i0 for u in n["module_uids"]["block"]) + i0,
            "chain (in-process)": lambda n: g("chain", n["uid"]),
        }
        def boundary(u: str) -> float:
            """Reorder-pair probe minus one call, averaged over the module's input and output
            shapes (a shape that cannot be reordered: identity = no boundary cost)."""
            m = by_uid[u]
            return st.mean(res.get(f"{vname}|reorder|{list(s)}", i0) - i0
                           for s in (m["input_shapes"][0], m["output_shape"]))
        if f"{vname}|reorder|[1, 16, 16, 16]" in res:
            cands["FP - ident[1,1] - boundary"] = lambda n: sum(g("mod", u) - i0 - boundary(u)
                                                                for u in n["module_uids"]["block"])
            cands["chain - n*ident[1,1] - boundary"] = lambda n: g("chain", n["uid"]) - sum(
                i0 + boundary(u) for u in n["module_uids"]["block"])
        if vname == "default":
            cands["cold FP raw sum"] = lambda n: sum(g("cold", u) for u in n["module_uids"]["block"])
            cands["cold FP - n*ident[1,1]"] = lambda n: sum(g("cold", u) - i0 for u in n["module_uids"]["block"])
            cands["Layers Time sum"] = lambda n: sum(g("lt_mod", u) for u in n["module_uids"]["block"])
        rows, vs = [], {}
        for meas_kind in ("net", "net_tit"):
            for name, f in cands.items():
                for label, group in (("sampled", sampled), ("extreme", extreme)):
                    pred = [f(n) for n in group]
                    meas = [g(meas_kind, n["uid"]) for n in group]
                    nm = [len(n["module_uids"]["block"]) for n in group]
                    resid = [(p - m) / k for p, m, k in zip(pred, meas, nm)]
                    ratio = [p / m for p, m in zip(pred, meas)]
                    vs[f"{meas_kind}|{name}|{label}"] = {
                        "MAPE": mape(pred, meas), "median_ratio": st.median(ratio),
                        "median_resid_per_module_us": st.median(resid),
                        "per_net": {n["uid"]: {"pred": p, "meas": m} for n, p, m in zip(group, pred, meas)}}
                    rows.append([meas_kind, name, label, mape(pred, meas), st.median(ratio), st.median(resid)])
        # what the data implies: net = FPsum - a*n + b (least squares over all networks)
        X = np.array([[len(n["module_uids"]["block"]), 1.0] for n in nets])
        y = np.array([g("net", n["uid"]) - cands["FP raw sum"](n) for n in nets])
        (a, b), *_ = np.linalg.lstsq(X, y, rcond=None)
        summary[vname] = {"candidates": vs, "fit_net_minus_sum": {"per_module": float(a), "constant": float(b)},
                          "ident": {str(list(s)): ident(s) for s in sorted({tuple(m["input_shapes"][0]) for m in mods}
                                                                         | {tuple(m["output_shape"]) for m in mods} | {(1, 1)})
                                    if f"{vname}|ident|{list(s)}" in res},
                          "net_over_chain": st.median(g("net", n["uid"]) / g("chain", n["uid"]) for n in nets),
                          "tit_minus_fp_net": st.median(g("net_tit", n["uid"]) - g("net", n["uid"]) for n in nets)}
        print(f"\n== variant {vname}: candidate key sums vs measured network (medians of one run)")
        print_table(["measured", "candidate", "nets", "MAPE %", "median sum/net", "resid µs/module"], rows)
        print(f"least squares net - FPsum = {a:+.2f} µs × n_modules {b:+.1f} µs; "
              f"median net/chain = {summary[vname]['net_over_chain']:.3f}; "
              f"median net TIT - FP = {summary[vname]['tit_minus_fp_net']:.1f} µs")
    d = summary["default"] if "default" in summary else None
    if d:
        print("\nidentity model Forward Propagate (default options), µs per call, by shape:")
        print_table(["shape", "FP µs", "TIT µs", "Layers Time µs", "profiled wall µs", "reorder pair FP µs"],
                    [[s, v, res[f"default|ident_tit|{s}"], res[f"default|lt_ident|{s}"],
                      res[f"default|profwall_ident|{s}"], res.get(f"default|reorder|{s}", "-")]
                     for s, v in d["ident"].items()])
        rows = []
        for kind, entries in (("mod", mods), ("net", nets)):
            over = [(res[f"default|profwall_{kind}|{e['uid']}"] - res[f"default|{kind}|{e['uid']}"]) /
                    res[f"default|nodes_{kind}|{e['uid']}"] for e in entries]
            ltx = [(res[f"default|lt_{kind}|{e['uid']}"] - res[f"default|{kind}|{e['uid']}"]) /
                   res[f"default|nodes_{kind}|{e['uid']}"] for e in entries]
            ratio = [res[f"default|lt_{kind}|{e['uid']}"] / res[f"default|{kind}|{e['uid']}"] for e in entries]
            nodes = [res[f"default|nodes_{kind}|{e['uid']}"] for e in entries]
            rows.append([kind, st.median(nodes), st.median(ratio), st.median(ltx), st.median(over)])
        d["profiler"] = rows
        print("\nprofiler cost (default options): executed nodes per run, Layers Time / FP, "
              "(LT - FP) per node, (profiled run wall - FP) per node")
        print_table(["models", "nodes/run", "LT/FP", "(LT-FP)/node µs", "(wall-FP)/node µs"], rows)
        cold = [res[f"default|cold|{m['uid']}"] / res[f"default|mod|{m['uid']}"] for m in mods]
        print(f"\ncold/warm module FP: median {st.median(cold):.3f} (min {min(cold):.3f}, max {max(cold):.3f})")
        d["cold_over_warm"] = st.median(cold)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", help="directory for models and results (kept); default: temporary")
    ap.add_argument("--num", type=int, default=20, help="sampled networks (seed 0)")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    ap.add_argument("--reps", type=int, default=10, help="timed calls per item per round")
    ap.add_argument("--prof-runs", type=int, default=2, help="profiled runs per model per round")
    ap.add_argument("--variants", default="default,extended", help=f"comma-separated of {','.join(VARIANTS)}")
    ap.add_argument("--analyse", action="store_true", help="only re-analyse DIR/additivity.json")
    opts = ap.parse_args()
    variants = opts.variants.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(opts.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        mods, nets = build_models(work, opts.num)
        out = work / "additivity.json"
        if opts.analyse:
            try:
                res = json.loads(out.read_text())["medians"]
            except (OSError, ValueError, KeyError) as e:
                print(f"additivity: {out}: no kept run to analyse ({type(e).__name__}: {e}); "
                      "run without --analyse first", file=sys.stderr)
                return 2
            variants = [v for v in VARIANTS if any(k.startswith(v + "|") for k in res)]
        else:
            res = measure(work, mods, nets, variants, opts.rounds, opts.reps, opts.prof_runs)
            out.write_text(json.dumps({"medians": res, "rounds": opts.rounds, "reps": opts.reps}, indent=0))
        try:
            summary = analyse(res, mods, nets, variants)
        except KeyError as e:
            print(f"additivity: {out} has no measurement {e} for these models (another --num, or measured "
                  "by an older version of this bench); re-run without --analyse", file=sys.stderr)
            return 2
        (work / "additivity-summary.json").write_text(json.dumps(summary, indent=1, default=str))
        print(f"\n-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
