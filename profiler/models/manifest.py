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

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Union

from profiler.errors import ManifestError
from profiler.files import file_digest, write_json

FORMAT = "profiler-models"
VERSION = 1
FILENAME = "manifest.json"


def manifest_path(models_dir: Union[str, Path]) -> Path:
    p = Path(models_dir)
    return p if p.name.endswith(".json") else p / FILENAME


def prepare_out_dir(out_dir: Path, kind: str) -> None:
    """Create the models directory ``out_dir`` for a manifest of ``kind`` (modules or networks),
    refusing a path that cannot be one and a ``manifest.json`` the profiler did not write or
    of another kind (it would be replaced)."""
    out_dir = Path(out_dir)
    if out_dir.name.endswith(".json"):
        raise ManifestError(f"--out {out_dir}: names the models directory (manifest.json is written "
                            "inside it); drop the .json")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ManifestError(f"--out {out_dir}: is a file, not a directory; choose another --out") from None
    except NotADirectoryError:
        raise ManifestError(f"--out {out_dir}: a parent of it is a file; choose another --out") from None
    except OSError as e:
        raise ManifestError(f"--out {out_dir}: cannot create the directory ({e.strerror}); "
                            "choose a writable --out") from None
    check_replaceable(out_dir, kind)


def check_replaceable(out_dir: Path, kind: str) -> None:
    """Raise unless ``out_dir``'s manifest.json is absent or a profiler manifest of ``kind``."""
    path = manifest_path(out_dir)
    if not path.exists():
        return
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestError(f"{path}: exists and was not written by the profiler; it would be "
                            "replaced: choose another --out")
    if doc.get("kind") != kind:
        raise ManifestError(f"{path}: holds {doc.get('kind')}, not {kind}; it would be replaced: "
                            "choose another --out")


def write_manifest(models_dir: Path, doc: Dict[str, Any]) -> Path:
    doc = {"format": FORMAT, "version": VERSION, **doc}
    check_replaceable(Path(models_dir), doc.get("kind"))
    path = manifest_path(models_dir)
    write_json(path, doc)
    return path


def entry_digest(entry: Dict[str, Any]) -> str:
    """A digest of what an entry *is* (its uid, shapes and, for networks, choices and module
    UIDs): stored with each result so a measurement is tied to the model it measured, not to
    a reused id such as ``arch-0007``."""
    keys = ("uid", "input_shapes", "choices", "module_uids")
    ident = {k: entry[k] for k in keys if k in entry}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def files_digest(models_dir: Path, files: Dict[str, str]) -> Dict[str, str]:
    """sha256 of each of an entry's files (recorded at generation, checked before reuse)."""
    return {k: file_digest(Path(models_dir) / name) for k, name in files.items()}


def files_intact(models_dir: Path, entry: Dict[str, Any]) -> bool:
    """True when every file of ``entry`` exists and matches the digest the manifest records."""
    want = entry.get("sha256")
    files = entry.get("files")
    if not isinstance(want, dict) or not isinstance(files, dict) or set(want) != set(files):
        return False
    try:
        return files_digest(models_dir, files) == want
    except OSError:
        return False


def read_manifest(models_dir: Union[str, Path]) -> Dict[str, Any]:
    """Load and check a manifest; errors name the file and what to do."""
    path = manifest_path(models_dir)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"{path}: not found; create it with 'profiler generate' "
                            "or 'profiler sample'") from None
    except (IsADirectoryError, NotADirectoryError):
        raise ManifestError(f"{path}: not a file; pass the models directory holding "
                            "manifest.json") from None
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text, not a profiler models manifest") from None
    except PermissionError:
        raise ManifestError(f"{path}: permission denied") from None
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
        if not isinstance(e, dict):
            raise ManifestError(f"{path}: entries/{i}: not an object; the manifest is corrupt "
                                "(re-create it with 'profiler generate' or 'profiler sample')")
        for key in ("uid", "files", "input_shapes"):
            if key not in e:
                raise ManifestError(f"{path}: entries/{i}: missing key {key!r}")
        if not isinstance(e["uid"], str) or not isinstance(e["files"], dict) or not isinstance(
                e["files"].get("onnx"), str):
            raise ManifestError(f"{path}: entries/{i}: 'uid' must be a string and 'files' an object "
                                "with at least an 'onnx' file name; the manifest is corrupt")
    doc["_dir"] = str(path.parent)
    return doc


def entry_file(doc: Dict[str, Any], entry: Dict[str, Any], kind: str) -> Path:
    """Absolute path of an entry's ``nnp`` or ``onnx`` file."""
    return Path(doc["_dir"]) / entry["files"][kind]
