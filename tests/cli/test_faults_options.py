"""Fault probe, options (issue 12 item 8): each bad value is one line and writes nothing."""

from __future__ import annotations

import pytest

from tests.cli.faults import FAST, cli, one_line_error

BAD = [
    (["--affinity", "abc"], "--affinity"),
    (["--affinity", "99"], "not available"),
    (["--threads", "0"], "--threads"),
    (["--threads", "-1"], "--threads"),
    (["--runtime", ""], "no runtime"),
    (["--runtime", "ORT_CPU,ORT_CPU"], "twice"),
    (["--min-repeat", "0", "--max-repeat", "0", "--min-time", "0"], "--min-repeat"),
    (["--max-repeat", "3", "--min-repeat", "5"], "--max-repeat"),
    (["--timeout", "0"], "--timeout"),
    (["--min-time", "nan"], "--min-time"),
]


@pytest.mark.parametrize("opts,needle", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_bench_option(tiny, tmp_path, opts, needle):
    store = tmp_path / "r"
    one_line_error(cli("bench", "--models", tiny["modules"], "--out", store, *FAST, *opts), needle)
    assert not store.exists()


@pytest.mark.parametrize("num,needle", [("-1", "at least 1"), ("0", "at least 1"), ("20", "only 9 distinct")])
def test_bad_sample_num(tiny, tmp_path, num, needle):
    out = tmp_path / "n"
    one_line_error(cli("sample", "--space", tiny["space"], "--num", num, "--out", out, "-q"), needle)
    assert not (out / "manifest.json").exists()
