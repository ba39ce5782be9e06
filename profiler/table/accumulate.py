"""Accumulated latency: a network's modules looked up in a table and summed (pure).

A network's accumulated latency is the sum of its modules' look-ups under the table key plus,
once, the table's per-network constant (the reserved ``@network`` row, see
:meth:`~profiler.table.latency.LatencyTable.network_constant`) under ``const_key``: the key the
whole networks are measured by (``Total Inference Time`` by default: one application call with
its input and output copies). A table without the row adds 0.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from profiler.errors import TableError
from profiler.keys import TOTAL_INFERENCE


def accumulate(entries: Sequence[Dict[str, Any]], table: Any, granularity: str, key: str,
               stat: str, const_key: Optional[str] = TOTAL_INFERENCE) -> Dict[str, Dict[str, float]]:
    """``{arch id: {runtime: Σ table[uid][runtime][key][stat] + constant}}`` for every table runtime.

    A module missing from the table is an error naming the module and the runtime.
    """
    out: Dict[str, Dict[str, float]] = {}
    for e in entries:
        uids = e["module_uids"][granularity]
        out[e["uid"]] = {rt: network_sum(table, uids, rt, key, stat, e["uid"], const_key) for rt in table.runtimes}
    return out


def constant(table: Any, runtime: str, const_key: Optional[str], stat: str) -> float:
    """The per-network constant added once per network (0 without a row or ``const_key=None``)."""
    if const_key is None or not hasattr(table, "network_constant"):
        return 0.0
    try:
        return table.network_constant(runtime, const_key, stat)
    except TableError as e:
        raise TableError(f"the per-network constant: {e}") from None


def network_sum(table: Any, uids: List[str], runtime: str, key: str, stat: str, arch_id: str,
                const_key: Optional[str] = TOTAL_INFERENCE) -> float:
    """Σ of the table look-ups of one network's modules plus the per-network constant once;
    a missing module names the network."""
    total = constant(table, runtime, const_key, stat)
    for uid in uids:
        try:
            total += table.lookup(uid, runtime, key, stat)
        except TableError as e:
            hint = "" if "search space and granularity" in str(e) else \
                " (was the table measured for this search space and granularity?)"
            raise TableError(f"{arch_id}: {e}{hint}") from None
    return total
