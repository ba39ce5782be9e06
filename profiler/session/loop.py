"""A bench session: measure every entry of a manifest on each runtime into a results store.

The session never prints; it reports through ``on_progress(done, total, uid, failed)``.
Targets (:mod:`profiler.host.target`, :mod:`profiler.phone.target`) implement
:class:`~profiler.session.target.Target`.
Each result is appended to the store as soon as it exists, so an interrupted session
loses at most the module in flight, and ``resume=True`` skips everything already measured.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from profiler import __version__
from profiler.errors import Interrupted, ResultsError
from profiler.models.manifest import entry_digest, entry_file, read_manifest
from profiler.session.record import now_iso, stored
from profiler.session.stats import MAX_REL_IQR, instability
from profiler.session.store import ResultsStore, StoreContents
from profiler.session.target import Batch, SessionConfig, SessionSummary, Target

Progress = Callable[[int, int, str, int], None]


def run_session(models: Path, out: Path, target: Target, cfg: SessionConfig, resume: bool = False,
                on_progress: Optional[Progress] = None) -> SessionSummary:
    """Measure every manifest entry on every runtime of ``cfg`` into the store ``out``."""
    doc = read_manifest(models)
    target.check_runtimes(cfg.runtimes)
    target.use_store(Path(out))
    meta = {**target.facts(cfg.runtimes), "runtimes": list(cfg.runtimes),
            "profiler": __version__, "date": now_iso(),
            "models": {"dir": str(Path(doc["_dir"]).resolve()), "kind": doc.get("kind"),
                       "granularity": doc.get("granularity"), "space": doc.get("space")},
            "config": {**asdict(cfg.measure), "batch_size": cfg.batch_size, "remeasure": cfg.remeasure,
                       "affinity": cfg.affinity}}
    entries = list(doc["entries"]) + _constant(doc, target)
    items = {e["uid"]: _item(doc, e) for e in entries}  # manifest problems before any write
    digests = {e["uid"]: entry_digest(e) for e in entries}

    def same_models(contents: StoreContents) -> None:
        _check_same_models(Path(out), contents, meta)

    if resume and Path(out).exists():
        store, contents = ResultsStore.resume(out, meta, check=same_models)
        done = contents.done()
    else:
        store = ResultsStore.create(out, meta)
        done = set()
    try:
        return _measure(entries, items, digests, store, done, target, cfg, Path(out), on_progress)
    except KeyboardInterrupt:
        store.close()
        kept = store.results
        lost = ("" if cfg.batch_size > 0 else "; by default the whole session is one batch, "
                "stored when it ends: use --batch-size N to store every N modules")
        raise Interrupted(f"interrupted: {out} holds {kept} results{lost}; re-run with --resume "
                          "to continue") from None


def _check_same_models(out: Path, contents: StoreContents, meta: Dict[str, Any]) -> None:
    """Refuse to resume a store measured on another target or from another space/kind of models."""
    if contents.meta.get("target") != meta["target"]:
        raise ResultsError(f"{out}: was measured on target {contents.meta.get('target')!r}, "
                           f"not {meta['target']!r}; use another --out")
    old = contents.merged_meta().get("models") or {}
    new = meta["models"]
    old_space, new_space = old.get("space") or {}, new.get("space") or {}

    def name(sp: Dict[str, Any]) -> str:
        return f"{sp.get('name')!r} ({sp.get('path')}, sha256 {str(sp.get('sha256'))[:12]})"

    if old_space.get("sha256") and new_space.get("sha256") and old_space["sha256"] != new_space["sha256"]:
        raise ResultsError(f"{out}: holds models of space {name(old_space)}, these are of space "
                           f"{name(new_space)}; use another --out for another space")
    for key in ("kind", "granularity"):
        if old.get(key) and new.get(key) and old[key] != new[key]:
            raise ResultsError(f"{out}: holds {old[key]} models, {new['dir']} has {new[key]} models; "
                               "use another --out")


def _constant(doc: Dict[str, Any], target: Target) -> List[Dict[str, Any]]:
    """The modules manifest's null network (the per-network constant), or the networks
    manifest's drift reference, measured last in the same interleaved batch as the other
    entries (same worker, same rounds) when the target records them (host, not phones)."""
    c = doc.get("constant") if doc.get("kind") == "modules" else doc.get("reference")
    if not target.measures_constant or not isinstance(c, dict):
        return []
    if any(e["uid"] == c.get("uid") for e in doc["entries"]):
        return []
    return [c]


def _measure(entries: List[Dict[str, Any]], items_by_uid: Dict[str, Dict[str, Any]], digests: Dict[str, str],
             store: ResultsStore, done: set, target: Target, cfg: SessionConfig, out: Path,
             on_progress: Optional[Progress]) -> SessionSummary:
    work = [(rt, e) for rt in cfg.runtimes for e in entries if (e["uid"], rt) not in done]
    total = len(cfg.runtimes) * len(entries)
    finished = total - len(work)
    failed: List[Tuple[str, str, str]] = []
    unstable: List[Tuple[str, str, List[str]]] = []
    with store:
        if on_progress:
            on_progress(finished, total, "", 0)

        def record(rec: Dict[str, Any], rt: str) -> None:
            nonlocal finished
            final = stored(rec, rt, rec.get("attempts", 1))
            final["entry"] = digests[final["uid"]]  # ties the result to the model's content
            store.add(final)
            finished += 1
            if final["status"] != "ok":
                failed.append((final["uid"], rt, final["error"]))
            elif final["noisy"]:
                unstable.append((final["uid"], rt, final["warnings"]))
            if on_progress:
                on_progress(finished, total, final["uid"], len(failed))

        for group in _groups(work, items_by_uid, cfg, target.streams_batches):
            held: Dict[Tuple[str, str], Dict[str, Any]] = {}  # noisy results waiting for a re-measure
            try:
                for rt, rec in target.run_batches(group, cfg):
                    rec = _scored(rec)
                    if rec["status"] == "ok" and rec["noisy"] and cfg.remeasure > 0:
                        held[(rec["uid"], rt)] = rec
                    else:
                        record(rec, rt)
                _remeasure(target, group, held, cfg)
            finally:  # Ctrl-C or a crash: what was measured is still stored
                for (_, rt), rec in held.items():
                    record(rec, rt)
    return SessionSummary(Path(out), total, len(work), total - len(work), failed, unstable)


def _item(doc: Dict[str, Any], entry: Dict[str, Any]) -> Dict[str, Any]:
    nnp = str(entry_file(doc, entry, "nnp")) if "nnp" in entry["files"] else ""
    return {"uid": entry["uid"], "onnx": str(entry_file(doc, entry, "onnx")),
            "nnp": nnp, "input_shapes": entry["input_shapes"]}


def _scored(rec: Dict[str, Any]) -> Dict[str, Any]:
    """The record with its stability warnings, noise score and ``noisy`` flag."""
    if rec["status"] != "ok":
        return rec
    warnings, score = instability(rec["samples"])
    if score > MAX_REL_IQR:
        warnings.insert(0, f"interquartile range is {100 * score:.1f}% of the median (> {100 * MAX_REL_IQR:.0f}%): "
                           "the machine's speed varied during the session; close other programs, "
                           "pin CPUs with --affinity, or run longer")
    return dict(rec, warnings=warnings, rel_iqr=round(score, 5), noisy=score > MAX_REL_IQR,
                attempts=rec.get("attempts", 1))


def _groups(work: List[Tuple[str, Dict[str, Any]]], items_by_uid: Dict[str, Dict[str, Any]], cfg: SessionConfig,
            streams: bool) -> List[List[Batch]]:
    """The calls to ``run_batches``: each runtime's pending items in batches of
    ``cfg.batch_size`` (0: one batch); one batch per call, or, for a target that streams, the
    i-th batch of every runtime together."""
    per_rt: List[List[Batch]] = []
    for rt in cfg.runtimes:
        items = [items_by_uid[e["uid"]] for r, e in work if r == rt]
        size = cfg.batch_size if cfg.batch_size > 0 else max(1, len(items))
        per_rt.append([(rt, items[i:i + size]) for i in range(0, len(items), size)])
    if not streams:
        return [[b] for batches in per_rt for b in batches]
    depth = max((len(b) for b in per_rt), default=0)
    return [[batches[i] for batches in per_rt if i < len(batches)] for i in range(depth)]


def _remeasure(target: Target, group: List[Batch], held: Dict[Tuple[str, str], Dict[str, Any]],
               cfg: SessionConfig) -> None:
    """Re-measure the noisy results of a group of batches together (interleaved, like the first
    attempt) up to ``cfg.remeasure`` times, keeping each module's steadiest attempt in ``held``."""
    by_key = {(it["uid"], rt): it for rt, items in group for it in items}
    for attempt in range(2, cfg.remeasure + 2):
        noisy = [(rt, [by_key[key] for key, rec in held.items() if key[1] == rt and rec["noisy"]])
                 for rt, _ in group]
        noisy = [(rt, items) for rt, items in noisy if items]
        if not noisy:
            return
        for rt, again in target.run_batches(noisy, cfg):
            key = (again["uid"], rt)
            old = held[key]
            old["attempts"] = attempt
            again = _scored(again)
            if again["status"] == "ok" and again["rel_iqr"] < old["rel_iqr"]:
                held[key] = dict(again, attempts=attempt)
