"""Command line: thin argparse front end, one file per command group; the only place that
prints or exits. ``profiler.cli:main`` is the console script."""

from profiler.cli.main import main

__all__ = ["main"]
