"""Command line: thin argparse front end. The only module that prints or exits."""

from __future__ import annotations

import sys


def main(argv: "list[str] | None" = None) -> int:
    print("profiler: under construction", file=sys.stderr)
    return 1
