"""The output-size estimates of generate and sample against the bytes they really write."""

from __future__ import annotations

from pathlib import Path

from profiler.pipeline.generate import estimate_output, generate
from profiler.pipeline.sample import estimate_sample, sample
from tests.cli.faults import write_space

SPACE = dict(name="est", input_shape=[3, 32, 32],
             candidates=[{"expand_ratio": 1, "kernel": 3}, {"expand_ratio": 6, "kernel": 5}],
             layers=[{"type": "ConvBNReLU", "out_channels": 16, "kernel": 3, "stride": 1},
                     {"type": "ChoiceStage", "out_channels": 24, "blocks": 2, "stride": 2},
                     {"type": "ChoiceStage", "out_channels": 48, "blocks": 2, "stride": 2},
                     {"type": "GlobalAvgPool"}, {"type": "Linear", "out_features": 10}])


def _written(d: Path) -> int:
    return sum(f.stat().st_size for f in d.iterdir() if f.suffix in (".nnp", ".onnx"))


def test_estimates_are_within_a_factor_of_the_real_size(tmp_path):
    space = write_space(tmp_path / "s.json", **SPACE)
    n, est = estimate_output(space)
    generate(space, tmp_path / "m", jobs=1)
    real = _written(tmp_path / "m")
    assert n == len(list((tmp_path / "m").glob("*.onnx")))
    assert 0.75 * real < est < 1.33 * real, (est, real)
    est_n = estimate_sample(space, 6, 0)
    sample(space, 6, 0, tmp_path / "n", jobs=1)
    real_n = _written(tmp_path / "n")
    assert 0.75 * real_n < est_n < 1.33 * real_n, (est_n, real_n)
