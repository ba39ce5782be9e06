"""The package layout: a light ``profiler --help`` and imports that only run down the pipeline."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import pytest

PKG = Path(__file__).resolve().parents[2] / "profiler"
HEAVY = ("nnabla", "onnx", "onnxruntime", "sklearn", "pandas", "matplotlib", "numpy", "scipy", "docker",
         "adbutils", "jsonschema")

# Each package may import only the packages listed for it (and itself, and the top-level
# profiler.errors / profiler.files / profiler.keys / profiler.__init__).
ALLOWED: Dict[str, Set[str]] = {
    "space": set(),
    "models": {"space"},
    "session": {"models"},
    "host": {"session", "models"},
    "phone": {"session", "models", "space"},
    "container": {"models", "phone"},  # the image carries the SNPE SDK: its version is read with phone.snpe
    "table": {"session"},
    "fit": {"table"},
    "pipeline": {"space", "models", "session", "table", "fit"},
    "cli": {"space", "models", "session", "host", "phone", "container", "table", "fit", "pipeline"},
}
TOP = {"errors", "files", "keys", "__init__", "__main__", "__version__"}


def _imports(path: Path) -> Set[str]:
    """Every ``profiler.X`` module a file imports, at any depth (lazy imports included)."""
    out: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "profiler":
                out.update(f"profiler.{a.name}" for a in node.names)
            elif node.module.startswith("profiler."):
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("profiler."))
    return out


def test_at_most_five_modules_directly_under_the_package():
    top = sorted(p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= 5, top
    assert set(top) <= TOP - {"__version__"}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_down_the_pipeline(package):
    bad = []
    for path in sorted((PKG / package).rglob("*.py")):
        for mod in _imports(path):
            first = mod.split(".")[1]
            if first in TOP or first == package:
                continue
            if first not in ALLOWED[package]:
                bad.append(f"{path.relative_to(PKG.parent)} imports {mod}")
    assert not bad, "\n".join(bad)


def test_profiler_help_imports_nothing_heavy():
    code = ("import sys, contextlib, io\n"
            "from profiler.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("command", ["bench", "run", "docker", "devices"])
def test_subcommand_help_imports_nothing_heavy(command):
    code = ("import sys, contextlib, io\n"
            "from profiler.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main([{command!r}, '--help'])\n    except SystemExit:\n        pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_worker_module_runs_as_the_host_target_starts_it():
    proc = subprocess.run([sys.executable, "-m", "profiler.host.worker"], input='{"runtime": "ORT_CPU", "items": []}',
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
