"""The contract between a bench session and a target (host, phone): what a target must do.

A target never writes the store and never prints: :meth:`Target.run_batches` yields one raw
record per item (see :mod:`profiler.session.record`) and the session loop stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple


@dataclass
class MeasureConfig:
    """How much to run: warm-up, calibrated repeats bounded by min/max, profiled runs, and
    how many interleaved rounds a batch's timed runs are spread over."""

    warmup: int = 10
    min_time_s: float = 0.2
    min_repeat: int = 30
    max_repeat: int = 1000
    layer_runs: int = 20
    threads: int = 1
    rounds: int = 20


@dataclass
class SessionConfig:
    runtimes: Sequence[str]
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    batch_size: int = 0  # 0: every pending module of a runtime in one interleaved batch
    timeout_s: float = 600.0
    remeasure: int = 2
    affinity: Optional[List[int]] = None


@dataclass
class SessionSummary:
    store: Path
    total: int
    measured: int
    skipped: int
    failed: List[Tuple[str, str, str]]
    unstable: List[Tuple[str, str, List[str]]]


Batch = Tuple[str, List[Dict[str, Any]]]  # (runtime, items)


class Target:
    """Where models run. ``run_batch`` yields one record per item, in any order."""

    name = "abstract"
    # measure a modules manifest's null network (its ``constant`` entry) as the table's
    # per-network constant row; phones keep their own rule (Layers Time = Σ DLC layers)
    measures_constant = False
    # the session hands run_batches the batches of every runtime at once (phones: one queue, so
    # no phone idles at the end of one runtime's batch while another finishes); otherwise one
    # batch per call, each measured (and re-measured) before the next
    streams_batches = False

    def facts(self, runtimes: Sequence[str]) -> Dict[str, Any]:
        raise NotImplementedError

    def check_runtimes(self, runtimes: Sequence[str]) -> None:
        raise NotImplementedError

    def use_store(self, store: Path) -> None:
        """Told the results store's path before anything is measured (default: ignored)."""

    def run_batch(self, runtime: str, items: List[Dict[str, Any]], cfg: SessionConfig) -> Iterator[Dict[str, Any]]:
        raise NotImplementedError

    def run_batches(self, batches: Sequence[Batch], cfg: SessionConfig) -> Iterator[Tuple[str, Dict[str, Any]]]:
        """``(runtime, record)`` for every item of every batch, in any order; by default each
        batch in turn through :meth:`run_batch`."""
        for runtime, items in batches:
            for rec in self.run_batch(runtime, items, cfg):
                yield runtime, rec
