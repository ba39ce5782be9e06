"""Render the standalone ``estimator.py`` a NAS loop imports (standard library only).

The generated file embeds, per runtime, a :class:`~profiler.fit.calibration.Calibration`:
``const`` and one calibrated contribution per ModuleUID (one tuple of ModuleUIDs plus one
tuple of values per runtime, so a 10k-module table stays compact), and the search space
(:func:`profiler.pipeline.fit.describe_space`: choice blocks, candidate labels, fixed blocks, and the module UIDs of
every candidate at the table's granularity), so NAS loops can pass choice indices, labels or
probabilities; see ``templates/estimator.py.tmpl`` for its API. :func:`write_estimator`
executes the rendered source in a fresh namespace and checks it against the Python-side
numbers before writing it atomically, so a broken estimator never lands on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import string
import types
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from profiler.errors import FitError, TableError
from profiler.fit.calibration import Calibration

TEMPLATE = Path(__file__).resolve().parent / "templates" / "estimator.py.tmpl"
NNABLA_NAS_TEMPLATE = TEMPLATE.with_name("nnabla_nas_estimator.py.tmpl")
NNABLA_NAS_ADAPTER = "nnabla_nas_estimator.py"
VALUES_PER_LINE = 6

# provenance keys rendered first in the header, with their labels
_PROVENANCE_LABELS = (
    ("device", "device"), ("target", "target"), ("sdk", "SDK"), ("date", "date"),
    ("table", "table"), ("table_sha256", "table sha256"), ("profiler_version", "profiler version"),
    ("space", "search space"), ("granularity", "granularity"),
    ("measured_key", "measured key"), ("measured_stat", "measured stat"),
)


# --- literals -----------------------------------------------------------------------------

def _json_safe(obj: Any) -> Any:
    """Plain JSON types only: NaN/inf -> None, tuples -> lists, other objects -> str."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    try:
        f = float(obj)  # numpy scalars
    except (TypeError, ValueError):
        return str(obj)
    if hasattr(obj, "dtype") and getattr(obj.dtype, "kind", "") in "iu":
        return int(obj)
    return f if math.isfinite(f) else None


def _literal(obj: Any, indent: int = 0) -> str:
    """A Python literal (ASCII) for plain JSON data; dicts one key per line."""
    if obj is None or isinstance(obj, (bool, int)):
        return repr(obj)
    if isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, str):
        return ascii(obj)
    pad = " " * (indent + 4)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = "".join(f"{pad}{ascii(k)}: {_literal(v, indent + 4)},\n" for k, v in obj.items())
        return "{\n" + items + " " * indent + "}"
    if isinstance(obj, list):
        return "[" + ", ".join(_literal(v, indent) for v in obj) + "]"
    raise TypeError(f"cannot render {type(obj).__name__} as a literal")


def _doc_text(s: str) -> str:
    """Make ``s`` safe inside a triple-quoted docstring (one line, no escapes interpreted)."""
    s = " ".join(str(s).split())
    s = "".join(c if c.isprintable() else "?" for c in s)
    return s.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _fmt(v: Any, spec: str, suffix: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    try:
        return format(float(v), spec) + suffix
    except (TypeError, ValueError):
        return "n/a"


# --- validation ---------------------------------------------------------------------------

def _check(calibrations: Mapping[str, Calibration], key: str, stat: str) -> Tuple[List[str], Dict[str, Calibration]]:
    if not calibrations:
        raise FitError("no fitted runtime to write an estimator for")
    if not (isinstance(key, str) and isinstance(stat, str)):
        raise TypeError("key and stat must be strings")
    runtimes = [str(rt) for rt in calibrations]
    clean: Dict[str, Calibration] = {}
    for rt in runtimes:
        cal = calibrations[rt]
        try:
            const = float(cal.const)
        except (TypeError, ValueError):
            raise FitError(f"{rt}: the calibration constant must be a number, got {cal.const!r}") from None
        if not math.isfinite(const):
            raise FitError(f"{rt}: non-finite calibration constant {const!r}")
        per: Dict[str, float] = {}
        for uid, v in cal.contrib.items():
            if not isinstance(uid, str):
                raise TableError(f"{rt}: ModuleUIDs must be strings, got {uid!r}")
            fv = float(v)
            if not math.isfinite(fv):
                raise TableError(f"{rt}: the contribution of {uid} is {fv!r}; it must be finite")
            per[uid] = fv
        if not per:
            raise TableError(f"runtime {rt} has no module contributions ({key}/{stat})")
        params = dict(cal.params)
        if cal.model == "scale-bias" and ("scale" in params or "bias" in params):
            for k in ("scale", "bias"):
                if not isinstance(params.get(k), (int, float)) or not math.isfinite(float(params[k])):
                    raise FitError(f"{rt}: non-finite or missing {k} in the calibration ({params.get(k)!r})")
        clean[rt] = Calibration(str(cal.model), const, per, params)
    return runtimes, clean


def _linear(cal: Calibration) -> Optional[Tuple[float, float]]:
    """(scale, bias) when the calibration is ``scale * look-up`` per module plus ``bias``."""
    if cal.model == "scale-bias" and "scale" in cal.params and "bias" in cal.params:
        return float(cal.params["scale"]), float(cal.params["bias"])
    return None


def embedded_sha256(calibrations: Mapping[str, Calibration]) -> str:
    """sha256 of the canonical JSON of ``{runtime: {"const": c, "contrib": {uid: us}}}`` (as the file computes it)."""
    doc = {rt: {"const": float(c.const), "contrib": dict(c.contrib)} for rt, c in calibrations.items()}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- rendering ----------------------------------------------------------------------------

def _docstring(runtimes: Sequence[str], cals: Mapping[str, Calibration], key: str, stat: str,
               n_uids: int, provenance: Mapping[str, Any], sha: str, space: Optional[Mapping[str, Any]]) -> str:
    heldout = provenance.get("heldout") if isinstance(provenance.get("heldout"), Mapping) else {}
    device = provenance.get("device") or "unknown device"
    L: List[str] = [
        f"Latency estimator for {_doc_text(device)}, generated by profiler "
        f"{_doc_text(provenance.get('profiler_version', 'unknown'))}.",
        "",
        "Predicts the whole-network latency, in microseconds (us; unit=\"ms\" for milliseconds), of a",
        "network on one runtime, from a calibration fitted on sampled networks (look-ups of",
        f"{_doc_text(repr(key))}/{_doc_text(repr(stat))} vs measured latency), written as",
        "",
        "    estimate_us = max(0, CONST[runtime] + sum(contribution[runtime][uid] for each module))",
        "",
        "(for scale-bias: contribution = scale * look-up, CONST = bias). Accuracy is held-out (every",
        "network predicted by a model fitted without it).",
        "",
    ]
    rows = [("runtime", "model", "const (us)", "n", "held-out MAPE", "within +-10%", "Spearman")]
    for rt in runtimes:
        m = heldout.get(rt) if isinstance(heldout.get(rt), Mapping) else {}
        lin = _linear(cals[rt])
        model = cals[rt].model + (f" (scale {lin[0]!r})" if lin else "")
        rows.append((_doc_text(rt), _doc_text(model), repr(cals[rt].const), str(m.get("n", "n/a")),
                     _fmt(m.get("mape"), ".2f", " %"), _fmt(None if m.get("within_10") is None
                                                            else 100 * float(m["within_10"]), ".1f", " %"),
                     _fmt(m.get("spearman"), ".4f")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        L.append("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    L += ["", "Provenance:", ""]
    prov_rows = []
    shown = set()
    for k, label in _PROVENANCE_LABELS:
        if provenance.get(k) not in (None, ""):
            prov_rows.append((label, provenance[k]))
        shown.add(k)
    for k, v in provenance.items():
        if k not in shown and k != "heldout" and v not in (None, ""):
            prov_rows.append((k, v))
    prov_rows.append(("embedded values sha256", sha))
    prov_rows.append(("embedded values", f"{n_uids} modules x {len(runtimes)} runtimes, {key}/{stat}"))
    if space:
        prov_rows.append(("embedded space", f"{space.get('name')}: {len(space['positions'])} choice blocks, "
                                            f"{len(space['fixed'])} fixed blocks, {space.get('granularity')} modules"))
    width = max(len(_doc_text(label)) for label, _ in prov_rows) + 1
    for label, v in prov_rows:
        text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
        L.append(f"    {(_doc_text(label) + ':').ljust(width)} {_doc_text(text)}")
    first = runtimes[0]
    f = _doc_text(repr(first))
    L += [
        "",
        "Usage (Python 3.8+, standard library only; copy this file anywhere):",
        "",
        "    import estimator",
        f"    estimator.RUNTIMES                                  # {_doc_text(repr(tuple(runtimes)))}",
        f"    estimator.estimate(module_uids, {f})",
    ]
    if space:
        n = len(space["positions"])
        L += [
            f"    estimator.estimate_choices([0] * {n}, {f})          # one index per choice block into CANDIDATES[i]",
            f"    estimator.estimate_labels(labels, {f}, unit=\"ms\")   # labels like 'MB6_k5', 'skip'; or {{block: label}}",
            f"    estimator.estimate_many(int8_array_n_by_{n}, {f})   # numpy path for arrays, a loop for lists",
            f"    const, matrix = estimator.latency_matrix({f})       # estimate = const + sum(matrix[i][choice_i])",
            f"    estimator.expected_latency(probs, {f})              # const + sum p*matrix: lists, numpy, torch, nnabla",
        ]
    L += [
        f"    estimator.accumulate(module_uids, {f})              # sum of contributions, no constant",
        f"    reg = estimator.LatencyRegularizer({f}, bound_us=2000.0, weight=0.1)",
        "    reg(arch)           # estimated us; arch = ModuleUIDs or choice indices",
        "    reg.penalty(arch)   # min(1, bound_us / estimate) ** weight, times the accuracy reward",
        "",
        "Estimates are never negative (floored at 0). An unknown ModuleUID raises UnknownModuleError",
        "and an unknown runtime UnknownRuntimeError (KeyErrors); a wrong length, out-of-range index,",
        "unknown label or skip where it is not allowed raises ChoiceError (a ValueError).",
    ]
    if any(_linear(cals[rt]) for rt in runtimes):
        L += [
            "",
            "Linear (scale-bias) runtimes also take estimate_accum(accumulated_us, runtime) with an",
            "uncalibrated sum of look-ups, and table_path=... (Python) / --table PATH (CLI) to look modules",
            "up in another table JSON file of the profiler's format, {uid: {runtime: {key: {stat: us}}}}.",
        ]
    L += [
        "",
        "Command line (prints the estimate; exit status 2 with a one-line error):",
        "",
        f"    python estimator.py --uids arch.txt --runtime {_doc_text(first)}    # one ModuleUID per line, - for stdin",
    ]
    if space:
        L.append(f"    python estimator.py --choices 0,3,6,... --runtime {_doc_text(first)} --unit ms")
    L.append(f"    python estimator.py --accum 1234.5 --runtime {_doc_text(first)}")
    return '"""' + "\n".join(L) + '\n"""'


def _uids_literal(uids: Sequence[str]) -> str:
    return "(\n" + "".join(f"    {ascii(u)},\n" for u in uids) + ")"


def _values_literal(runtimes: Sequence[str], uids: Sequence[str], values: Mapping[str, Mapping[str, float]]) -> str:
    out = ["{"]
    for rt in runtimes:
        per = values[rt]
        items = [repr(per[u]) if u in per else "None" for u in uids]
        out.append(f"    {ascii(rt)}: (")
        for i in range(0, len(items), VALUES_PER_LINE):
            out.append("        " + ", ".join(items[i:i + VALUES_PER_LINE]) + ",")
        out.append("    ),")
    out.append("}")
    return "\n".join(out)


def _tuple_literal(items: Sequence[str], indent: int = 4) -> str:
    if not items:
        return "()"
    pad = " " * indent
    return "(\n" + "".join(f"{pad}{it},\n" for it in items) + ")"


def _space_fields(space: Optional[Mapping[str, Any]], uids: Sequence[str]) -> Dict[str, str]:
    if not space:
        return {"space_name": "None", "granularity": "None", "positions": "()", "candidates": "()",
                "fixed": "()", "cells": "()", "fixed_cells": "()", "depths": "()"}
    index = {u: i for i, u in enumerate(uids)}

    def cell(mods: Sequence[str]) -> str:
        missing = [m for m in mods if m not in index]
        if missing:
            raise TableError(f"module {missing[0]} of the search space has no calibrated value on any runtime "
                             f"(was the table measured for this space and granularity?)")
        return "(" + "".join(f"{index[m]}, " for m in mods).rstrip() + ")"

    pos = space["positions"]
    keys = ("index", "block", "stage", "stride", "shape", "out_channels", "skip")
    return {
        "space_name": ascii(space.get("name")),
        "granularity": ascii(space.get("granularity")),
        "positions": _tuple_literal([_literal({k: p[k] for k in keys}).replace("\n", " ").replace("    ", "")
                                     .replace(", }", "}") for p in pos]),
        "candidates": _tuple_literal(["(" + "".join(f"{ascii(lab)}, " for lab in p["labels"]).rstrip() + ")"
                                      for p in pos]),
        "fixed": _tuple_literal([_literal({"block": f["block"], "label": f["label"]}).replace("\n", " ")
                                 .replace("    ", "").replace(", }", "}") for f in space["fixed"]]),
        "cells": _tuple_literal(["(" + " ".join(cell(m) + "," for m in p["modules"]) + ")" for p in pos]),
        "fixed_cells": _tuple_literal([cell(f["modules"]) for f in space["fixed"]]),
        "depths": _tuple_literal([repr((tuple(d["blocks"]),
                                        tuple(pos[i]["labels"].index("skip") if "skip" in pos[i]["labels"] else -1
                                              for i in d["blocks"]),
                                        tuple(d["depths"]))) for d in space.get("depths", ())]),
    }


def render_estimator(calibrations: Mapping[str, Calibration], key: str, stat: str,
                     provenance: Optional[Mapping[str, Any]] = None,
                     space: Optional[Mapping[str, Any]] = None) -> str:
    """Source of the standalone estimator.

    ``calibrations[runtime]`` is that runtime's :class:`Calibration` (its order is the order of
    ``RUNTIMES``); ``key``/``stat`` name the look-ups the contributions were computed from;
    ``provenance`` (device, sdk, date, table, table_sha256, profiler_version,
    heldout={runtime: metrics}, ...) goes into the header docstring and ``PROVENANCE``;
    ``space`` is :func:`profiler.pipeline.fit.describe_space`'s output (without it only the UID API works).
    """
    runtimes, cals = _check(calibrations, key, stat)
    prov = _json_safe(dict(provenance or {}))
    if "profiler_version" not in prov:
        from profiler import __version__
        prov["profiler_version"] = __version__
    uids = sorted(set().union(*(cals[rt].contrib for rt in runtimes)))
    sha = embedded_sha256(cals)
    linear = {rt: _linear(cals[rt]) for rt in runtimes}
    fields = {
        "docstring": _docstring(runtimes, cals, key, stat, len(uids), prov, sha, space),
        "key": ascii(key),
        "stat": ascii(stat),
        "runtimes": "(" + "".join(f"{ascii(rt)}, " for rt in runtimes).rstrip() + ")",
        "models": "{\n" + "".join(f"    {ascii(rt)}: {ascii(cals[rt].model)},\n" for rt in runtimes) + "}",
        "const": "{\n" + "".join(f"    {ascii(rt)}: {cals[rt].const!r},\n" for rt in runtimes) + "}",
        "coefficients": "{\n" + "".join(f"    {ascii(rt)}: ({linear[rt][0]!r}, {linear[rt][1]!r}),\n"
                                        for rt in runtimes if linear[rt]) + "}",
        "provenance": _literal(prov),
        "embedded_sha256": ascii(sha),
        "uids": _uids_literal(uids),
        "values": _values_literal(runtimes, uids, {rt: cals[rt].contrib for rt in runtimes}),
        **_space_fields(space, uids),
    }
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(fields)


# --- verification and writing -------------------------------------------------------------

def load_source(source: str, name: str = "estimator_check") -> types.ModuleType:
    """Execute generated source in a fresh module object (not registered in ``sys.modules``)."""
    mod = types.ModuleType(name)
    mod.__file__ = f"<{name}>"
    exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    return mod


def _probe_choices(space: Mapping[str, Any]) -> List[List[int]]:
    """A few valid architectures: all first, all last and mixed candidates; an elastic-depth stage
    whose skips are not trailing keeps all its blocks."""
    pos = space["positions"]
    n = [len(p["labels"]) for p in pos]
    probes = [[0] * len(n), [k - 1 for k in n], [(i * 7 + 3) % k for i, k in enumerate(n)]]
    for ch in probes:
        for d in space.get("depths", ()):
            skipped = [pos[i]["labels"][ch[i]] == "skip" for i in d["blocks"]]
            kept = skipped.index(True) if True in skipped else len(skipped)
            if kept not in d["depths"] or not all(skipped[kept:]):
                for i in d["blocks"]:
                    if pos[i]["labels"][ch[i]] == "skip":
                        ch[i] = 0
    return probes


def verify_estimator(source: str, calibrations: Mapping[str, Calibration],
                     space: Optional[Mapping[str, Any]] = None) -> None:
    """Round trip: the executed ``source`` must reproduce every calibration number.

    Checks ``RUNTIMES``, ``CONST`` (bit-exact), every runtime's sum over all its uids against
    the same sum in Python, the empty network (floored at 0), the embedded hash, that an unknown
    uid raises ``UnknownModuleError``, and with a space, that ``estimate_choices`` of a few
    architectures equals :meth:`Calibration.estimate` of their modules and that the latency
    matrix identity holds. Raises ``RuntimeError`` (a codegen bug) on any mismatch.
    """
    mod = load_source(source)
    runtimes = [str(rt) for rt in calibrations]
    problems: List[str] = []
    if list(mod.RUNTIMES) != runtimes:
        problems.append(f"RUNTIMES {mod.RUNTIMES!r} != {runtimes!r}")
    for rt in runtimes:
        cal = calibrations[rt]
        if mod.CONST.get(rt) != float(cal.const):
            problems.append(f"{rt}: const {mod.CONST.get(rt)!r} != {cal.const!r}")
            continue
        uids = list(cal.contrib)
        expected = sum(float(cal.contrib[u]) for u in uids)
        got = mod.accumulate(uids, rt)
        if got != expected:
            problems.append(f"{rt}: sum of all contributions {got!r} != {expected!r}")
        if mod.estimate([], rt) != max(0.0, float(cal.const)):
            problems.append(f"{rt}: the empty network is not max(0, const)")
        try:
            mod.accumulate(["\x00 not a module \x00"], rt)
            problems.append(f"{rt}: an unknown uid did not raise")
        except mod.UnknownModuleError:
            pass
        if space:
            if all(all(m in cal.contrib for p in space["positions"] for ms in p["modules"] for m in ms)
                   for _ in (0,)) and all(m in cal.contrib for f in space["fixed"] for m in f["modules"]):
                const, matrix = mod.latency_matrix(rt)
                for ch in _probe_choices(space):
                    mods = _modules_of(space, ch)
                    want = Calibration(cal.model, float(cal.const), cal.contrib).estimate(mods)
                    if mod.estimate_choices(ch, rt) != want or mod.estimate(mods, rt) != want:
                        problems.append(f"{rt}: estimate_choices({ch}) != the estimate of its modules")
                    lin = const + sum(matrix[i][c] for i, c in enumerate(ch))
                    if want > 0 and abs(lin - want) > 1e-9 * max(1.0, abs(want)):
                        problems.append(f"{rt}: latency_matrix identity fails for {ch}")
    if mod.embedded_sha256() != mod.EMBEDDED_SHA256:
        problems.append("EMBEDDED_SHA256 does not match the embedded values")
    if problems:
        raise RuntimeError("generated estimator failed verification: " + "; ".join(problems[:5]))


def _modules_of(space: Mapping[str, Any], choices: Sequence[int]) -> List[str]:
    """The ModuleUIDs of an architecture in network order (the Python-side reference)."""
    by_block: Dict[int, List[str]] = {f["block"]: list(f["modules"]) for f in space["fixed"]}
    for p, c in zip(space["positions"], choices):
        by_block[p["block"]] = list(p["modules"][c])
    return [u for b in sorted(by_block) for u in by_block[b]]


def write_estimator(path: Union[str, "os.PathLike[str]"], calibrations: Mapping[str, Calibration],
                    key: str, stat: str, provenance: Optional[Mapping[str, Any]] = None,
                    space: Optional[Mapping[str, Any]] = None) -> Path:
    """Render, verify (:func:`verify_estimator`) and atomically write the estimator; return its path.

    The parent directory is created if needed; the file is replaced atomically
    (:func:`profiler.files.write_text`).
    """
    source = render_estimator(calibrations, key, stat, provenance, space)
    verify_estimator(source, calibrations, space)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from profiler.files import write_text
    write_text(path, source)
    return path


def render_nnabla_nas_adapter(estimator_name: str = "estimator.py") -> str:
    """Source of ``nnabla_nas_estimator.py`` (the nnabla-nas regularizer adapter) for an
    estimator file called ``estimator_name`` in the same directory."""
    source = NNABLA_NAS_TEMPLATE.read_text(encoding="utf-8")
    line = 'ESTIMATOR_NAME = "estimator.py"'
    if line not in source or "/" in estimator_name or "\\" in estimator_name:
        raise FitError(f"internal error: cannot render the nnabla-nas adapter for {estimator_name!r}")
    return source.replace(line, f"ESTIMATOR_NAME = {ascii(estimator_name)}", 1)


def write_nnabla_nas_adapter(estimator_path: Union[str, "os.PathLike[str]"]) -> Path:
    """Write ``nnabla_nas_estimator.py`` beside ``estimator_path`` (atomically); return its path."""
    from profiler.files import write_text
    estimator_path = Path(estimator_path)
    path = estimator_path.with_name(NNABLA_NAS_ADAPTER)
    if path == estimator_path:
        raise FitError(f"{estimator_path}: the estimator cannot be called {NNABLA_NAS_ADAPTER} "
                       "(that name is the nnabla-nas adapter written beside it); choose another --out")
    write_text(path, render_nnabla_nas_adapter(estimator_path.name))
    return path
