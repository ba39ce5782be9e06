"""``manifest.json``: what a models directory holds (modules or whole networks).

Format ``profiler-models`` version 1::

    {"format": "profiler-models", "version": 1, "kind": "modules" | "networks",
     "space": {"name", "path", "sha256"}, "granularity": "block" | "leaf" | null,
     "generator": {"profiler": "0.1.0", "nnabla": "1.39.0", "onnx_opset": 13},
     "entries": [{"uid", "files": {"nnp", "onnx"}, "input_shapes", "output_shape", ...}]}

The bench runner only needs ``uid``, ``files`` and ``input_shapes`` of each entry; file names
are relative to the manifest's directory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Union

from profiler.errors import ManifestError
from profiler.files import write_json

FORMAT = "profiler-models"
VERSION = 1
FILENAME = "manifest.json"


def manifest_path(models_dir: Union[str, Path]) -> Path:
    p = Path(models_dir)
    return p if p.name.endswith(".json") else p / FILENAME


def write_manifest(models_dir: Path, doc: Dict[str, Any]) -> Path:
    doc = {"format": FORMAT, "version": VERSION, **doc}
    path = manifest_path(models_dir)
    write_json(path, doc)
    return path


def read_manifest(models_dir: Union[str, Path]) -> Dict[str, Any]:
    """Load and check a manifest; errors name the file and what to do."""
    path = manifest_path(models_dir)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{path}: not found; create it with 'profiler generate' "
                            "or 'profiler sample'") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError(f"{path}: not a profiler models manifest (format {FORMAT!r} expected)")
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise ManifestError(f"{path}: manifest version {doc.get('version')} is newer than this "
                            f"profiler reads ({VERSION}); upgrade profiler")
    entries = doc.get("entries")
    if not isinstance(entries, list):
        raise ManifestError(f"{path}: 'entries' must be a list")
    for i, e in enumerate(entries):
        for key in ("uid", "files", "input_shapes"):
            if key not in e:
                raise ManifestError(f"{path}: entries/{i}: missing key {key!r}")
    doc["_dir"] = str(path.parent)
    return doc


def entry_file(doc: Dict[str, Any], entry: Dict[str, Any], kind: str) -> Path:
    """Absolute path of an entry's ``nnp`` or ``onnx`` file."""
    return Path(doc["_dir"]) / entry["files"][kind]
