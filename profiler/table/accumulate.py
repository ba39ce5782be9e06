"""Accumulated latency: a network's modules looked up in a table and summed (pure)."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

from profiler.errors import TableError


def accumulate(entries: Sequence[Dict[str, Any]], table: Any, granularity: str, key: str,
               stat: str) -> Dict[str, Dict[str, float]]:
    """``{arch id: {runtime: Σ table[uid][runtime][key][stat]}}`` for every table runtime.

    A module missing from the table is an error naming the module and the runtime.
    """
    out: Dict[str, Dict[str, float]] = {}
    for e in entries:
        uids = e["module_uids"][granularity]
        out[e["uid"]] = {rt: network_sum(table, uids, rt, key, stat, e["uid"]) for rt in table.runtimes}
    return out


def network_sum(table: Any, uids: List[str], runtime: str, key: str, stat: str, arch_id: str) -> float:
    """Σ of the table look-ups of one network's modules; a missing module names the network."""
    total = 0.0
    for uid in uids:
        try:
            total += table.lookup(uid, runtime, key, stat)
        except TableError as e:
            hint = "" if "search space and granularity" in str(e) else \
                " (was the table measured for this search space and granularity?)"
            raise TableError(f"{arch_id}: {e}{hint}") from None
    return total
