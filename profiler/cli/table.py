"""``profiler table``: results stores -> NAME.csv / NAME.json / NAME.meta."""

from __future__ import annotations

import argparse
from pathlib import Path

from profiler.cli.output import info


def cmd_table(args: argparse.Namespace) -> int:
    from profiler.table.build import build_table
    table, written = build_table([Path(p) for p in args.results], Path(args.out), args.on_duplicate)
    const = [rt for rt in table.runtimes if table.has_constant(rt)]
    extra = f" + the per-network constant ({', '.join(const)})" if const else ""
    info(f"table: {len(table.module_uids)} modules x {len(table.runtimes)} runtimes "
         f"({', '.join(table.runtimes)}){extra} -> {', '.join(str(p) for p in written)}")
    return 0


def add_commands(sub) -> None:
    t = sub.add_parser("table", help="aggregate results stores into NAME.csv, NAME.json and NAME.meta")
    t.add_argument("--results", required=True, nargs="+", help="one or more results stores")
    t.add_argument("--out", required=True, help="output name (NAME.csv/.json/.meta are written)")
    t.add_argument("--on-duplicate", choices=["error", "last"], default="error",
                   help="a module+runtime measured in several stores: fail (default) or keep the last")
    t.set_defaults(func=cmd_table)
