"""Command line: thin argparse front end. The only module that prints or exits.

Heavy libraries are imported inside the command functions so ``profiler --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

from profiler import __version__
from profiler.errors import ProfilerError


def _err(msg: str) -> None:
    print(f"profiler: error: {msg}", file=sys.stderr)


def _info(msg: str) -> None:
    print(msg, file=sys.stderr)


# --- generate -----------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from profiler.generate import generate
    from profiler.progress import Progress

    with Progress("generate", quiet=args.quiet) as bar:
        path = generate(Path(args.space), Path(args.out), args.granularity,
                        on_progress=bar.update)
    from profiler.manifest import read_manifest
    doc = read_manifest(path)
    _info(f"generated {len(doc['entries'])} unique {args.granularity} modules -> {path}")
    return 0


# --- bench --------------------------------------------------------------------------------

def _csv_list(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _session_config(args: argparse.Namespace):
    from profiler.hostbench import MeasureConfig
    from profiler.runner import SessionConfig
    measure = MeasureConfig(warmup=args.warmup, min_time_s=args.min_time, min_repeat=args.min_repeat,
                            max_repeat=args.max_repeat, layer_runs=args.layer_runs, threads=args.threads,
                            rounds=args.rounds)
    affinity = [int(c) for c in _csv_list(args.affinity)] if args.affinity else None
    return SessionConfig(runtimes=_csv_list(args.runtime), measure=measure, batch_size=args.batch_size,
                         timeout_s=args.timeout, remeasure=args.remeasure, affinity=affinity)


def _target(args: argparse.Namespace):
    if args.target == "host":
        from profiler.runner import HostTarget
        return HostTarget()
    if args.target == "phone":
        from profiler.cli_phone import phone_target
        return phone_target(args)
    raise ProfilerError(f"--target {args.target}: unknown target (choose host or phone)")


def summary_lines(summary) -> List[str]:
    """Human summary of a bench session (pure)."""
    lines = [f"{summary.measured - len(summary.failed)} measured, {len(summary.failed)} failed, "
             f"{summary.skipped} already in the store -> {summary.store}"]
    for uid, rt, error in summary.failed[:20]:
        lines.append(f"  FAILED {rt} {uid}: {error}")
    if len(summary.failed) > 20:
        lines.append(f"  ... and {len(summary.failed) - 20} more failures (see the store)")
    if summary.unstable:
        lines.append(f"WARNING: {len(summary.unstable)} results stayed noisy (interquartile range > 10% of "
                     "the median) after re-measuring; they are kept with their warnings (close other "
                     "programs, pin CPUs with --affinity, raise --min-time)")
        for uid, rt, warns in summary.unstable[:3]:
            lines.append(f"  {rt} {uid[:80]}: {warns[0] if warns else 'noisy'}")
    return lines


def run_bench(args: argparse.Namespace, models: Path, out: Path, label: str):
    from profiler.runner import run_session
    from profiler.progress import Progress
    with Progress(label, quiet=args.quiet) as bar:
        summary = run_session(models, out, _target(args), _session_config(args),
                              resume=args.resume, on_progress=bar.update)
    for line in summary_lines(summary):
        _info(line)
    return summary


def cmd_bench(args: argparse.Namespace) -> int:
    if getattr(args, "docker", None):
        from profiler.cli_docker import bench_in_docker
        return bench_in_docker(args)
    summary = run_bench(args, Path(args.models), Path(args.out), "bench")
    return 1 if summary.failed else 0


# --- table --------------------------------------------------------------------------------

def cmd_table(args: argparse.Namespace) -> int:
    from profiler.tablebuild import build_table
    table, written = build_table([Path(p) for p in args.results], Path(args.out), args.on_duplicate)
    _info(f"table: {len(table.uids)} modules x {len(table.runtimes)} runtimes "
          f"({', '.join(table.runtimes)}) -> {', '.join(str(p) for p in written)}")
    return 0


# --- sample / fit / run -------------------------------------------------------------------

def cmd_sample(args: argparse.Namespace) -> int:
    from profiler.progress import Progress
    from profiler.sample import sample
    with Progress("sample", quiet=args.quiet) as bar:
        path = sample(Path(args.space), args.num, args.seed, Path(args.out),
                      Path(args.table) if args.table else None, args.granularity,
                      key=args.table_key, stat=args.table_stat, on_progress=bar.update)
    _info(f"sampled {args.num} networks (seed {args.seed}) -> {path}")
    return 0


def _print_fit(result: Dict) -> None:
    from profiler.report import summary_lines
    for line in summary_lines(result["report"]):
        print(line)
    for rt, ids in result["missing"].items():
        if ids:
            _info(f"note: {len(ids)} sampled networks have no {rt} measurement and were left out "
                  f"({', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})")
    for name, path in result["files"].items():
        _info(f"{name}: {path}")


def cmd_fit(args: argparse.Namespace) -> int:
    from profiler.fitting import fit_estimator
    result = fit_estimator(Path(args.sampled), [Path(p) for p in args.measured], Path(args.table),
                           Path(args.out), key=args.key, stat=args.stat, table_key=args.table_key,
                           table_stat=args.table_stat, robust=args.robust, folds=args.folds,
                           runtimes=_csv_list(args.runtime) if args.runtime else None)
    _print_fit(result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from profiler.pipeline import run_pipeline
    from profiler.progress import Progress
    result = run_pipeline(Path(args.space), Path(args.out), _target(args), _session_config(args),
                          num=args.num, seed=args.seed, granularity=args.granularity, key=args.key,
                          stat=args.stat,
                          table_key=args.table_key, table_stat=args.table_stat, robust=args.robust,
                          on_stage=lambda msg: _info(f"== {msg}"),
                          progress=lambda label: Progress(label, quiet=args.quiet))
    for name, summary in result["summaries"].items():
        for line in summary_lines(summary):
            _info(f"[{name}] {line}")
    _print_fit(result)
    paths = result["paths"]
    print(f"table:     {paths.table}.csv / .json / .meta")
    print(f"estimator: {paths.estimator}")
    print(f"report:    {result['files'].get('report_json')} , {result['files'].get('report_png')}")
    for rt, r in result["report"].runtimes.items():
        m = r.heldout_after
        print(f"held-out accuracy {rt}: {100 * m['within_10']:.1f}% of {m['n']} networks within +-10%, "
              f"MAPE {m['mape']:.2f}%, Spearman {m['spearman']:.4f}")
    return 0


# --- parser -------------------------------------------------------------------------------

def _add_fit_options(f: argparse.ArgumentParser) -> None:
    f.add_argument("--key", default="Total Inference Time",
                   choices=["Total Inference Time", "Forward Propagate", "Layers Time"],
                   help="measured network latency to predict (default: Total Inference Time)")
    f.add_argument("--table-key", default="Layers Time",
                   choices=["Layers Time", "Forward Propagate", "Total Inference Time"],
                   help="table LatencyKey summed over a network's modules (default: Layers Time)")
    f.add_argument("--table-stat", default="Median_Time", choices=["Median_Time", "Avg_Time", "Min_Time", "Max_Time"],
                   help="table statistic summed (default: Median_Time; see docs/accuracy.md)")
    f.add_argument("--stat", default="Median_Time", choices=["Median_Time", "Avg_Time", "Min_Time", "Max_Time"],
                   help="statistic of the measured network latency (default: Median_Time)")
    f.add_argument("--robust", action="store_true", help="Huber regression instead of least squares")


def _add_bench_options(b: argparse.ArgumentParser) -> None:
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
    from profiler.cli_phone import add_phone_options
    add_phone_options(b)
    from profiler.cli_docker import add_docker_options
    add_docker_options(b)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="profiler",
        description="On-device latency profiler for neural architecture search.")
    p.add_argument("--version", action="version", version=f"profiler {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    g = sub.add_parser("generate", help="write one NNP + ONNX model per unique module of a search space")
    g.add_argument("--space", required=True, help="search-space JSON (see search_spaces/)")
    g.add_argument("--out", required=True, help="output directory (manifest.json + models)")
    g.add_argument("--granularity", choices=["block", "leaf"], default="block",
                   help="module granularity (default: block; see docs/design.md)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    b = sub.add_parser("bench", help="measure every model of a manifest into a results store")
    b.add_argument("--models", required=True, help="models directory (from generate or sample)")
    b.add_argument("--out", required=True, help="results store to create (or continue with --resume)")
    _add_bench_options(b)
    b.set_defaults(func=cmd_bench)

    t = sub.add_parser("table", help="aggregate results stores into NAME.csv, NAME.json and NAME.meta")
    t.add_argument("--results", required=True, nargs="+", help="one or more results stores")
    t.add_argument("--out", required=True, help="output name (NAME.csv/.json/.meta are written)")
    t.add_argument("--on-duplicate", choices=["error", "last"], default="error",
                   help="a module+runtime measured in several stores: fail (default) or keep the last")
    t.set_defaults(func=cmd_table)

    s = sub.add_parser("sample", help="draw whole networks from a space and build them (NNP + ONNX)")
    s.add_argument("--space", required=True, help="search-space JSON")
    s.add_argument("--num", type=int, default=50, help="number of networks (default 50)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--table", help="latency table (NAME.json): also write accumulated latencies")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--granularity", choices=["block", "leaf"], default=None,
                   help="granularity of the table look-ups (default: the table's, else block)")
    s.add_argument("--table-key", default="Layers Time", help="table LatencyKey summed (default: Layers Time)")
    s.add_argument("--table-stat", default="Median_Time", help="table statistic summed (default: Median_Time)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sample)

    f = sub.add_parser("fit", help="fit scale+bias per runtime and write estimator.py and a report")
    f.add_argument("--sampled", required=True, help="sampled networks directory (from 'profiler sample')")
    f.add_argument("--measured", required=True, nargs="+", help="results store(s) of the sampled networks")
    f.add_argument("--table", required=True, help="latency table (NAME.json or NAME.csv)")
    f.add_argument("--out", required=True, help="estimator.py to write (report.json/.png go beside it)")
    f.add_argument("--runtime", default="", help="comma-separated runtimes (default: all measured)")
    f.add_argument("--folds", type=int, default=5, help="k of the k-fold held-out evaluation (default 5)")
    _add_fit_options(f)
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("run", help="the whole pipeline: generate, bench, table, sample, bench, fit")
    r.add_argument("--space", required=True, help="search-space JSON")
    r.add_argument("--out", required=True, help="work directory (re-run the command to resume)")
    r.add_argument("--num", type=int, default=50, help="sampled networks (default 50)")
    r.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    r.add_argument("--granularity", choices=["block", "leaf"], default="block",
                   help="module granularity (default block)")
    _add_fit_options(r)
    _add_bench_options(r)
    r.set_defaults(func=cmd_run)

    from profiler.cli_docker import add_docker_commands
    from profiler.cli_phone import add_phone_commands
    add_phone_commands(sub)
    add_docker_commands(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ProfilerError as e:
        _err(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        _err("interrupted; everything measured so far is saved (re-run with --resume to continue)")
        return 130
