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


# --- parser -------------------------------------------------------------------------------

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
