"""``profiler generate`` and ``profiler sample``: models of a search space."""

from __future__ import annotations

import argparse
from pathlib import Path

from profiler.cli.output import info


def cmd_generate(args: argparse.Namespace) -> int:
    from profiler.cli.progress import Progress
    from profiler.models.manifest import read_manifest
    from profiler.pipeline.generate import generate

    with Progress("generate", quiet=args.quiet) as bar:
        path = generate(Path(args.space), Path(args.out), args.granularity, on_progress=bar.update,
                        force=args.force, on_size=lambda n, size: info(f"generate: {n} modules, {_about(size)}"))
    doc = read_manifest(path)
    info(f"generated {len(doc['entries'])} unique {args.granularity} modules -> {path}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from profiler.cli.progress import Progress
    from profiler.pipeline.sample import sample
    with Progress("sample", quiet=args.quiet) as bar:
        path = sample(Path(args.space), args.num, args.seed, Path(args.out),
                      Path(args.table) if args.table else None, args.granularity,
                      key=args.table_key, stat=args.table_stat, on_progress=bar.update, strategy=args.strategy,
                      force=args.force, on_size=lambda n, size: info(f"sample: {n} networks, {_about(size)}"))
    info(f"sampled {args.num} networks ({args.strategy}, extremes first, seed {args.seed}) -> {path}")
    return 0


def _about(size: int) -> str:
    return f"about {size / 2**20:.1f} MiB of models"


def add_generate(sub) -> None:
    g = sub.add_parser("generate", help="write one NNP + ONNX model per unique module of a search space")
    g.add_argument("--space", required=True, help="search-space JSON (see search_spaces/)")
    g.add_argument("--out", required=True, help="output directory (manifest.json + models)")
    g.add_argument("--granularity", choices=["block", "leaf"], default="block",
                   help="module granularity (default: block; see docs/design.md)")
    g.add_argument("--force", action="store_true",
                   help="write even when the models would take more than 16 GiB or the free disk space")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)


def add_sample(sub) -> None:
    s = sub.add_parser("sample", help="draw whole networks from a space and build them (NNP + ONNX)")
    s.add_argument("--space", required=True, help="search-space JSON")
    s.add_argument("--num", type=int, default=50, help="number of networks (default 50)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--table", help="latency table (NAME.json): also write accumulated latencies")
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--granularity", choices=["block", "leaf"], default=None,
                   help="granularity of the table look-ups (default: the table's, else block)")
    s.add_argument("--strategy", choices=["spread", "uniform"], default="spread",
                   help="spread (default): per-network propensities for skip and large candidates, so the "
                        "sample spans small to large networks; uniform: every choice uniform. The space's "
                        "extreme architectures always come first (docs/design.md)")
    s.add_argument("--table-key", default="Forward Propagate",
                   help="table LatencyKey summed (default: Forward Propagate, the additive key)")
    s.add_argument("--table-stat", default="Median_Time", help="table statistic summed (default: Median_Time)")
    s.add_argument("--force", action="store_true",
                   help="write even when the networks would take more than 16 GiB or the free disk space")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_sample)
