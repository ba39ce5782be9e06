"""The one table builder: results stores -> :class:`~profiler.table.LatencyTable` -> NAME.csv/.json/.meta."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple


def table_meta(store_meta: Dict[str, Any], source: Path) -> Dict[str, Any]:
    """A store's (merged) meta as the flat facts a table records: everything the store says,
    plus ``granularity`` and ``space`` of the measured models and the store's path."""
    from profiler.table.latency import flatten
    flat = flatten(store_meta)
    models = store_meta.get("models") or {}
    space = models.get("space") or {}
    flat["granularity"] = models.get("granularity")
    flat["space"] = space.get("name")
    flat["source"] = str(source)
    flat.pop("config.affinity", None)
    return {k: v for k, v in flat.items() if v is not None}


def build_table(results: Sequence[Path], name: Path, on_duplicate: str = "error") -> Tuple[Any, List[Path]]:
    """Read every store, build the table from its ok records, write NAME.csv/.json/.meta."""
    from profiler.table.latency import LatencyTable
    table = LatencyTable.from_stores([Path(p) for p in results], on_duplicate=on_duplicate)
    return table, table.save(name)
