"""Results stores -> :class:`~profiler.table.LatencyTable` (glue between store and table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from profiler.store import read_store


def flatten_meta(meta: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    """Nested store metadata as flat ``a.b`` keys with scalar or list values."""
    flat: Dict[str, Any] = {}
    for k, v in meta.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(flatten_meta(v, key + "."))
        else:
            flat[key] = v
    return flat


def table_meta(store_meta: Dict[str, Any], source: Path) -> Dict[str, Any]:
    flat = flatten_meta(store_meta)
    models = store_meta.get("models") or {}
    space = models.get("space") or {}
    flat["granularity"] = models.get("granularity")
    flat["space"] = space.get("name")
    flat["source"] = str(source)
    flat.pop("config.affinity", None)
    return {k: v for k, v in flat.items() if v is not None}


def build_table(results: Sequence[Path], name: Path, on_duplicate: str = "error") -> Tuple[Any, List[Path]]:
    """Read every store, build the table from its ok records, write NAME.csv/.json/.meta."""
    from profiler.table import LatencyTable
    records: List[Dict[str, Any]] = []
    metas: List[Dict[str, Any]] = []
    for path in results:
        contents = read_store(path)
        records.extend({**r, "source": str(path)} for r in contents.ok_records())
        metas.append(table_meta(contents.merged_meta(), path))
    table = LatencyTable.from_records(records, metas, sources=[str(p) for p in results],
                                      on_duplicate=on_duplicate)
    written = table.save(name)
    return table, list(written) if written else [Path(f"{name}.{ext}") for ext in ("csv", "json", "meta")]
