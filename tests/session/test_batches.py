"""How the session loop hands batches to a target and re-measures noisy results: one batch per
call (host), or every runtime's batch in one call for a target that streams (phones)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import pytest

from profiler.keys import LATENCY_KEYS
from profiler.models.manifest import write_manifest
from profiler.session.loop import run_session
from profiler.session.record import measured
from profiler.session.store import read_store
from profiler.session.target import SessionConfig, Target

UIDS = ["a", "b", "c"]
STEADY = [100.0 + i % 3 for i in range(10)]   # IQR ~1% of the median
NOISY = [50.0, 150.0] * 5                     # IQR 100% of the median: re-measured


class Recording(Target):
    """Yields a steady record for every item, except a noisy one on each pair's first attempt
    in ``noisy_first``; remembers every call as a list of (runtime, uids)."""

    name = "recording"

    def __init__(self, noisy_first: Sequence[Tuple[str, str]]) -> None:
        self.noisy_first = set(noisy_first)
        self.calls: List[List[Tuple[str, List[str]]]] = []
        self.attempts: Counter = Counter()

    def facts(self, runtimes: Sequence[str]) -> Dict[str, Any]:
        return {"target": self.name}

    def check_runtimes(self, runtimes: Sequence[str]) -> None:
        pass

    def _record(self, runtime: str, item: Dict[str, Any]) -> Dict[str, Any]:
        key = (item["uid"], runtime)
        self.attempts[key] += 1
        samples = NOISY if key in self.noisy_first and self.attempts[key] == 1 else STEADY
        return measured(item["uid"], {k: list(samples) for k in LATENCY_KEYS})

    def run_batch(self, runtime: str, items: List[Dict[str, Any]], cfg: SessionConfig) -> Iterator[Dict[str, Any]]:
        self.calls.append([(runtime, [it["uid"] for it in items])])
        for it in items:
            yield self._record(runtime, it)


class Streaming(Recording):
    streams_batches = True

    def run_batches(self, batches, cfg):
        self.calls.append([(rt, [it["uid"] for it in items]) for rt, items in batches])
        for rt, items in batches:
            for it in items:
                yield rt, self._record(rt, it)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    entries = [{"uid": u, "files": {"onnx": f"{u}.onnx"}, "input_shapes": [[1, 3, 4, 4]]} for u in UIDS]
    write_manifest(tmp_path / "models", {"kind": "modules", "granularity": "block", "entries": entries,
                                         "space": {"name": "t", "path": None, "sha256": None}})
    return tmp_path / "models"


def _session(models: Path, out: Path, target: Target, batch_size: int = 0) -> Dict[Tuple[str, str], Dict]:
    run_session(models, out, target, SessionConfig(runtimes=["CPU", "DSP"], batch_size=batch_size))
    recs = read_store(out).records
    assert Counter((r["uid"], r["runtime"]) for r in recs) == Counter({(u, rt): 1 for u in UIDS
                                                                       for rt in ("CPU", "DSP")})
    return {(r["uid"], r["runtime"]): r for r in recs}


def test_one_batch_per_call_each_remeasured_before_the_next(tmp_path, models):
    target = Recording([("b", "CPU"), ("c", "DSP")])
    recs = _session(models, tmp_path / "s.results", target)
    assert target.calls == [[("CPU", UIDS)], [("CPU", ["b"])], [("DSP", UIDS)], [("DSP", ["c"])]]
    assert recs[("b", "CPU")]["attempts"] == 2 and recs[("c", "DSP")]["attempts"] == 2
    assert recs[("a", "CPU")]["attempts"] == 1 and not recs[("b", "CPU")]["noisy"]


def test_a_streaming_target_gets_every_runtime_at_once_and_one_remeasure_call(tmp_path, models):
    target = Streaming([("b", "CPU"), ("c", "DSP")])
    recs = _session(models, tmp_path / "s.results", target)
    assert target.calls == [[("CPU", UIDS), ("DSP", UIDS)], [("CPU", ["b"]), ("DSP", ["c"])]]
    assert recs[("b", "CPU")]["attempts"] == 2 and recs[("c", "DSP")]["attempts"] == 2
    assert recs[("b", "DSP")]["attempts"] == 1
    assert not any(r["noisy"] for r in recs.values())  # the steadier second attempt is kept


def test_a_streaming_target_with_batch_size_gets_the_ith_batch_of_every_runtime(tmp_path, models):
    target = Streaming([("c", "CPU")])
    _session(models, tmp_path / "s.results", target, batch_size=2)
    assert target.calls == [[("CPU", ["a", "b"]), ("DSP", ["a", "b"])],
                            [("CPU", ["c"]), ("DSP", ["c"])], [("CPU", ["c"])]]
