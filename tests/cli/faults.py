"""Shared pieces of the fault-and-bad-input probes (issue 12): the tiny space T, the fast
bench options, and running the CLI in a subprocess as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
TINY = {"name": "tiny", "input_shape": [3, 8, 8],
        "candidates": [{"expand_ratio": 1, "kernel": 3}, {"expand_ratio": 2, "kernel": 3}],
        "skip_connect": True,
        "layers": [{"type": "ConvBNReLU", "out_channels": 8, "kernel": 3, "stride": 1},
                   {"type": "ChoiceStage", "out_channels": 8, "blocks": 2, "stride": 1},
                   {"type": "GlobalAvgPool"}, {"type": "Linear", "out_features": 4}]}
FAST = ["--warmup", "2", "--min-time", "0.01", "--min-repeat", "5", "--max-repeat", "50",
        "--layer-runs", "3", "--rounds", "3", "-q"]


def write_space(path: Path, **changes) -> Path:
    path.write_text(json.dumps({**TINY, **changes}))
    return path


def cli(*args: str, cwd: Optional[Path] = None, env: Optional[Dict[str, str]] = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "profiler", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str, code: Optional[int] = None) -> str:
    """Assert a failed run printed exactly one error line (no traceback) containing ``needles``."""
    assert proc.returncode != 0, proc.stderr
    if code is not None:
        assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def snapshot(*paths: Path) -> Dict[str, bytes]:
    """Bytes of every file under ``paths`` (to assert nothing stored changed)."""
    out: Dict[str, bytes] = {}
    for p in paths:
        files: Sequence[Path] = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file())
        for f in files:
            out[str(f)] = f.read_bytes()
    return out
