"""``profiler bench``: measure every model of a manifest on a target into a results store."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from profiler.cli.output import csv_list, info
from profiler.errors import ProfilerError


def _check_options(args: argparse.Namespace) -> None:
    """Refuse option values that would measure nothing, twice, or crash later."""
    import math
    bounds = [("--threads", args.threads, 1), ("--warmup", args.warmup, 0), ("--min-repeat", args.min_repeat, 1),
              ("--max-repeat", args.max_repeat, 1), ("--layer-runs", args.layer_runs, 1),
              ("--rounds", args.rounds, 1), ("--batch-size", args.batch_size, 0),
              ("--remeasure", args.remeasure, 0)]
    for name, value, low in bounds:
        if value < low:
            raise ProfilerError(f"{name} {value}: must be at least {low}")
    if args.max_repeat < args.min_repeat:
        raise ProfilerError(f"--max-repeat {args.max_repeat}: must be at least --min-repeat ({args.min_repeat})")
    if not math.isfinite(args.min_time) or args.min_time < 0:
        raise ProfilerError(f"--min-time {args.min_time}: must be a number of seconds >= 0")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise ProfilerError(f"--timeout {args.timeout}: must be a number of seconds > 0")
    runtimes = csv_list(args.runtime)
    if not runtimes:
        raise ProfilerError(f"--runtime {args.runtime!r}: no runtime given (e.g. --runtime ORT_CPU)")
    twice = sorted({r for r in runtimes if runtimes.count(r) > 1})
    if twice:
        raise ProfilerError(f"--runtime {args.runtime}: {', '.join(twice)} given twice; name each runtime once")


def _affinity(args: argparse.Namespace):
    if not args.affinity:
        return None
    try:
        cpus = [int(c) for c in csv_list(args.affinity)]
    except ValueError:
        raise ProfilerError(f"--affinity {args.affinity}: expected comma-separated CPU ids, e.g. 0,1") from None
    if not cpus:
        raise ProfilerError(f"--affinity {args.affinity!r}: no CPU id given")
    if getattr(args, "target", "host") == "host" and not getattr(args, "docker", None):
        import os
        usable = sorted(os.sched_getaffinity(0))
        bad = [c for c in cpus if c not in usable]
        if bad:
            raise ProfilerError(f"--affinity {args.affinity}: CPU {', '.join(map(str, bad))} not available "
                                f"here (usable: {','.join(map(str, usable))})")
    return cpus


def session_config(args: argparse.Namespace):
    from profiler.session.target import MeasureConfig, SessionConfig
    _check_options(args)
    measure = MeasureConfig(warmup=args.warmup, min_time_s=args.min_time, min_repeat=args.min_repeat,
                            max_repeat=args.max_repeat, layer_runs=args.layer_runs, threads=args.threads,
                            rounds=args.rounds)
    affinity = _affinity(args)
    return SessionConfig(runtimes=csv_list(args.runtime), measure=measure, batch_size=args.batch_size,
                         timeout_s=args.timeout, remeasure=args.remeasure, affinity=affinity)


def target(args: argparse.Namespace):
    if args.target == "host":
        from profiler.host.target import HostTarget
        return HostTarget()
    if args.target == "phone":
        from profiler.cli.phone import phone_target
        return phone_target(args)
    raise ProfilerError(f"--target {args.target}: unknown target (choose host or phone)")


_STEM_RE = re.compile(r"\b[A-Za-z0-9][A-Za-z0-9-]*-[0-9a-f]{16}\b")   # profiler.space.modules.file_stem
_TAG_RE = re.compile(r"\b[0-9a-f]{32}\b")
_TMP_RE = re.compile(r"(profiler-[a-z]+-)[A-Za-z0-9_]{6,}")
_RUN_RE = re.compile(r"\b(runs?) \d+\b")
_PIDS_RE = re.compile(r"\b(pid|pids|processes|process) \d+(?:, \d+)*")
CAUSE_CHARS = 400
FEW_UIDS = 3
MAX_CAUSES = 20


def failure_cause(error: str, uid: str) -> str:
    """A failure message without its per-module parts, so equal causes compare equal (pure).

    Removes the module's UID (whole or cut to 80 characters) and file stems (model, DLC and device
    folder names; any module's, as a retired phone's message names the module it was running)
    -> ``<module>``, temporary folder suffixes, run numbers, PIDs and
    per-call tags; collapses whitespace.
    """
    from profiler.space.modules import file_stem
    text = error
    for part in sorted({uid, uid[:80], file_stem(uid)}, key=len, reverse=True):
        if part:
            text = text.replace(part, "<module>")
    text = _STEM_RE.sub("<module>", text)   # any module's: a retired phone's message names the one it ran
    text = _TMP_RE.sub(r"\1*", text)
    text = _TAG_RE.sub("<tag>", text)
    text = _RUN_RE.sub(r"\1 N", text)
    text = _PIDS_RE.sub(r"\1 N", text)
    return " ".join(text.split())


def group_failures(failed: Sequence[Tuple[str, str, str]]) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """``[(uid, runtime, error)]`` -> ``[(cause, [(uid, runtime), ...])]``, most frequent cause
    first, ties in first-seen order (pure)."""
    groups: Dict[str, List[Tuple[str, str]]] = {}
    for uid, rt, error in failed:
        groups.setdefault(failure_cause(error, uid), []).append((uid, rt))
    order = {cause: i for i, cause in enumerate(groups)}
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), order[kv[0]]))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary_lines(summary, verbose: bool = False) -> List[str]:
    """Human summary of a bench session (pure): failures one line per cause (count, runtimes, a
    few UIDs); every failure with ``verbose`` (the store has them all anyway)."""
    lines = [f"{summary.measured - len(summary.failed)} measured, {len(summary.failed)} failed, "
             f"{summary.skipped} already in the store -> {summary.store}"]
    if verbose:
        for uid, rt, error in summary.failed:
            lines.append(f"  FAILED {rt} {uid}: {error}")
    else:
        groups = group_failures(summary.failed)
        for cause, pairs in groups[:MAX_CAUSES]:
            if len(pairs) == 1:   # nothing to group: the message as it is
                uid, rt = pairs[0]
                error = next(e for u, r, e in summary.failed if (u, r) == (uid, rt))
                lines.append(f"  FAILED {rt} {uid}: {error}")
                continue
            runtimes = ", ".join(dict.fromkeys(rt for _, rt in pairs))
            uids = list(dict.fromkeys(uid for uid, _ in pairs))
            shown = ", ".join(_cut(u, 60) for u in uids[:FEW_UIDS])
            more = f", +{len(uids) - FEW_UIDS} more" if len(uids) > FEW_UIDS else ""
            lines.append(f"  FAILED {len(pairs)} x {runtimes}: {_cut(cause, CAUSE_CHARS)} [{shown}{more}]")
        if len(groups) > MAX_CAUSES:
            rest = sum(len(p) for _, p in groups[MAX_CAUSES:])
            lines.append(f"  ... and {rest} more failures with {len(groups) - MAX_CAUSES} other causes")
        if len(groups) < len(summary.failed) or len(groups) > MAX_CAUSES:
            lines.append("  (every failure with its full message: --verbose, or in the store)")
    if summary.unstable:
        lines.append(f"WARNING: {len(summary.unstable)} results stayed noisy (interquartile range > 10% of "
                     "the median) after re-measuring; they are kept with their warnings (close other "
                     "programs, pin CPUs with --affinity, raise --min-time)")
        for uid, rt, warns in summary.unstable[:3]:
            lines.append(f"  {rt} {uid[:80]}: {warns[0] if warns else 'noisy'}")
    return lines


def run_bench(args: argparse.Namespace, models: Path, out: Path, label: str):
    from profiler.session.loop import run_session
    from profiler.cli.progress import Progress
    with Progress(label, quiet=args.quiet) as bar:
        summary = run_session(models, out, target(args), session_config(args),
                              resume=args.resume, on_progress=bar.update)
    for line in summary_lines(summary, verbose=getattr(args, "verbose", False)):
        info(line)
    return summary


def cmd_bench(args: argparse.Namespace) -> int:
    session_config(args)  # bad options: one line before anything is read or written
    if getattr(args, "docker", None):
        from profiler.cli.docker import bench_in_docker
        return bench_in_docker(args)
    summary = run_bench(args, Path(args.models), Path(args.out), "bench")
    return 1 if summary.failed else 0


# --- table --------------------------------------------------------------------------------


def add_bench_options(b: argparse.ArgumentParser) -> None:
    b.add_argument("--target", default="host", choices=["host", "phone"],
                   help="where to run (default: host, this machine; phone: Snapdragon phones over adb)")
    b.add_argument("--runtime", default="ORT_CPU",
                   help="comma-separated runtimes (host: ORT_CPU,NNABLA_CPU; default ORT_CPU)")
    b.add_argument("--resume", action="store_true",
                   help="continue an interrupted session in the same store, skipping what is measured")
    b.add_argument("--threads", type=int, default=1, help="intra-op threads per runtime (default 1)")
    b.add_argument("--warmup", type=int, default=10, help="warm-up runs per module (default 10)")
    b.add_argument("--min-time", type=float, default=0.2,
                   help="seconds of timed runs per key; repeats are calibrated to it (default 0.2)")
    b.add_argument("--min-repeat", type=int, default=30, help="at least this many timed runs (default 30)")
    b.add_argument("--max-repeat", type=int, default=1000, help="at most this many timed runs (default 1000)")
    b.add_argument("--layer-runs", type=int, default=20, help="profiled runs for Layers Time (default 20)")
    b.add_argument("--batch-size", type=int, default=0,
                   help="modules measured together, interleaved, in one worker process "
                        "(default 0: the whole session, which cancels machine drift best)")
    b.add_argument("--rounds", type=int, default=20,
                   help="interleaved rounds a batch's timed runs are spread over (default 20)")
    b.add_argument("--timeout", type=float, default=600.0, help="seconds before a module is failed (default 600)")
    b.add_argument("--remeasure", type=int, default=2,
                   help="re-measure an unstable result up to N times (default 2)")
    b.add_argument("--affinity", default="", help="comma-separated CPU ids to pin workers to")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.add_argument("-v", "--verbose", action="store_true",
                   help="list every failure with its full message (default: one line per cause)")
    from profiler.cli.docker import add_docker_options
    from profiler.cli.phone import add_phone_options
    add_phone_options(b)
    add_docker_options(b)


def add_commands(sub) -> None:
    b = sub.add_parser("bench", help="measure every model of a manifest into a results store")
    b.add_argument("--models", required=True, help="models directory (from generate or sample)")
    b.add_argument("--out", required=True, help="results store to create (or continue with --resume)")
    add_bench_options(b)
    b.set_defaults(func=cmd_bench)
