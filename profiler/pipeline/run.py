"""``profiler run``: generate -> bench modules -> table -> sample -> bench networks -> fit.

Every step writes into WORKDIR and is resumable: generation and sampling reuse the files
they already wrote, bench sessions continue their stores, so re-running the same command
after Ctrl-C or a crash picks up where it stopped.

WORKDIR layout::

    modules/            manifest.json + one NNP/ONNX per unique module
    modules.results     results store of the module session
    table.csv/.json/.meta
    networks/           manifest.json + sampled whole networks, accum.json
    networks.results    results store of the network session
    estimator.py        the generated estimator
    report.json/.png    held-out accuracy report
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from profiler.errors import ProfilerError
from profiler.session.loop import run_session
from profiler.session.target import SessionConfig, SessionSummary, Target

Stage = Callable[[str], None]
Progress = Callable[..., None]


@dataclass
class PipelinePaths:
    workdir: Path

    @property
    def modules(self) -> Path:
        return self.workdir / "modules"

    @property
    def module_results(self) -> Path:
        return self.workdir / "modules.results"

    @property
    def table(self) -> Path:
        return self.workdir / "table"

    @property
    def networks(self) -> Path:
        return self.workdir / "networks"

    @property
    def network_results(self) -> Path:
        return self.workdir / "networks.results"

    @property
    def estimator(self) -> Path:
        return self.workdir / "estimator.py"


def run_pipeline(space: Path, workdir: Path, target: Target, cfg: SessionConfig, num: int = 50,
                 seed: int = 0, granularity: str = "block", key: str = "Total Inference Time",
                 stat: str = "Median_Time", table_key: str = "Forward Propagate",
                 table_stat: str = "Median_Time", robust: bool = False,
                 strategy: str = "spread", model: str = "auto", normalise: bool = False,
                 force: bool = False, on_stage: Optional[Stage] = None,
                 progress: Optional[Callable[[str], Any]] = None) -> Dict[str, Any]:
    """Run every step; ``progress(label)`` returns a context manager with ``update``."""
    from profiler.pipeline.fit import fit_estimator
    from profiler.pipeline.generate import check_output_size, estimate_output, generate
    from profiler.pipeline.sample import estimate_sample, sample
    from profiler.table.build import build_table

    paths = PipelinePaths(Path(workdir))
    stage = on_stage or (lambda _msg: None)
    # modules and networks together, before anything is measured (a bad --num is refused here)
    n, size = estimate_output(space, granularity)
    size += estimate_sample(space, num, seed, strategy)
    stage(f"0/6 {n} modules and {num} networks, about {size / 2**20:.1f} MiB of models")
    check_output_size(str(space), f"{n} modules and {num} networks", size, force, paths.workdir)
    paths.workdir.mkdir(parents=True, exist_ok=True)

    def bar(label: str) -> Any:
        if progress is None:
            from contextlib import nullcontext
            return nullcontext(None)
        return progress(label)

    summaries: Dict[str, SessionSummary] = {}
    stage(f"1/6 generate {granularity} modules of {space}")
    with bar("generate") as b:
        generate(space, paths.modules, granularity, on_progress=b.update if b else None, force=force)
    stage("2/6 bench modules")
    with bar("bench modules") as b:
        summaries["modules"] = run_session(paths.modules, paths.module_results, target, cfg, resume=True,
                                           on_progress=b.update if b else None)
    stage("3/6 latency table")
    table, _ = build_table([paths.module_results], paths.table)
    if summaries["modules"].failed:
        failed = ", ".join(f"{rt} {uid[:60]}" for uid, rt, _ in summaries["modules"].failed[:3])
        raise ProfilerError(f"{len(summaries['modules'].failed)} modules failed to measure ({failed} ...); "
                            f"the table lacks them, so networks cannot be estimated. Fix the cause and "
                            f"re-run the same command to retry only those")
    stage(f"4/6 sample {num} networks ({strategy}, seed {seed})")
    with bar("sample") as b:
        sample(space, num, seed, paths.networks, table_path=Path(f"{paths.table}.json"),
               granularity=granularity, key=table_key, stat=table_stat,
               on_progress=b.update if b else None, strategy=strategy, force=force)
    stage("5/6 bench networks")
    with bar("bench networks") as b:
        summaries["networks"] = run_session(paths.networks, paths.network_results, target, cfg, resume=True,
                                            on_progress=b.update if b else None)
    stage("6/6 fit estimator")
    result = fit_estimator(paths.networks, [paths.network_results], Path(f"{paths.table}.json"),
                           paths.estimator, key=key, stat=stat, table_key=table_key, table_stat=table_stat,
                           robust=robust, model=model, normalise=normalise)
    result["summaries"] = summaries
    result["paths"] = paths
    result["table"] = table
    return result
