"""``profiler import``: results of Qualcomm's own tools -> a results store for ``profiler table``.

Formats: ``snpe-bench`` (snpe_bench.py ``benchmark_stats_*.csv/.json``), ``qnn-profile``
(``qnn-profile-viewer`` text), ``ai-hub`` (AI Hub profile JSON), ``diagview-csv``
(``snpe-diagview --output`` CSV). ``import-snpe-bench`` stays as an alias of
``import --format snpe-bench``. The work is in :mod:`profiler.phone.snpe_import`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("snpe-bench", "qnn-profile", "ai-hub", "diagview-csv")  # = profiler.phone.snpe_import.FORMATS


def cmd_import(args: argparse.Namespace) -> int:
    from profiler.phone.snpe_import import import_profiles
    summary = import_profiles([Path(p) for p in args.files], Path(args.out), fmt=args.format, uid=args.uid,
                              models=Path(args.models) if args.models else None,
                              runtime=getattr(args, "runtime", None))
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


def _which(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--uid", help="the ModuleUID measured (one file)")
    which.add_argument("--models", help="models folder (manifest.json): each file is matched to the module whose "
                                        "model file name equals the profile's name (snpe_bench: the DLC or config "
                                        "Name; other formats: the file's name without extension)")
    p.add_argument("--out", required=True, help="results store to create (or append to, if it holds imports of "
                                                "the same format)")


def add_import_commands(sub) -> None:
    """``import`` and its alias ``import-snpe-bench``."""
    i = sub.add_parser("import", help="turn SNPE/QNN/AI Hub profiling output into a results store for "
                                      "'profiler table'")
    i.add_argument("--format", required=True, choices=FORMATS,
                   help="snpe-bench: benchmark_stats_*.csv/.json; qnn-profile: qnn-profile-viewer text; ai-hub: "
                        "AI Hub profile JSON; diagview-csv: snpe-diagview --output CSV")
    i.add_argument("files", nargs="+", metavar="FILE")
    _which(i)
    i.add_argument("--runtime", default=None, metavar="RT",
                   help="the records' runtime (default: qnn-profile HTP, diagview-csv DSP, ai-hub the compute "
                        "units; snpe-bench takes its flavors)")
    i.set_defaults(func=cmd_import)

    a = sub.add_parser("import-snpe-bench", help="alias of 'import --format snpe-bench'")
    a.add_argument("--results", required=True, nargs="+", metavar="FILE", dest="files",
                   help="benchmark_stats_<Name>.csv or .json files")
    _which(a)
    a.set_defaults(func=cmd_import, format="snpe-bench", runtime=None)


__all__ = ["FORMATS", "add_import_commands", "cmd_import"]
