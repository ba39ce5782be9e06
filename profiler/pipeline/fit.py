"""``profiler fit``: pair sampled networks with their measurements by id, fit, write estimator.py.

x = accumulated latency of a network (sum of its modules' table look-ups, table key/stat, plus
the table's per-network constant ``@network`` once, under the measured key),
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
    space: Dict[str, Any] = field(default_factory=dict)  # the networks manifest's space (name, path, sha256)
    modules: Dict[str, List[List[str]]] = field(default_factory=dict)  # runtime -> module uids per network
    extremes: Dict[str, str] = field(default_factory=dict)             # id -> extreme name (manifest)
    constants: Dict[str, float] = field(default_factory=dict)  # runtime -> per-network constant (µs)
    drift: Dict[str, float] = field(default_factory=dict)  # runtime -> network/module session speed ratio


def collect_pairs(sampled: Path, measured: Sequence[Path], table: Any, key: str, stat: str,
                  table_key: str, table_stat: str, runtimes: Optional[Sequence[str]] = None,
                  normalise: bool = False) -> FitInputs:
    doc = read_manifest(sampled)
    if doc.get("kind") != "networks":
        raise FitError(f"{sampled}: holds modules, not sampled networks (use 'profiler sample')")
    # the table's granularity decides which module list of each network is looked up (every
    # sampled network lists its modules at both granularities)
    granularity = table.meta.get("granularity") or doc.get("granularity") or "block"
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
    from profiler.table.accumulate import constant, network_sum
    inputs = FitInputs({}, {}, granularity, dict(doc.get("space") or {}))
    inputs.extremes = {e["uid"]: e["extreme"] for e in doc["entries"] if e.get("extreme")}
    for rt in chosen:
        if rt not in table.runtimes:
            raise FitError(f"runtime {rt} is not in the table (it has {', '.join(table.runtimes)})")
        factor = drift_factor(sampled, doc, meas, table, rt, table_key, table_stat) if normalise else 1.0
        inputs.drift[rt] = factor
        ids, xs, ys, missing, mods = [], [], [], [], []
        for e in doc["entries"]:
            rec = meas.get((e["uid"], rt))
            if rec is None:
                missing.append(e["uid"])
                continue
            if key not in rec.get("stats", {}):
                raise FitError(f"{e['uid']} on {rt}: the measurement has no {key!r} "
                               f"(it has {', '.join(rec.get('stats', {}))}); choose --key")
            ids.append(e["uid"])
            mods.append(list(e["module_uids"][granularity]))
            xs.append(network_sum(table, e["module_uids"][granularity], rt, table_key, table_stat, e["uid"],
                                  const_key=key))
            ys.append(float(rec["stats"][key][stat]) / factor)
        inputs.pairs[rt] = (ids, xs, ys)
        inputs.missing[rt] = missing
        inputs.modules[rt] = mods
        inputs.constants[rt] = constant(table, rt, key, table_stat)
    return inputs


def drift_factor(sampled: Path, doc: Dict[str, Any], meas: Dict[Tuple[str, str], Dict[str, Any]], table: Any,
                 rt: str, table_key: str, table_stat: str) -> float:
    """The drift normaliser: the reference block's latency in the network session over its
    row in the table (the module session), under the table key/stat. Every measured network
    latency is divided by it (the networks expressed at the module session's speed)."""
    from profiler.keys import REFERENCE_UID
    ref = doc.get("reference")
    if not isinstance(ref, dict) or not ref.get("of"):
        raise FitError(f"{sampled}: has no drift reference (sampled by an older profiler); re-run "
                       "'profiler sample' and bench the networks again, or drop --normalise")
    rec = meas.get((REFERENCE_UID, rt))
    if rec is None or table_key not in rec.get("stats", {}):
        raise FitError(f"--normalise: the network store has no {table_key!r} of the drift reference on {rt} "
                       "(measured by an older profiler or on a phone); bench the networks again or drop --normalise")
    try:
        base = table.lookup(ref["of"], rt, table_key, table_stat)
    except TableError:
        raise FitError(f"--normalise: the table has no {table_key!r} of the reference block {ref['of'][:60]}... "
                       f"on {rt} (normalising needs a block-granularity table of this space); drop --normalise") from None
    now = float(rec["stats"][table_key][table_stat])
    if not (base > 0 and now > 0):
        raise FitError(f"--normalise: the drift reference measured {now} µs against {base} µs in the table")
    return now / base


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
                  table_key: str = "Forward Propagate", table_stat: str = "Median_Time", robust: bool = False,
                  folds: int = 5, seed: int = 0, runtimes: Optional[Sequence[str]] = None,
                  model: str = "auto", normalise: bool = False) -> Dict[str, Any]:
    """Fit per runtime and write ``out`` (estimator.py) plus report.json/report.png beside it."""
    from profiler.fit.codegen import write_estimator, write_nnabla_nas_adapter
    from profiler.fit.models import fit_runtimes, op_type
    from profiler.fit.report import write_report
    from profiler.table.latency import LatencyTable

    if Path(out).is_dir() or Path(out).name.endswith(("/", ".json")):
        raise FitError(f"--out {out}: is a directory or not a .py file; name the estimator.py to write")
    table = LatencyTable.load(table_path)
    inputs = collect_pairs(sampled, measured, table, key, stat, table_key, table_stat, runtimes, normalise)
    values = {rt: {uid: table.lookup(uid, rt, table_key, table_stat) for uid in table.module_uids
                   if _has(table, uid, rt, table_key, table_stat)} for rt in inputs.pairs}
    op_types = {uid: op_type(uid) for uid in table.module_uids}
    networks = {rt: (inputs.modules[rt], values[rt], op_types) for rt in inputs.pairs}
    report = fit_runtimes(inputs.pairs, robust=robust, folds=folds, seed=seed, model=model,
                          networks=networks, extremes=inputs.extremes, constants=inputs.constants)
    calibrations = {rt: r.calibration for rt, r in report.runtimes.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = report.to_dict()
    info.update({"target_key": key, "target_stat": stat, "table_key": table_key, "table_stat": table_stat,
                 "granularity": inputs.granularity, "missing": inputs.missing,
                 "normalise": bool(normalise), "drift": inputs.drift, "network_constant": inputs.constants})
    files = write_report(report, out.parent, extra=info)
    accuracy = {rt: r.heldout_after for rt, r in report.runtimes.items()}
    prov = provenance(table, table_path, {"granularity": inputs.granularity, "measured_key": key,
                                          "measured_stat": stat, "heldout": accuracy})
    space = sampled_space(sampled, inputs.space, inputs.granularity)
    write_estimator(out, calibrations, table_key, table_stat, prov, space)
    adapter = write_nnabla_nas_adapter(out)
    return {"report": report, "files": {"estimator": out, "nnabla_nas_estimator": adapter, **files},
            "missing": inputs.missing, "calibrations": calibrations}


def _has(table: Any, uid: str, rt: str, key: str, stat: str) -> bool:
    import math
    try:
        return not math.isnan(table.lookup(uid, rt, key, stat))
    except TableError:
        return False


def sampled_space(sampled: Path, info: Dict[str, Any], granularity: str) -> Dict[str, Any]:
    """The space the networks were sampled from, described for the estimator: the document embedded
    in the manifest, else (older manifests) the file at its path, its sha256 checked."""
    from profiler.errors import SpaceError
    from profiler.space.searchspace import load_space, parse_document
    path = info.get("path")
    if isinstance(info.get("document"), dict):  # embedded since manifests of 2026-12-03
        try:
            return describe_space(parse_document(info["document"], str(path), str(info.get("sha256", ""))),
                                  granularity)
        except SpaceError as e:
            raise FitError(f"{sampled}: the search space in its manifest is not valid ({e}); "
                           "re-run 'profiler sample'") from None
    if not path:
        raise FitError(f"{sampled}: the networks manifest names no search space; re-run 'profiler sample'")
    try:
        space = load_space(path)
    except SpaceError as e:
        raise FitError(f"{sampled}: its search space cannot be read ({e}); restore it or re-run 'profiler sample'") from None
    if info.get("sha256") and space.sha256 != info["sha256"]:
        raise FitError(f"{sampled}: search space {path} changed since sampling (sha256 {space.sha256[:12]}, "
                       f"manifest {str(info['sha256'])[:12]}); restore it or re-run 'profiler sample'")
    return describe_space(space, granularity)


def describe_space(space: Any, granularity: str = "block") -> Dict[str, Any]:
    """What the estimator needs of a :class:`~profiler.space.searchspace.SearchSpace` (plain JSON).

    ``positions``: one entry per choice block (index, block = place in the network, stage =
    index of its stage in the space's ``layers``, stride, input shape, out_channels, skip,
    ``labels`` as in the rest of the project (``MB6_k5``; ``skip`` last when allowed) and
    ``modules``: per label the UIDs at ``granularity`` (skip: none)); ``fixed``: the fixed blocks
    (block, label, modules); ``depths``: the elastic-depth stages (``blocks``: their choice blocks,
    ``depths``: the allowed depths; only trailing blocks may be skipped).
    """
    from profiler.space import arch as A
    from profiler.space import modules as M
    from profiler.space.searchspace import ChoiceStage

    pos = A.positions(space)
    stages: List[int] = []
    for li, layer in enumerate(space.layers):
        stages.extend([li] * (layer.blocks if isinstance(layer, ChoiceStage) else 1))
    positions, fixed = [], []
    for p, stage in zip(pos, stages):
        if not p.choice:
            fixed.append({"block": p.index, "label": p.labels[0],
                          "modules": M.module_uids([p.options[0]], granularity)})
            continue
        first = p.options[0]
        labels = [p.label(j) for j in range(p.n_choices)]
        positions.append({"index": len(positions), "block": p.index, "stage": stage,
                          "stride": int(first.attr("stride")[0]), "shape": list(first.input_shape),
                          "out_channels": int(first.attr("out_channels")), "skip": p.skip, "labels": labels,
                          "modules": [M.module_uids([p.block(j)], granularity) for j in range(p.n_choices)]})
    depths = [{"blocks": idx, "depths": list(allowed)}
              for idx, allowed in A.depth_groups([p for p in pos if p.choice])]
    return {"name": space.name, "sha256": space.sha256, "granularity": granularity,
            "positions": positions, "fixed": fixed, "depths": depths}
