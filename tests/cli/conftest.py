"""Fixtures of the fault probes: the tiny space generated, measured and sampled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.faults import FAST, cli, write_space


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict:
    """The tiny space T: its modules, a store of them, a table, two samples (seeds 0 and 1)
    and a store of sample 0 -- all made with the CLI. Tests copy what they change."""
    d = tmp_path_factory.mktemp("tiny")
    space = write_space(d / "T.json")
    steps = [("generate", "--space", space, "--out", d / "m", "-q"),
             ("bench", "--models", d / "m", "--out", d / "m.results", *FAST),
             ("table", "--results", d / "m.results", "--out", d / "t"),
             ("sample", "--space", space, "--num", "5", "--seed", "0", "--out", d / "n0", "-q"),
             ("sample", "--space", space, "--num", "5", "--seed", "1", "--out", d / "n1", "-q"),
             ("bench", "--models", d / "n0", "--out", d / "n0.results", *FAST)]
    for step in steps:
        proc = cli(*step)
        assert proc.returncode == 0, proc.stderr
    return {"dir": d, "space": space, "modules": d / "m", "store": d / "m.results", "table": d / "t.json",
            "n0": d / "n0", "n1": d / "n1", "n0_store": d / "n0.results"}
