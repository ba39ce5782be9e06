"""CLI pieces for containerised sessions (``--docker IMAGE``, ``profiler docker build``)."""

from __future__ import annotations

import argparse


def add_docker_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench`` for running the session inside a container."""


def add_docker_commands(sub) -> None:
    """The ``docker`` subcommand group."""


def bench_in_docker(args: argparse.Namespace) -> int:
    from profiler.errors import ProfilerError
    raise ProfilerError("--docker: not available yet")
