"""Run every benchmark in turn (`make bench`); each prints a table and writes bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["lookup.py", "reproducibility.py", "overhead.py", "phone_overhead.py", "fidelity.py"]


def main() -> int:
    only = sys.argv[1:]
    rc = 0
    for script in SCRIPTS:
        if only and script.split(".")[0] not in only:
            continue
        print(f"\n=== {script}", flush=True)
        rc |= subprocess.run([sys.executable, str(HERE / script)], cwd=HERE).returncode
    return rc


if __name__ == "__main__":
    sys.exit(main())
