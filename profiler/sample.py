"""``profiler sample``: whole architectures drawn from a space, built as NNP + ONNX.

Each network gets an id (``arch-0007``) and its list of chosen candidates; everything
downstream (bench results, accumulated latency, the fit) is paired by that id. The
accumulated latency of a network is the sum of the table look-ups of its modules at the
table's granularity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from profiler import arch as A
from profiler import modules as M
from profiler.generate import Progress, check_shapes, generator_info, space_info
from profiler.manifest import read_manifest, write_json_atomic, write_manifest
from profiler.errors import ManifestError, TableError
from profiler.space import load_space

ACCUM_FILE = "accum.json"


def network_entry(a: A.Architecture, pos: Sequence[A.Position], files: Dict[str, str]) -> Dict[str, Any]:
    blocks = A.blocks_of(pos, a.choices)
    present = [b for b in blocks if b is not None]
    cost = {"params": 0, "macs": 0, "flops": 0}
    for b in present:
        for k, v in M.cost(b).items():
            cost[k] += v
    return {**a.to_dict(pos), "uid": a.arch_id, "files": files,
            "input_shapes": [list(present[0].input_shape)],
            "output_shape": list(present[-1].output_shape),
            "module_uids": {g: M.module_uids(blocks, g) for g in M.GRANULARITIES}, **cost}


def accumulate(entries: Sequence[Dict[str, Any]], table: Any, granularity: str, key: str,
               stat: str) -> Dict[str, Dict[str, float]]:
    """``{arch id: {runtime: Σ table[uid][runtime][key][stat]}}`` for every table runtime.

    A module missing from the table is an error naming the module and the runtime.
    """
    out: Dict[str, Dict[str, float]] = {}
    for e in entries:
        uids = e["module_uids"][granularity]
        out[e["uid"]] = {rt: _sum(table, uids, rt, key, stat, e["uid"]) for rt in table.runtimes}
    return out


def _sum(table: Any, uids: List[str], runtime: str, key: str, stat: str, arch_id: str) -> float:
    total = 0.0
    for uid in uids:
        try:
            total += table.lookup(uid, runtime, key, stat)
        except TableError as e:
            raise TableError(f"{arch_id}: {e} (was the table measured for this search space "
                             "and granularity?)") from None
    return total


def sample(space_path: Path, num: int, seed: int, out_dir: Path, table_path: Optional[Path] = None,
           granularity: Optional[str] = None, key: str = "Layers Time", stat: str = "Median_Time",
           on_progress: Optional[Progress] = None, jobs: Optional[int] = None) -> Path:
    """Draw ``num`` networks, write their models and ``manifest.json`` (+ ``accum.json``).

    Models are written by ``jobs`` processes (default: one per CPU)."""
    from profiler.modelgen import ModelTask, write_models
    space = load_space(space_path)
    table = None
    if table_path is not None:
        from profiler.table import LatencyTable
        table = LatencyTable.load(table_path)
        granularity = granularity or table.meta.get("granularity") or "block"
    granularity = granularity or "block"
    pos = A.positions(space)
    check_shapes(pos)
    archs = A.sample(pos, num, seed)
    if table is not None:  # fail before building anything if a module is not in the table
        probe = [{"uid": a.arch_id,
                  "module_uids": {granularity: M.module_uids(A.blocks_of(pos, a.choices), granularity)}}
                 for a in archs]
        accumulate(probe, table, granularity, key, stat)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        old = {e["uid"]: e for e in read_manifest(out_dir)["entries"]}
    except ManifestError:
        old = {}
    entries: Dict[str, Dict[str, Any]] = {}
    todo = []
    for a in archs:
        prev = old.get(a.arch_id)
        if prev and prev.get("choices") == list(a.choices) and all(
                (out_dir / f).is_file() for f in prev["files"].values()):
            entries[a.arch_id] = prev
        else:
            todo.append(ModelTask(tuple(A.blocks_of(pos, a.choices)), a.arch_id, a.arch_id, "network"))
    by_id = {a.arch_id: a for a in archs}
    if on_progress:
        on_progress(len(entries), len(archs), "")

    def finished(_i: int, task: Any, result: Dict[str, Any]) -> None:
        entries[task.stem] = network_entry(by_id[task.stem], pos, {"nnp": result["nnp"], "onnx": result["onnx"]})
        if on_progress:
            on_progress(len(entries), len(archs), task.stem)

    write_models(todo, out_dir, jobs=jobs, on_done=finished)
    entries_list = [entries[a.arch_id] for a in archs]
    path = write_manifest(out_dir, {"kind": "networks", "space": space_info(space), "granularity": granularity,
                                    "seed": seed, "generator": generator_info(), "entries": entries_list})
    if table is not None:
        write_json_atomic(out_dir / ACCUM_FILE, {
            "table": str(Path(table_path).resolve()), "granularity": granularity, "key": key, "stat": stat,
            "unit": "us", "accumulated": accumulate(entries_list, table, granularity, key, stat)})
    return path
