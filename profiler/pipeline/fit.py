"""``profiler fit``: pair sampled networks with their measurements by id, fit, write estimator.py.

x = accumulated latency of a network (sum of its modules' table look-ups, table key/stat),
y = its measured whole-network latency (``key``/``stat`` of the measured store). Pairing is
by architecture id, checked by content (the store records each measured model's
:func:`~profiler.models.manifest.entry_digest`); a network without a successful measurement is left out and counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from profiler import __version__
from profiler.errors import FitError, TableError
from profiler.models.manifest import entry_digest, read_manifest
from profiler.session.record import now_iso
from profiler.session.store import read_store

Pairs = Dict[str, Tuple[List[str], List[float], List[float]]]


@dataclass
class FitInputs:
    pairs: Pairs
    missing: Dict[str, List[str]] = field(default_factory=dict)  # runtime -> ids without measurement
    granularity: str = "block"


def collect_pairs(sampled: Path, measured: Sequence[Path], table: Any, key: str, stat: str,
                  table_key: str, table_stat: str, runtimes: Optional[Sequence[str]] = None) -> FitInputs:
    doc = read_manifest(sampled)
    if doc.get("kind") != "networks":
        raise FitError(f"{sampled}: holds modules, not sampled networks (use 'profiler sample')")
    granularity = doc.get("granularity") or "block"
    meas: Dict[Tuple[str, str], Dict[str, Any]] = {}
    digests = {e["uid"]: entry_digest(e) for e in doc["entries"]}
    for path in measured:
        contents = read_store(path)
        for (uid, rt), rec in contents.latest().items():
            if rec["status"] != "ok":
                continue
            if uid in digests and rec.get("entry") and rec["entry"] != digests[uid]:
                src = (contents.meta.get("models") or {}).get("dir") or "other models"
                raise FitError(f"{path}: measured the networks of {src}, not those of {sampled} "
                               f"({uid} differs); pass the --measured store of these --sampled networks")
            meas[(uid, rt)] = rec
    measured_rts = sorted({rt for _, rt in meas})
    chosen = list(runtimes) if runtimes else [rt for rt in measured_rts if rt in table.runtimes]
    if not chosen:
        raise FitError(f"no runtime is both measured ({', '.join(measured_rts) or 'none'}) and in the "
                       f"table ({', '.join(table.runtimes)})")
    from profiler.table.accumulate import network_sum
    inputs = FitInputs({}, {}, granularity)
    for rt in chosen:
        if rt not in table.runtimes:
            raise FitError(f"runtime {rt} is not in the table (it has {', '.join(table.runtimes)})")
        ids, xs, ys, missing = [], [], [], []
        for e in doc["entries"]:
            rec = meas.get((e["uid"], rt))
            if rec is None:
                missing.append(e["uid"])
                continue
            if key not in rec.get("stats", {}):
                raise FitError(f"{e['uid']} on {rt}: the measurement has no {key!r} "
                               f"(it has {', '.join(rec.get('stats', {}))}); choose --key")
            ids.append(e["uid"])
            xs.append(network_sum(table, e["module_uids"][granularity], rt, table_key, table_stat, e["uid"]))
            ys.append(float(rec["stats"][key][stat]))
        inputs.pairs[rt] = (ids, xs, ys)
        inputs.missing[rt] = missing
    return inputs


def table_sha256(table_path: Path) -> str:
    p = Path(table_path)
    candidates = [p] if p.suffix in (".json", ".csv") else [p.with_suffix(".json"), Path(f"{p}.json")]
    for c in candidates:
        if c.is_file():
            return hashlib.sha256(c.read_bytes()).hexdigest()
    return ""


def provenance(table: Any, table_path: Path, extra: Dict[str, Any]) -> Dict[str, Any]:
    meta = table.meta
    device = (meta.get("ro.product.model") or meta.get("device.ro.product.model")
              or meta.get("device.cpu_model") or meta.get("target") or "unknown")
    tools = {k.split(".", 1)[1]: v for k, v in meta.items() if k.startswith("tools.")}
    sdk = meta.get("SNPE SDK version") or meta.get("tools.snpe") or ", ".join(
        f"{k} {v}" for k, v in sorted(tools.items())) or "unknown"
    return {"device": device, "target": meta.get("target", "unknown"), "sdk": sdk,
            "date": now_iso(), "table": str(Path(table_path)), "table_sha256": table_sha256(table_path),
            "profiler_version": __version__, "space": meta.get("space"), **extra}


def fit_estimator(sampled: Path, measured: Sequence[Path], table_path: Path, out: Path,
                  key: str = "Total Inference Time", stat: str = "Median_Time",
                  table_key: str = "Layers Time", table_stat: str = "Median_Time", robust: bool = False,
                  folds: int = 5, seed: int = 0, runtimes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Fit per runtime and write ``out`` (estimator.py) plus report.json/report.png beside it."""
    from profiler.fit.codegen import write_estimator
    from profiler.fit.models import fit_runtimes
    from profiler.fit.report import write_report
    from profiler.table.latency import LatencyTable

    if Path(out).is_dir() or Path(out).name.endswith(("/", ".json")):
        raise FitError(f"--out {out}: is a directory or not a .py file; name the estimator.py to write")
    table = LatencyTable.load(table_path)
    inputs = collect_pairs(sampled, measured, table, key, stat, table_key, table_stat, runtimes)
    report = fit_runtimes(inputs.pairs, robust=robust, folds=folds, seed=seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = report.to_dict()
    info.update({"target_key": key, "target_stat": stat, "table_key": table_key, "table_stat": table_stat,
                 "granularity": inputs.granularity, "missing": inputs.missing})
    files = write_report(report, out.parent, extra=info)
    coefs = {rt: (r.scale, r.bias) for rt, r in report.runtimes.items()}
    values = {rt: {uid: table.lookup(uid, rt, table_key, table_stat) for uid in table.uids
                   if _has(table, uid, rt, table_key, table_stat)} for rt in coefs}
    accuracy = {rt: r.heldout_after for rt, r in report.runtimes.items()}
    prov = provenance(table, table_path, {"granularity": inputs.granularity, "measured_key": key,
                                          "measured_stat": stat, "heldout": accuracy})
    write_estimator(out, values, coefs, table_key, table_stat, prov)
    return {"report": report, "files": {"estimator": out, **files}, "missing": inputs.missing}


def _has(table: Any, uid: str, rt: str, key: str, stat: str) -> bool:
    import math
    try:
        return not math.isnan(table.lookup(uid, rt, key, stat))
    except TableError:
        return False
