"""Shared fixtures: the repository's search spaces and models generated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT / "search_spaces" / "mobilenet_v2_cifar10.json"
IMAGENET = ROOT / "search_spaces" / "proxylessnas_mobile_imagenet.json"


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
