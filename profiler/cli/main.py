"""The ``profiler`` command: builds the parser from the command groups and maps errors to exit codes.

Each command group lives in its own module of :mod:`profiler.cli` and imports heavy libraries
inside its command functions, so ``profiler --help`` is instant.
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from profiler import __version__
from profiler.cli.output import error
from profiler.errors import ProfilerError


def build_parser() -> argparse.ArgumentParser:
    from profiler.cli import bench, docker, fit, imports, models, phone, space, table
    p = argparse.ArgumentParser(
        prog="profiler",
        description="On-device latency profiler for neural architecture search.")
    p.add_argument("--version", action="version", version=f"profiler {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    models.add_generate(sub)
    bench.add_commands(sub)
    table.add_commands(sub)
    models.add_sample(sub)
    space.add_commands(sub)
    fit.add_commands(sub)
    phone.add_phone_commands(sub)
    imports.add_import_commands(sub)
    docker.add_docker_commands(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ProfilerError as e:
        error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130
