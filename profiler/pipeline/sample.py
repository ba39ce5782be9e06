"""``profiler sample``: whole architectures drawn from a space, built as NNP + ONNX.

Each network gets an id (``arch-0007``) and its list of chosen candidates; everything
downstream (bench results, accumulated latency, the fit) is paired by that id. The
accumulated latency of a network in ``accum.json`` is the sum of the table look-ups of its
modules at the table's granularity (the form ``estimate_accum`` of estimator.py takes); the
table's per-network constant (``Total Inference Time`` of its ``@network`` row, 0 without one)
is recorded beside it as ``network_constant`` per runtime: their sum is the raw whole-network
estimate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from profiler.space import arch as A
from profiler.space import modules as M
from profiler.pipeline.generate import (Progress, Size, check_once, check_output_size, generator_info, model_bytes,
                                       space_info, write_models_checked)
from profiler.files import write_json
from profiler.models.manifest import files_digest, files_intact, prepare_out_dir, read_manifest, write_manifest
from profiler.errors import ManifestError
from profiler.space.searchspace import load_space
from profiler.keys import TOTAL_INFERENCE
from profiler.table.accumulate import accumulate, constant

ACCUM_FILE = "accum.json"
REFERENCE_STEM = "drift-reference"


def reference_entry(out_dir: Path, pos: Sequence[A.Position]) -> Dict[str, Any]:
    """The networks manifest's ``reference`` entry: the space's first block as its own model
    (the same seeded parameters as its module file), measured in every host network session;
    ``of`` names its row in a block-granularity table. Reused while intact."""
    from profiler.keys import REFERENCE_UID
    from profiler.models.build import write_model
    spec = pos[0].options[0]
    try:
        old = read_manifest(out_dir).get("reference")
    except ManifestError:
        old = None
    of = spec.uid  # the block's own row of a block-granularity table
    if isinstance(old, dict) and old.get("of") == of and files_intact(out_dir, old):
        return old
    res = write_model((spec,), out_dir, REFERENCE_STEM, spec.uid, "reference")
    files = {"nnp": res["nnp"], "onnx": res["onnx"]}
    entry = {"uid": REFERENCE_UID, "name": "drift reference", "of": of, "files": files,
             "input_shapes": [list(spec.input_shape)], "output_shape": list(spec.output_shape)}
    entry["sha256"] = files_digest(out_dir, files)
    return entry


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


def networks_bytes(pos: Sequence[A.Position], archs: Sequence[A.Architecture]) -> int:
    """About how many bytes the models of ``archs`` take (see :func:`model_bytes`)."""
    return sum(model_bytes([b for b in A.blocks_of(pos, a.choices) if b is not None]) for a in archs)


def check_sample(space: Any, pos: Sequence[A.Position], num: int, strategy: str) -> None:
    """ManifestError for a strategy, or a ``--num``, that :func:`sample` cannot draw."""
    if strategy not in A.STRATEGIES:
        raise ManifestError(f"unknown sampling strategy {strategy!r}; use one of {', '.join(A.STRATEGIES)}")
    if num < 1:
        raise ManifestError(f"--num {num}: sample at least 1 network")
    distinct = 1
    for p in pos:
        if p.choice:
            distinct *= p.n_choices
    if num > distinct:
        raise ManifestError(f"--num {num}: space {space.name!r} has only {distinct} distinct networks; "
                            f"sample at most {distinct}")


ESTIMATE_DRAWS = 1024  # beyond this many networks the size is extrapolated from the first ones


def sample_bytes(pos: Sequence[A.Position], num: int, seed: int, strategy: str) -> int:
    """Bytes the models of ``sample(pos, num, ...)`` take: exact up to :data:`ESTIMATE_DRAWS`
    networks, beyond that the first ones (a prefix of the real draw) plus their drawn mean per
    further network, so a huge ``--num`` is sized without drawing it."""
    archs = A.sample(pos, min(num, ESTIMATE_DRAWS), seed, strategy=strategy, with_extremes=True)
    size = networks_bytes(pos, archs)
    if num > len(archs):
        drawn = [a for a in archs if not a.extreme] or archs
        size += (num - len(archs)) * networks_bytes(pos, drawn) // len(drawn)
    return size


def estimate_sample(space_path: Path, num: int, seed: int, strategy: str = A.DEFAULT_STRATEGY) -> int:
    """Bytes :func:`sample` would write for these arguments (arithmetic, no model built);
    ManifestError for arguments it would refuse."""
    space = load_space(space_path)
    pos = A.positions(space)  # arithmetic only: no shape check, no model built
    check_sample(space, pos, num, strategy)
    return sample_bytes(pos, num, seed, strategy)


def sample(space_path: Path, num: int, seed: int, out_dir: Path, table_path: Optional[Path] = None,
           granularity: Optional[str] = None, key: str = "Forward Propagate", stat: str = "Median_Time",
           on_progress: Optional[Progress] = None, jobs: Optional[int] = None,
           strategy: str = A.DEFAULT_STRATEGY, force: bool = False, on_size: Optional[Size] = None) -> Path:
    """Draw ``num`` networks, write their models and ``manifest.json`` (+ ``accum.json``).

    ``strategy`` is ``spread`` (default) or ``uniform`` (see :func:`profiler.space.arch.sample`);
    the space's extreme architectures always come first (``"extreme"`` in their entries).
    Models are written by ``jobs`` processes (default: one per CPU)."""
    from profiler.models.build import ModelTask
    space = load_space(space_path)
    pos = A.positions(space)
    check_sample(space, pos, num, strategy)
    size = sample_bytes(pos, num, seed, strategy)  # before the draw: a huge --num is refused at once
    if on_size:
        on_size(num, size)
    check_output_size(str(space_path), f"{num} networks", size, force, out_dir)
    archs = A.sample(pos, num, seed, strategy=strategy, with_extremes=True)
    check_once(space, pos)  # before anything is written
    prepare_out_dir(out_dir, "networks")
    table = None
    if table_path is not None:
        from profiler.table.latency import LatencyTable
        table = LatencyTable.load(table_path)
        granularity = granularity or table.meta.get("granularity") or "block"
    granularity = granularity or "block"
    if table is not None:  # fail before building anything if a module is not in the table
        probe = [{"uid": a.arch_id,
                  "module_uids": {granularity: M.module_uids(A.blocks_of(pos, a.choices), granularity)}}
                 for a in archs]
        accumulate(probe, table, granularity, key, stat, const_key=None)
    try:
        old = {e["uid"]: e for e in read_manifest(out_dir)["entries"]}
    except ManifestError:
        old = {}
    entries: Dict[str, Dict[str, Any]] = {}
    todo = []
    for a in archs:
        prev = old.get(a.arch_id)
        if prev and prev.get("choices") == list(a.choices) and prev.get("extreme") == a.extreme and files_intact(
                out_dir, prev):
            entries[a.arch_id] = prev
        else:
            todo.append(ModelTask(tuple(A.blocks_of(pos, a.choices)), a.arch_id, a.arch_id, "network"))
    by_id = {a.arch_id: a for a in archs}
    if on_progress:
        on_progress(len(entries), len(archs), "")

    def finished(_i: int, task: Any, result: Dict[str, Any]) -> None:
        entries[task.stem] = network_entry(by_id[task.stem], pos, {"nnp": result["nnp"], "onnx": result["onnx"]})
        entries[task.stem]["sha256"] = files_digest(out_dir, entries[task.stem]["files"])
        if on_progress:
            on_progress(len(entries), len(archs), task.stem)

    write_models_checked(todo, out_dir, finished, jobs, len(archs), lambda: len(entries))
    entries_list = [entries[a.arch_id] for a in archs]
    reference = reference_entry(out_dir, pos)
    path = write_manifest(out_dir, {"kind": "networks", "space": space_info(space), "granularity": granularity,
                                    "seed": seed, "strategy": strategy, "generator": generator_info(),
                                    "entries": entries_list, "reference": reference})
    if table is not None:
        write_json(out_dir / ACCUM_FILE, {
            "table": str(Path(table_path).resolve()), "granularity": granularity, "key": key, "stat": stat,
            "unit": "us", "accumulated": accumulate(entries_list, table, granularity, key, stat, const_key=None),
            "network_constant": {rt: constant(table, rt, TOTAL_INFERENCE, stat) for rt in table.runtimes}})
    return path
