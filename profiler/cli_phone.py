"""CLI pieces for the phone target (argparse options, commands). Owned by the phone work."""

from __future__ import annotations

import argparse


def add_phone_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench``/``run`` that only matter with ``--target phone``."""


def add_phone_commands(sub) -> None:
    """Extra subcommands (e.g. ``devices``, ``import-snpe-bench``)."""


def phone_target(args: argparse.Namespace):
    from profiler.errors import ProfilerError
    raise ProfilerError("--target phone: not available yet")
