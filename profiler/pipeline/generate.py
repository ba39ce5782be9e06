"""``profiler generate``: one NNP + ONNX model per unique module of a search space."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from profiler import __version__
from profiler.space import arch as A
from profiler.space import modules as M
from profiler.models.manifest import (files_digest, files_intact, prepare_out_dir, read_manifest,
                                      write_manifest)
from profiler.errors import ManifestError, ProfilerError
from profiler.space.searchspace import SearchSpace, load_space

Progress = Callable[[int, int, str], None]

MAX_OUTPUT_BYTES = 16 << 30  # generate/sample refuse to write more than this without force=True
Size = Callable[[int, int], None]  # on_size(count, bytes): the estimate, before anything is written


_CHECKED: Set[str] = set()  # spaces whose shapes this process has cross-checked (by sha256)


def check_shapes(pos: Sequence[A.Position]) -> None:
    """Cross-check arithmetic shapes against the shapes nnabla records in the supernet."""
    from profiler.models.build import record_supernet_shapes
    recorded = record_supernet_shapes(pos)
    for p in pos:
        for opt in p.options:
            if recorded[opt.uid] != tuple(opt.input_shape):
                raise RuntimeError(f"internal error: {opt.uid} sees {recorded[opt.uid]} in the "
                                   "nnabla supernet")


def load_checked(space_path: Path) -> Tuple[SearchSpace, List[A.Position]]:
    """The space and its positions, shapes cross-checked once per process and space content
    (``profiler run`` generates and samples the same space: the supernet is built once)."""
    space = load_space(space_path)
    pos = A.positions(space)
    check_once(space, pos)
    return space, pos


def check_once(space: SearchSpace, pos: Sequence[A.Position]) -> None:
    """Cross-check the shapes of ``space`` (builds every option once per process and space)."""
    if space.sha256 not in _CHECKED or not space.sha256:
        check_shapes(pos)
        _CHECKED.add(space.sha256)


def _previous(out_dir: Path) -> Dict[str, Dict[str, Any]]:
    try:
        doc = read_manifest(out_dir)
    except ManifestError:
        return {}
    return {e["uid"]: e for e in doc["entries"] if files_intact(out_dir, e)}


def write_models_checked(todo: Sequence[Any], out_dir: Path, on_done: Callable, jobs: Optional[int],
                         total: int, kept: Callable[[], int]) -> None:
    """``write_models`` with a full disk (or any OS error) as one clear error; temporary
    files of the failed run are removed."""
    from profiler.models.build import write_models
    try:
        write_models(todo, out_dir, jobs=jobs, on_done=on_done)
    except OSError as e:
        for tmp in list(out_dir.glob(".*.tmp-*")) + list(out_dir.glob("*.tmp.nnp")):
            try:
                tmp.unlink()
            except OSError:
                pass
        what = "disk full" if e.errno == 28 else f"cannot write models ({e.strerror or e})"
        raise ProfilerError(f"{out_dir}: {what}: {kept()} of {total} models written; free space "
                            "and re-run the same command (written models are reused)") from None


def module_entry(spec: M.ModuleSpec, files: Dict[str, str]) -> Dict[str, Any]:
    entry: Dict[str, Any] = {
        "uid": spec.uid,
        "name": spec.name,
        "op_type": spec.op_type,
        "files": files,
        "input_shapes": [list(s) for s in spec.input_shapes],
        "output_shape": list(spec.output_shape),
        "attrs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.attrs},
        **M.cost(spec),
    }
    if spec.name in M.BLOCK_TYPES:
        entry["leaves"] = [leaf.uid for leaf in spec.leaves()]
    return entry


def space_info(space: SearchSpace) -> Dict[str, Any]:
    """The manifest's ``space``: name, path as given, sha256 of the file, and the document itself
    (so a fit needs no space file: the networks were sampled from exactly this)."""
    return {"name": space.name, "path": space.path, "sha256": space.sha256, "document": space.document}


def generator_info() -> Dict[str, Any]:
    import nnabla
    from profiler.models.build import ONNX_OPSET
    return {"profiler": __version__, "nnabla": nnabla.__version__, "onnx_opset": ONNX_OPSET}


def model_bytes(specs: Sequence[M.ModuleSpec]) -> int:
    """About how many bytes one model of ``specs`` takes on disk, NNP and ONNX together: float32
    parameters twice, one activation-sized constant per ReLU6 (nnabla's ONNX exporter writes
    one; h-swish and h-sigmoid contain one), plus a few KiB of graph per module (arithmetic, no
    model built)."""
    total = 0
    for spec in specs:
        leaves = spec.leaves() if spec.name in M.BLOCK_TYPES else [spec]
        relu6 = sum(4 * M._numel(leaf.input_shape) for leaf in leaves
                    if leaf.name in ("ReLU6", "Hswish", "Hsigmoid"))
        total += 8 * M.cost(spec)["params"] + relu6 + 8192
    return total


def estimate_output(space_path: Path, granularity: str = "block") -> Tuple[int, int]:
    """``(modules, bytes)`` that :func:`generate` would write (see :func:`model_bytes`)."""
    specs = A.candidate_modules(load_space(space_path), granularity)
    return len(specs), sum(model_bytes([s]) for s in specs)


def _free_bytes(path: Path) -> Optional[int]:
    """Free bytes on the filesystem that ``path`` (or its nearest existing parent) is on."""
    import os
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _present_bytes(out_dir: Path) -> int:
    """Bytes of models already in ``out_dir`` (a re-run reuses them)."""
    try:
        return sum(f.stat().st_size for f in Path(out_dir).iterdir() if f.suffix in (".nnp", ".onnx"))
    except OSError:
        return 0


def check_output_size(where: str, what: str, size: int, force: bool, out_dir: Optional[Path] = None) -> None:
    """Refuse, unless ``force``, to write more than :data:`MAX_OUTPUT_BYTES` or more than the
    free space under ``out_dir`` (models already there count as written); ``what``: e.g. "12 modules"."""
    if force:
        return
    gib = size / 2**30
    if size > MAX_OUTPUT_BYTES:
        raise ManifestError(f"{where}: {what} would write about {gib:.1f} GiB "
                            f"(more than {MAX_OUTPUT_BYTES / 2**30:.0f} GiB); shrink it or pass --force")
    if out_dir is None:
        return
    free = _free_bytes(out_dir)
    need = size - _present_bytes(out_dir)
    if free is not None and need > free:
        raise ManifestError(f"{where}: {what} would write about {gib:.1f} GiB but only {free / 2**30:.1f} GiB "
                            f"are free under {out_dir}; free some space, choose another --out or pass --force")


def generate(space_path: Path, out_dir: Path, granularity: str = "block",
             on_progress: Optional[Progress] = None, jobs: Optional[int] = None,
             force: bool = False, on_size: Optional[Size] = None) -> Path:
    """Write every unique module of the space and ``manifest.json``; return the manifest path.

    Files already written by an earlier run for the same UID are reused; nothing else in
    ``out_dir`` is touched. Models are written by ``jobs`` processes (default: one per CPU).
    """
    from profiler.models.build import ModelTask
    n, size = estimate_output(space_path, granularity)
    if on_size:
        on_size(n, size)
    check_output_size(str(space_path), f"{n} modules", size, force, out_dir)
    space, pos = load_checked(space_path)
    prepare_out_dir(out_dir, "modules")
    specs = A.candidate_modules(space, granularity)
    previous = _previous(out_dir)
    entries: Dict[str, Dict[str, Any]] = {}
    todo = []
    for spec in specs:
        old = previous.get(spec.uid)
        if old is not None and old.get("generator") == __version__:
            entries[spec.uid] = old
        else:
            todo.append(ModelTask((spec,), M.file_stem(spec.uid), spec.uid, "module"))
    done = [len(entries)]
    if on_progress:
        on_progress(done[0], len(specs), "")

    def finished(_i: int, task: Any, result: Dict[str, Any]) -> None:
        spec = task.blocks[0]
        entry = module_entry(spec, {"nnp": result["nnp"], "onnx": result["onnx"]})
        entry["sha256"] = files_digest(out_dir, entry["files"])
        if result["output_shape"] != entry["output_shape"]:
            raise RuntimeError(f"internal error: {spec.uid} builds output {result['output_shape']}")
        entry["generator"] = __version__
        entries[spec.uid] = entry
        done[0] += 1
        if on_progress:
            on_progress(done[0], len(specs), spec.uid)

    write_models_checked(todo, out_dir, finished, jobs, len(specs), lambda: done[0])
    constant = constant_entry(out_dir, pos, previous_constant(out_dir))
    return write_manifest(out_dir, {"kind": "modules", "space": space_info(space),
                                    "granularity": granularity, "generator": generator_info(),
                                    "entries": [entries[spec.uid] for spec in specs],
                                    "constant": constant})


def previous_constant(out_dir: Path) -> Optional[Dict[str, Any]]:
    try:
        old = read_manifest(out_dir).get("constant")
    except ManifestError:
        return None
    return old if isinstance(old, dict) and files_intact(out_dir, old) else None


def constant_entry(out_dir: Path, pos: Sequence[A.Position],
                   old: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The manifest's ``constant`` entry: the null network (the space's input shape in, its
    output shape out, no compute) whose measurement is the table's per-network constant row
    (:data:`profiler.keys.NETWORK_CONSTANT_UID`); written once, reused while intact."""
    from profiler.keys import NETWORK_CONSTANT_UID
    in_shape = list(pos[0].options[0].input_shape)
    out_shape = list(pos[-1].options[0].output_shape)
    if old is not None and old.get("generator") == __version__ and old.get("input_shapes") == [in_shape] \
            and old.get("output_shape") == out_shape:
        return old
    from profiler.models.build import write_null_model
    files = write_null_model(out_dir, "network-constant", in_shape, out_shape)
    return {"uid": NETWORK_CONSTANT_UID, "name": "null network", "files": files,
            "input_shapes": [in_shape], "output_shape": out_shape,
            "sha256": files_digest(out_dir, files), "generator": __version__}
