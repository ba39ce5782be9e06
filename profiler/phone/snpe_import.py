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
from profiler.phone.snpe import BenchImport, load_bench_results
from profiler.session.record import measured, now_iso, stored
from profiler.session.store import ResultsStore, read_store
from profiler.phone.snpe.results import samples_from_summary  # re-exported: the rebuild lives in profiler.phone.snpe

IMPORT_TARGET = "snpe_bench"
REBUILT_NOTE = ("imported from snpe_bench: only Min/Avg/Max over {runs} runs are known; the samples are "
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


def _match(benches: Sequence[Tuple[Path, BenchImport]], models: Path) -> List[Tuple[Path, BenchImport, str]]:
    doc = read_manifest(models)
    by_name: Dict[str, str] = {}
    for e in doc["entries"]:
        for f in e["files"].values():
            by_name.setdefault(Path(f).stem, e["uid"])
        by_name.setdefault(e["uid"], e["uid"])
    out = []
    for path, bench in benches:
        names = _names(bench, path)
        uids = list(dict.fromkeys(by_name[n] for n in names if n in by_name))
        if not uids:
            raise ResultsError(f"{path}: no module of {models}/manifest.json is named {' or '.join(names) or '?'} "
                               "(Model:Dlc / Name of the snpe_bench config); use --uid for a single file")
        if len(uids) > 1:
            raise ResultsError(f"{path}: matches several modules ({', '.join(u[:60] for u in uids)}); use --uid")
        out.append((path, bench, uids[0]))
    return out


def import_bench_results(files: Sequence[Path], out: Path, *, uid: Optional[str] = None,
                         models: Optional[Path] = None) -> ImportSummary:
    """Read snpe_bench results and append one record per (module, flavor) to the store ``out``."""
    if not files:
        raise ProfilerError("import-snpe-bench: give at least one --results file")
    benches = [(Path(f), load_bench_results(f)) for f in files]
    if uid is not None:
        if len(benches) != 1:
            raise ProfilerError("--uid names one module: give exactly one --results file, or use --models "
                                "to match several files to modules by name")
        matched = [(benches[0][0], benches[0][1], uid)]
    elif models is not None:
        matched = _match(benches, models)
    else:
        raise ProfilerError("import-snpe-bench: give --uid UID or --models DIR")
    summary = ImportSummary(Path(out))
    records: List[Dict[str, Any]] = []
    seen: Dict[Tuple[str, str], Path] = {}
    device: Dict[str, Any] = {}
    versions = set()
    for path, bench, module in matched:
        if bench.sdk_version:
            versions.add(bench.sdk_version)
        for key, name in _DEVICE_KEYS.items():
            if bench.device.get(key) and bench.device[key] != "unknown":
                device.setdefault(name, bench.device[key])
        runs_cfg = bench.config.get("Runs")
        for flavor in bench.flavors.values():
            lat = flavor.latencies()
            if not lat:
                summary.notes.append(f"{path}: flavor {flavor.flavor} has no latency rows; skipped")
                continue
            if (module, flavor.flavor) in seen:
                raise ResultsError(f"{path}: {flavor.flavor} of {module[:60]} is also in {seen[(module, flavor.flavor)]}; "
                                   "import each measurement once")
            seen[(module, flavor.flavor)] = path
            runs = flavor.runs or (int(runs_cfg) if runs_cfg and str(runs_cfg).isdigit() else None)
            samples = {}
            for key, s in lat.items():
                try:
                    samples[key] = samples_from_summary(s["Min_Time"], s["Avg_Time"], s["Max_Time"], runs)
                except ValueError as e:
                    raise ResultsError(f"{path}: {flavor.flavor} {key}: {e}") from None
            raw = measured(module, samples, imported={
                "file": str(path), "flavor": flavor.flavor, "runs": runs,
                "sdk_version": bench.sdk_version, "summary": lat})
            records.append(stored(raw, flavor.flavor, warnings=[
                REBUILT_NOTE.format(runs=runs if runs else "an unknown number of")]))
            summary.records.append((module, flavor.flavor, str(path)))
    if not records:
        raise ResultsError("no timing results to import in " + ", ".join(str(p) for p, _ in benches))
    meta = {"target": IMPORT_TARGET, "device": device, "tools": {"snpe": "; ".join(sorted(versions)) or None},
            "runtimes": sorted({r["runtime"] for r in records}), "profiler": __version__, "date": now_iso(),
            "imported": [str(p) for p, _ in benches],
            "models": {"dir": str(Path(models).resolve()) if models else None, "kind": None,
                       "granularity": None, "space": None}}
    out = Path(out)
    if out.exists():
        existing = read_store(out)
        if existing.meta.get("target") != IMPORT_TARGET:
            raise ResultsError(f"{out}: holds a {existing.meta.get('target')!r} bench session; import into a "
                               "new store (profiler table --results takes several stores)")
        store, _ = ResultsStore.resume(out, meta)
    else:
        store = ResultsStore.create(out, meta)
    with store:
        for rec in records:
            store.add(rec)
    return summary


__all__ = ["IMPORT_TARGET", "ImportSummary", "import_bench_results", "samples_from_summary"]
