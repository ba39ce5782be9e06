"""``profiler space convert``: an nnabla-nas search config -> our explicit search-space JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from profiler.cli.output import info


def cmd_convert(args: argparse.Namespace) -> int:
    from profiler.files import write_text
    from profiler.space.nnabla_nas import convert_file
    import json
    doc = convert_file(Path(args.config))
    write_text(Path(args.out), json.dumps(doc, indent=2) + "\n")
    n = sum(layer.get("blocks", 0) for layer in doc["layers"])
    info(f"converted {args.config} ({n} choice blocks, {len(doc['candidates'])} candidates) "
         f"-> {args.out}")
    return 0


def add_commands(sub) -> None:
    s = sub.add_parser("space", help="search-space utilities (convert an nnabla-nas config)")
    ssub = s.add_subparsers(dest="space_command", metavar="SUBCOMMAND")
    ssub.required = True
    c = ssub.add_parser("convert", help="write an nnabla-nas search config (JSON, mobilenet "
                        "search space) as a profiler search-space file")
    c.add_argument("config", help="nnabla-nas config, e.g. mobilenet_cifar10_search.json")
    c.add_argument("--out", required=True, help="search-space JSON to write")
    c.set_defaults(func=cmd_convert)
