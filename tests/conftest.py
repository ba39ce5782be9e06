"""Shared fixtures: the repository's search spaces and models generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT / "search_spaces" / "mobilenet_v2_cifar10.json"
IMAGENET = ROOT / "search_spaces" / "proxylessnas_mobile_imagenet.json"
OFA = ROOT / "search_spaces" / "ofa_mbv3_imagenet.json"


@pytest.fixture(scope="session")
def cifar_space_path() -> Path:
    return CIFAR


@pytest.fixture(scope="session")
def cifar_blocks(tmp_path_factory) -> Path:
    """CIFAR space generated at block granularity (the default)."""
    from profiler.pipeline.generate import generate
    out = tmp_path_factory.mktemp("cifar-blocks")
    generate(CIFAR, out, "block")
    return out


@pytest.fixture(scope="session")
def cifar_leaves(tmp_path_factory) -> Path:
    from profiler.pipeline.generate import generate
    out = tmp_path_factory.mktemp("cifar-leaves")
    generate(CIFAR, out, "leaf")
    return out


@pytest.fixture(scope="session")
def ofa_small(tmp_path_factory) -> Path:
    """The shipped OFA space at 32x32 with two candidates (every layer kind, quick to build)."""
    import json
    doc = json.loads(OFA.read_text())
    doc["name"] = "ofa_small"
    doc["input_shape"] = [3, 32, 32]
    doc["candidates"] = [{"expand_ratio": 3, "kernel": 3}, {"expand_ratio": 6, "kernel": 7}]
    path = tmp_path_factory.mktemp("ofa-small") / "ofa_small.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="session")
def ofa_blocks(tmp_path_factory, ofa_small) -> Path:
    from profiler.pipeline.generate import generate
    out = tmp_path_factory.mktemp("ofa-blocks")
    generate(ofa_small, out, "block")
    return out


@pytest.fixture(scope="session")
def ofa_leaves(tmp_path_factory, ofa_small) -> Path:
    from profiler.pipeline.generate import generate
    out = tmp_path_factory.mktemp("ofa-leaves")
    generate(ofa_small, out, "leaf")
    return out
