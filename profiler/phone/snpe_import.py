"""``profiler import-snpe-bench``: the SDK's own snpe_bench.py results -> a results store.

snpe_bench (``$SNPE_ROOT/benchmarks/snpe_bench.py``) measures one DLC per config on one phone
and writes ``benchmark_stats_<Name>.csv`` (and ``.json`` with ``-json``): per flavor (``CPU``,
``GPU_FP16``, ``DSP_ub_tf8``, ...) Min/Avg/Max over its runs, not the raw samples. Each flavor
becomes one record whose runtime is the flavor name, so ``profiler table`` reads it like a
bench session.

Our stores keep raw samples, so each key's samples are rebuilt from (min, avg, max, runs) by
:func:`profiler.phone.snpe.results.samples_from_summary`: ``[min, max]`` plus ``runs - 2`` copies of
``(runs * avg - min - max) / (runs - 2)``; with 1 or 2 runs the file's Min/Avg/Max exactly
(a third value is added when Avg is not the midpoint). The table's Min/Avg/Max are then the
imported ones; Median/Std/P90 of such
records describe the rebuilt samples, not real ones, and every record says so in its warnings
and in ``imported``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from profiler import __version__
from profiler.errors import ProfilerError, ResultsError
from profiler.models.manifest import read_manifest
from profiler.keys import LATENCY_KEYS
from profiler.phone.snpe import (BenchImport, ImportedProfile, bench_profiles, load_ai_hub_profile,
                                 load_bench_results, load_diagview_csv, parse_qnn_profile_file)
from profiler.session.record import measured, now_iso, stored
from profiler.session.store import ResultsStore, read_store
from profiler.phone.snpe.results import samples_from_summary  # re-exported: the rebuild lives in profiler.phone.snpe

IMPORT_TARGET = "snpe_bench"
REBUILT_NOTE = ("imported from {tool}: only Min/Avg/Max over {runs} runs are known; the samples are "
                "rebuilt to reproduce them (Median/Std/P90 are not measured values)")
_DEVICE_KEYS = {"ro.product.model": "model", "ro.product.board": "board", "ro.product.cpu.abi": "abi",
                "ro.build.version.sdk": "android_sdk", "ro.product.manufacturer": "manufacturer"}


@dataclass
class ImportSummary:
    store: Path
    records: List[Tuple[str, str, str]] = field(default_factory=list)   # (uid, runtime, source file)
    notes: List[str] = field(default_factory=list)

    def lines(self) -> List[str]:
        out = [f"imported {len(self.records)} results ({len({r[0] for r in self.records})} modules, runtimes "
               f"{', '.join(sorted({r[1] for r in self.records}))}) -> {self.store}"]
        return out + [f"note: {n}" for n in self.notes]


def _names(bench: BenchImport, path: Path) -> List[str]:
    """Names that may identify the benchmarked model: DLC stem, Model:Name, Name, file suffix."""
    out = []
    dlc = bench.config.get("Model:Dlc")
    if dlc:
        stem = Path(dlc.replace("\\", "/")).name
        stem = stem[:-4] if stem.lower().endswith(".dlc") else stem
        out += [stem, stem[: -len("_quantized")] if stem.endswith("_quantized") else stem]
        if ".q" in stem:
            out.append(stem.split(".q")[0])
    for key in ("Model:Name", "Name"):
        if bench.config.get(key):
            out.append(bench.config[key])
    if path.stem.startswith("benchmark_stats_"):
        out.append(path.stem[len("benchmark_stats_"):])
    return [n for n in dict.fromkeys(out) if n]


FORMATS = ("snpe-bench", "qnn-profile", "ai-hub", "diagview-csv")
IMPORT_TARGETS = {"snpe-bench": IMPORT_TARGET, "qnn-profile": "qnn_profile", "ai-hub": "ai_hub",
                  "diagview-csv": "diagview_csv"}
_DEFAULT_RUNTIME = {"qnn-profile": "HTP", "diagview-csv": "DSP"}  # AI Hub: its compute units


def _load(fmt: str, path: Path, runtime: Optional[str]) -> Tuple[List[ImportedProfile], List[str], List[str]]:
    """``(profiles, names that may identify the module, notes)`` of one file in format ``fmt``."""
    if fmt == "snpe-bench":
        if runtime:
            raise ProfilerError("--runtime does not apply to --format snpe-bench: its flavors (CPU, "
                                "DSP_ub_tf8, ...) are the runtimes")
        bench = load_bench_results(path)
        profiles = bench_profiles(bench)
        notes = [f"{path}: flavor {f.flavor} has no latency rows; skipped"
                 for f in bench.flavors.values() if not f.latencies()]
        return profiles, _names(bench, path), notes
    if fmt == "qnn-profile":
        prof = parse_qnn_profile_file(path).to_profile(runtime or _DEFAULT_RUNTIME[fmt])
    elif fmt == "ai-hub":
        prof = load_ai_hub_profile(path, runtime=runtime or "")
    elif fmt == "diagview-csv":
        prof = load_diagview_csv(path, runtime=runtime or _DEFAULT_RUNTIME[fmt])
    else:
        raise ProfilerError(f"--format {fmt}: unknown (choose from {', '.join(FORMATS)})")
    return [prof], [path.stem], []


def _match_names(named: Sequence[Tuple[Path, List[str]]], models: Path, hint: str) -> List[str]:
    doc = read_manifest(models)
    by_name: Dict[str, str] = {}
    for e in doc["entries"]:
        for f in e["files"].values():
            by_name.setdefault(Path(f).stem, e["uid"])
        by_name.setdefault(e["uid"], e["uid"])
    out = []
    for path, names in named:
        uids = list(dict.fromkeys(by_name[n] for n in names if n in by_name))
        if not uids:
            raise ResultsError(f"{path}: no module of {models}/manifest.json is named {' or '.join(names) or '?'} "
                               f"({hint}); use --uid for a single file")
        if len(uids) > 1:
            raise ResultsError(f"{path}: matches several modules ({', '.join(u[:60] for u in uids)}); use --uid")
        out.append(uids[0])
    return out


def import_profiles(files: Sequence[Path], out: Path, *, fmt: str = "snpe-bench", uid: Optional[str] = None,
                    models: Optional[Path] = None, runtime: Optional[str] = None) -> ImportSummary:
    """Read profiles of format ``fmt`` (:data:`FORMATS`) and append one record per (module,
    runtime) to the store ``out``.

    The module is ``uid`` (one file) or, with ``models``, the module whose model file is named
    like the profile (snpe_bench: the DLC / config Name; other formats: the file's stem). Per-run
    values (AI Hub ``all_inference_times``, one run of qnn-profile-viewer or diagview CSV) are
    stored as they are; Min/Avg/Max summaries (snpe_bench) are rebuilt into samples with
    :func:`samples_from_summary` and say so in the record's warnings.
    """
    if fmt not in FORMATS:
        raise ProfilerError(f"--format {fmt}: unknown (choose from {', '.join(FORMATS)})")
    if not files:
        raise ProfilerError(f"import --format {fmt}: give at least one file")
    loaded = [(Path(f),) + _load(fmt, Path(f), runtime) for f in files]
    if uid is not None:
        if len(loaded) != 1:
            raise ProfilerError("--uid names one module: give exactly one file, or use --models to match "
                                "several files to modules by name")
        modules = [uid]
    elif models is not None:
        hint = "Model:Dlc / Name of the snpe_bench config" if fmt == "snpe-bench" else "the file's name"
        modules = _match_names([(p, names) for p, _, names, _ in loaded], Path(models), hint)
    else:
        raise ProfilerError(f"import --format {fmt}: give --uid UID or --models DIR")
    summary = ImportSummary(Path(out))
    records: List[Dict[str, Any]] = []
    seen: Dict[Tuple[str, str], Path] = {}
    device: Dict[str, Any] = {}
    versions = set()
    for (path, profiles, _, notes), module in zip(loaded, modules):
        summary.notes.extend(notes)
        for prof in profiles:
            if prof.sdk_version:
                versions.add(prof.sdk_version)
            for key, name in _DEVICE_KEYS.items():
                if prof.device.get(key) and prof.device[key] != "unknown":
                    device.setdefault(name, prof.device[key])
            if (module, prof.runtime) in seen:
                raise ResultsError(f"{path}: {prof.runtime} of {module[:60]} is also in "
                                   f"{seen[(module, prof.runtime)]}; import each measurement once")
            seen[(module, prof.runtime)] = path
            try:
                samples = prof.latency_samples()
            except ValueError as e:
                raise ResultsError(f"{path}: {prof.runtime}: {e}") from None
            if not samples:
                raise ResultsError(f"{path}: no latency ({', '.join(LATENCY_KEYS)}) in this {fmt} file")
            imported: Dict[str, Any] = {"file": str(path), "format": fmt, "tool": prof.tool, "runs": prof.runs,
                                        "sdk_version": prof.sdk_version}
            if fmt == "snpe-bench":
                imported["flavor"] = prof.runtime
            if prof.summary:
                imported["summary"] = prof.summary
            if prof.stats:
                imported["stats"] = prof.stats
            if prof.notes:
                imported["notes"] = list(prof.notes)
            extras: Dict[str, Any] = {}
            if prof.layers:
                extras["layers"] = {"items": [{"index": l.index, "name": l.name, "type": l.type,
                                               "runtime": l.runtime, "unit": l.unit, "values": [l.value]}
                                              for l in prof.layers]}
            raw = measured(module, samples, imported=imported, **extras)
            warnings = [REBUILT_NOTE.format(tool="snpe_bench" if fmt == "snpe-bench" else prof.tool, runs=prof.runs if prof.runs else "an unknown number of")] \
                if prof.rebuilt else []
            records.append(stored(raw, prof.runtime, warnings=warnings))
            summary.records.append((module, prof.runtime, str(path)))
    if not records:
        raise ResultsError("no timing results to import in " + ", ".join(str(p) for p, *_ in loaded))
    target = IMPORT_TARGETS[fmt]
    meta = {"target": target, "device": device, "tools": {"snpe": "; ".join(sorted(versions)) or None},
            "runtimes": sorted({r["runtime"] for r in records}), "profiler": __version__, "date": now_iso(),
            "imported": [str(p) for p, *_ in loaded], "format": fmt,
            "models": {"dir": str(Path(models).resolve()) if models else None, "kind": None,
                       "granularity": None, "space": None}}
    out = Path(out)
    if out.exists():
        existing = read_store(out)
        if existing.meta.get("target") != target:
            raise ResultsError(f"{out}: holds a {existing.meta.get('target')!r} bench session, not {fmt} imports; "
                               "import into a new store (profiler table --results takes several stores)")
        store, _ = ResultsStore.resume(out, meta)
    else:
        store = ResultsStore.create(out, meta)
    with store:
        for rec in records:
            store.add(rec)
    return summary


def import_bench_results(files: Sequence[Path], out: Path, *, uid: Optional[str] = None,
                         models: Optional[Path] = None) -> ImportSummary:
    """snpe_bench results into the store ``out`` (``import_profiles`` with ``fmt="snpe-bench"``)."""
    return import_profiles(files, out, fmt="snpe-bench", uid=uid, models=models)


__all__ = ["FORMATS", "IMPORT_TARGET", "IMPORT_TARGETS", "ImportSummary", "import_bench_results", "import_profiles", "samples_from_summary"]
