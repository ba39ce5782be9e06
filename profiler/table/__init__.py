"""Latency tables: :class:`LatencyTable` (look-ups and its CSV/JSON/.meta files), the one builder
from results stores (:mod:`profiler.table.build`) and accumulation (:mod:`profiler.table.accumulate`)."""

from profiler.table.latency import LatencyTable

__all__ = ["LatencyTable"]
