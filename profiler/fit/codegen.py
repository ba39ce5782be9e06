"""Render the standalone ``estimator.py`` a NAS loop imports (standard library only).

The generated file embeds the look-up values of the fitted table key/stat (one tuple of
ModuleUIDs plus one tuple of values per runtime, so a 10k-module table stays compact) and
the per-runtime scale and bias; see ``templates/estimator.py.tmpl`` for its API
(``estimate``, ``estimate_accum``, ``accumulate``, ``load_table``, ``LatencyRegularizer``,
a CLI). :func:`write_estimator` executes the rendered source in a fresh namespace and
checks its look-ups and coefficients against the inputs before writing it atomically, so a
broken estimator never lands on disk (the original profiler's crashed on first use).
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

def _check(table_values: Mapping[str, Mapping[str, float]], coefs: Mapping[str, Tuple[float, float]],
           key: str, stat: str) -> Tuple[List[str], Dict[str, Tuple[float, float]], Dict[str, Dict[str, float]]]:
    if not coefs:
        raise FitError("no fitted runtime to write an estimator for")
    if not (isinstance(key, str) and isinstance(stat, str)):
        raise TypeError("key and stat must be strings")
    runtimes = [str(rt) for rt in coefs]
    clean_coefs: Dict[str, Tuple[float, float]] = {}
    values: Dict[str, Dict[str, float]] = {}
    for rt in runtimes:
        try:
            scale, bias = (float(c) for c in coefs[rt])
        except (TypeError, ValueError):
            raise FitError(f"{rt}: coefficients must be (scale, bias) numbers, got {coefs[rt]!r}") from None
        if not (math.isfinite(scale) and math.isfinite(bias)):
            raise FitError(f"{rt}: non-finite scale/bias ({scale!r}, {bias!r})")
        clean_coefs[rt] = (scale, bias)
        if rt not in table_values:
            raise TableError(f"runtime {rt} has coefficients but no look-up values")
        per: Dict[str, float] = {}
        for uid, v in table_values[rt].items():
            if not isinstance(uid, str):
                raise TableError(f"{rt}: ModuleUIDs must be strings, got {uid!r}")
            fv = float(v)
            if not math.isfinite(fv):
                raise TableError(f"{rt}: look-up value of {uid} is {fv!r}; a table value must be finite")
            per[uid] = fv
        if not per:
            raise TableError(f"runtime {rt} has no look-up values ({key}/{stat})")
        values[rt] = per
    return runtimes, clean_coefs, values


def embedded_sha256(values: Mapping[str, Mapping[str, float]]) -> str:
    """sha256 of the canonical JSON of ``{runtime: {uid: us}}`` (as the generated file computes it)."""
    text = json.dumps({rt: dict(v) for rt, v in values.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- rendering ----------------------------------------------------------------------------

def _docstring(runtimes: Sequence[str], coefs: Mapping[str, Tuple[float, float]], key: str, stat: str,
               n_uids: int, provenance: Mapping[str, Any], sha: str) -> str:
    heldout = provenance.get("heldout") if isinstance(provenance.get("heldout"), Mapping) else {}
    device = provenance.get("device") or "unknown device"
    L: List[str] = [
        f"Latency estimator for {_doc_text(device)}, generated by profiler "
        f"{_doc_text(provenance.get('profiler_version', 'unknown'))}.",
        "",
        "Predicts the whole-network latency, in microseconds (us), of a network given as the list",
        "of its ModuleUIDs, on one runtime:",
        "",
        f"    estimate_us = scale[runtime] * sum(table[uid][runtime][{_doc_text(repr(key))}][{_doc_text(repr(stat))}])"
        " + bias[runtime]",
        "",
        "scale and bias were fitted per runtime on sampled networks (accumulated look-ups vs",
        "measured latency); accuracy is held-out (every network predicted by a model fitted",
        "without it).",
        "",
    ]
    rows = [("runtime", "scale", "bias (us)", "n", "held-out MAPE", "within +-10%", "Spearman")]
    for rt in runtimes:
        m = heldout.get(rt) if isinstance(heldout.get(rt), Mapping) else {}
        rows.append((_doc_text(rt), repr(coefs[rt][0]), repr(coefs[rt][1]), str(m.get("n", "n/a")),
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
    prov_rows.append(("embedded table", f"{n_uids} modules x {len(runtimes)} runtimes, {key}/{stat}"))
    width = max(len(_doc_text(label)) for label, _ in prov_rows) + 1
    for label, v in prov_rows:
        text = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
        L.append(f"    {(_doc_text(label) + ':').ljust(width)} {_doc_text(text)}")
    first = runtimes[0]
    L += [
        "",
        "Look-up table: embedded by default. Pass table_path=... (Python) or --table PATH (CLI) to",
        "look modules up in a table JSON file of the profiler's format instead,",
        "{uid: {runtime: {key: {stat: us}}}}; the coefficients stay the fitted ones above, so",
        "only use a table measured the same way.",
        "",
        "Usage (Python 3.8+, standard library only; copy this file anywhere):",
        "",
        "    import estimator",
    ]
    f = _doc_text(repr(first))
    usage = [
        ("estimator.RUNTIMES", _doc_text(repr(tuple(runtimes)))),
        (f"estimator.estimate(module_uids, {f})", "us"),
        (f"estimator.estimate_accum(accumulated_us, {f})", "calibrate a sum of look-ups"),
        (f"estimator.accumulate(module_uids, {f})", "uncalibrated sum of look-ups"),
    ]
    width = max(len(code) for code, _ in usage) + 2
    L += [f"    {code.ljust(width)}# {comment}" for code, comment in usage]
    L += [
        f"    reg = estimator.LatencyRegularizer({f}, bound_us=2000.0, weight=0.1)",
        "    reg(module_uids)           # estimated us (fast: one dict look-up per module)",
        "    reg.penalty(module_uids)   # min(1, bound_us / estimate) ** weight, times the accuracy reward",
        "",
        "An unknown ModuleUID raises UnknownModuleError and an unknown runtime UnknownRuntimeError",
        "(both KeyErrors, naming what is missing).",
        "",
        "Command line (prints the estimate in us; exit status 2 with a one-line error):",
        "",
        f"    python estimator.py --uids arch.txt --runtime {_doc_text(first)}    # one ModuleUID per line, - for stdin",
        f"    python estimator.py --uids arch.txt --runtime {_doc_text(first)} --table table.json",
        f"    python estimator.py --accum 1234.5 --runtime {_doc_text(first)}",
    ]
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


def render_estimator(table_values: Mapping[str, Mapping[str, float]], coefs: Mapping[str, Tuple[float, float]],
                     key: str, stat: str, provenance: Optional[Mapping[str, Any]] = None) -> str:
    """Source of the standalone estimator.

    ``table_values[runtime][uid]`` is the look-up value (us) for ``key``/``stat``;
    ``coefs[runtime] = (scale, bias)`` (its order is the order of ``RUNTIMES``; runtimes
    of ``table_values`` without coefficients are left out). ``provenance`` (device, sdk,
    date, table, table_sha256, profiler_version, heldout={runtime: metrics}, ...) goes
    into the header docstring and ``PROVENANCE``.
    """
    runtimes, clean_coefs, values = _check(table_values, coefs, key, stat)
    prov = _json_safe(dict(provenance or {}))
    if "profiler_version" not in prov:
        from profiler import __version__
        prov["profiler_version"] = __version__
    uids = sorted(set().union(*(values[rt] for rt in runtimes)))
    sha = embedded_sha256(values)
    fields = {
        "docstring": _docstring(runtimes, clean_coefs, key, stat, len(uids), prov, sha),
        "key": ascii(key),
        "stat": ascii(stat),
        "runtimes": "(" + "".join(f"{ascii(rt)}, " for rt in runtimes).rstrip() + ")",
        "coefficients": "{\n" + "".join(f"    {ascii(rt)}: ({clean_coefs[rt][0]!r}, {clean_coefs[rt][1]!r}),\n"
                                        for rt in runtimes) + "}",
        "provenance": _literal(prov),
        "embedded_sha256": ascii(sha),
        "uids": _uids_literal(uids),
        "values": _values_literal(runtimes, uids, values),
    }
    return string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(fields)


# --- verification and writing -------------------------------------------------------------

def load_source(source: str, name: str = "estimator_check") -> types.ModuleType:
    """Execute generated source in a fresh module object (not registered in ``sys.modules``)."""
    mod = types.ModuleType(name)
    mod.__file__ = f"<{name}>"
    exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    return mod


def verify_estimator(source: str, table_values: Mapping[str, Mapping[str, float]],
                     coefs: Mapping[str, Tuple[float, float]]) -> None:
    """Round trip: the executed ``source`` must reproduce every look-up and coefficient.

    Checks ``RUNTIMES``, ``COEFFICIENTS`` (bit-exact), every runtime's sum over all its
    uids against the same sum in Python, ``estimate_accum``, the embedded hash and that an
    unknown uid raises ``UnknownModuleError``. Raises ``RuntimeError`` (a codegen bug) on
    any mismatch.
    """
    mod = load_source(source)
    runtimes = [str(rt) for rt in coefs]
    problems: List[str] = []
    if list(mod.RUNTIMES) != runtimes:
        problems.append(f"RUNTIMES {mod.RUNTIMES!r} != {runtimes!r}")
    for rt in runtimes:
        scale, bias = (float(c) for c in coefs[rt])
        if tuple(mod.COEFFICIENTS.get(rt, ())) != (scale, bias):
            problems.append(f"{rt}: coefficients {mod.COEFFICIENTS.get(rt)!r} != {(scale, bias)!r}")
            continue
        uids = list(table_values[rt])
        expected = 0.0
        for u in uids:
            expected += float(table_values[rt][u])
        got = mod.accumulate(uids, rt)
        if got != expected:
            problems.append(f"{rt}: sum of all look-ups {got!r} != {expected!r}")
        for a in (0.0, 1.0, expected):
            if mod.estimate_accum(a, rt) != scale * a + bias:
                problems.append(f"{rt}: estimate_accum({a!r}) is wrong")
        try:
            mod.accumulate(["\x00 not a module \x00"], rt)
            problems.append(f"{rt}: an unknown uid did not raise")
        except mod.UnknownModuleError:
            pass
    if mod.embedded_sha256() != mod.EMBEDDED_SHA256:
        problems.append("EMBEDDED_SHA256 does not match the embedded values")
    if problems:
        raise RuntimeError("generated estimator failed verification: " + "; ".join(problems[:5]))


def write_estimator(path: Union[str, "os.PathLike[str]"], table_values: Mapping[str, Mapping[str, float]],
                    coefs: Mapping[str, Tuple[float, float]], key: str, stat: str,
                    provenance: Optional[Mapping[str, Any]] = None) -> Path:
    """Render, verify (:func:`verify_estimator`) and atomically write the estimator; return its path.

    The parent directory is created if needed; the file is replaced atomically
    (:func:`profiler.files.write_text`).
    """
    source = render_estimator(table_values, coefs, key, stat, provenance)
    verify_estimator(source, table_values, coefs)
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
