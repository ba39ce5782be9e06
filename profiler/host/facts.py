"""Facts about the host recorded with every session (pyperf-style metadata)."""

from __future__ import annotations

import os
import platform
from typing import Any, Dict, Optional


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def cpu_model() -> str:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def host_facts() -> Dict[str, Any]:
    """CPU model, core count, governor, kernel, Python and library versions."""
    import numpy
    facts: Dict[str, Any] = {
        "hostname": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor") or "unknown",
        "kernel": platform.release(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
    }
    try:
        facts["loadavg_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    for var in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            facts[var] = os.environ[var]
    return facts
