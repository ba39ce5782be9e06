"""``profiler fit`` (calibration + estimator.py) and ``profiler run`` (the whole pipeline)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict

from profiler.cli.bench import add_bench_options, session_config, summary_lines as bench_summary_lines, target
from profiler.cli.output import csv_list, info


def _print_fit(result: Dict) -> None:
    from profiler.fit.report import summary_lines
    for line in summary_lines(result["report"]):
        print(line)
    for rt, ids in result["missing"].items():
        if ids:
            info(f"note: {len(ids)} sampled networks have no {rt} measurement and were left out "
                  f"({', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''})")
    for name, path in result["files"].items():
        print(f"{name}: {path}")


def cmd_fit(args: argparse.Namespace) -> int:
    from profiler.pipeline.fit import fit_estimator
    result = fit_estimator(Path(args.sampled), [Path(p) for p in args.measured], Path(args.table),
                           Path(args.out), key=args.key, stat=args.stat, table_key=args.table_key,
                           table_stat=args.table_stat, robust=args.robust, folds=args.folds, model=args.model,
                           runtimes=csv_list(args.runtime) if args.runtime else None,
                           normalise=args.normalise)
    _print_fit(result)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from profiler.pipeline.run import run_pipeline
    from profiler.cli.progress import Progress
    result = run_pipeline(Path(args.space), Path(args.out), target(args), session_config(args),
                          num=args.num, seed=args.seed, granularity=args.granularity, key=args.key,
                          stat=args.stat,
                          table_key=args.table_key, table_stat=args.table_stat, robust=args.robust,
                          strategy=args.strategy, model=args.model, normalise=args.normalise,
                          force=args.force, on_stage=lambda msg: info(f"== {msg}"),
                          progress=lambda label: Progress(label, quiet=args.quiet))
    for name, summary in result["summaries"].items():
        for line in bench_summary_lines(summary, verbose=getattr(args, "verbose", False)):
            info(f"[{name}] {line}")
    _print_fit(result)
    paths = result["paths"]
    print(f"table: {paths.table}.csv / .json / .meta")  # the fit's own files are listed above
    for rt, r in result["report"].runtimes.items():
        m = r.heldout_after
        print(f"held-out accuracy {rt}: {100 * m['within_10']:.1f}% of {m['n']} networks within +-10%, "
              f"MAPE {m['mape']:.2f}%, Spearman {m['spearman']:.4f}")
    return 0


def add_fit_options(f: argparse.ArgumentParser) -> None:
    f.add_argument("--key", default="Total Inference Time",
                   choices=["Total Inference Time", "Forward Propagate", "Layers Time"],
                   help="measured network latency to predict (default: Total Inference Time)")
    f.add_argument("--table-key", default="Forward Propagate",
                   choices=["Forward Propagate", "Layers Time", "Total Inference Time"],
                   help="table LatencyKey summed over a network's modules (default: Forward Propagate, "
                        "the additive one; docs/design.md)")
    f.add_argument("--model", default="auto", choices=["auto", "scale-bias", "module-overhead", "per-op"],
                   help="calibration model (default auto: the lowest held-out MAPE; docs/design.md)")
    f.add_argument("--table-stat", default="Median_Time", choices=["Median_Time", "Avg_Time", "Min_Time", "Max_Time"],
                   help="table statistic summed (default: Median_Time; see docs/accuracy.md)")
    f.add_argument("--stat", default="Median_Time", choices=["Median_Time", "Avg_Time", "Min_Time", "Max_Time"],
                   help="statistic of the measured network latency (default: Median_Time)")
    f.add_argument("--robust", action="store_true", help="Huber regression instead of least squares")
    f.add_argument("--normalise", action="store_true",
                   help="divide each measured network latency by the drift reference's network-session / "
                        "module-session speed ratio (block tables; off by default: see docs/accuracy.md)")


def add_commands(sub) -> None:
    f = sub.add_parser("fit", help="fit scale+bias per runtime and write estimator.py and a report")
    f.add_argument("--sampled", required=True, help="sampled networks directory (from 'profiler sample')")
    f.add_argument("--measured", required=True, nargs="+", help="results store(s) of the sampled networks")
    f.add_argument("--table", required=True, help="latency table (NAME.json or NAME.csv)")
    f.add_argument("--out", required=True, help="estimator.py to write (report.json/.png go beside it)")
    f.add_argument("--runtime", default="", help="comma-separated runtimes (default: all measured)")
    f.add_argument("--folds", type=int, default=5, help="k of the k-fold held-out evaluation (default 5)")
    add_fit_options(f)
    f.set_defaults(func=cmd_fit)

    r = sub.add_parser("run", help="the whole pipeline: generate, bench, table, sample, bench, fit")
    r.add_argument("--space", required=True, help="search-space JSON")
    r.add_argument("--out", required=True, help="work directory (re-run the command to resume)")
    r.add_argument("--num", type=int, default=50, help="sampled networks (default 50)")
    r.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    r.add_argument("--granularity", choices=["block", "leaf"], default="block",
                   help="module granularity (default block)")
    r.add_argument("--strategy", choices=["spread", "uniform"], default="spread",
                   help="sampling strategy (default spread; see 'profiler sample --help')")
    r.add_argument("--force", action="store_true",
                   help="write the models even when they would take more than 16 GiB or the free disk space")
    add_fit_options(r)
    add_bench_options(r)
    r.set_defaults(func=cmd_run)
