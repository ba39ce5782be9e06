"""Fault probe, paths (issue 12 item 6): every wrong --out/--results is one line, nothing written."""

from __future__ import annotations

from tests.cli.faults import FAST, cli, one_line_error, snapshot


def test_generate_out_is_a_file(tiny, tmp_path):
    f = tmp_path / "f"
    f.write_text("keep me")
    one_line_error(cli("generate", "--space", tiny["space"], "--out", f, "-q"), "is a file")
    assert f.read_text() == "keep me"


def test_generate_out_under_a_file(tiny, tmp_path):
    f = tmp_path / "f"
    f.write_text("keep me")
    one_line_error(cli("generate", "--space", tiny["space"], "--out", f / "m", "-q"), "is a file")


def test_generate_out_ending_in_json(tiny, tmp_path):
    one_line_error(cli("generate", "--space", tiny["space"], "--out", tmp_path / "m.json", "-q"), ".json")
    assert not (tmp_path / "m.json").exists()


def test_bench_out_is_a_directory(tiny, tmp_path):
    one_line_error(cli("bench", "--models", tiny["modules"], "--out", tmp_path, *FAST), "is a directory")


def test_bench_out_under_a_file(tiny, tmp_path):
    f = tmp_path / "f"
    f.write_text("keep me")
    one_line_error(cli("bench", "--models", tiny["modules"], "--out", f / "r", *FAST), "is a file")
    assert f.read_text() == "keep me"


def test_fit_out_is_a_directory(tiny, tmp_path):
    before = snapshot(tiny["n0_store"])
    one_line_error(cli("fit", "--sampled", tiny["n0"], "--measured", tiny["n0_store"], "--table",
                       tiny["table"], "--out", tmp_path), "--out")
    assert snapshot(tiny["n0_store"]) == before
    assert list(tmp_path.iterdir()) == []


def _huge_space(path, candidates):
    """64 choice blocks of 1000-1630 channels at 224x224: tens of GiB of models."""
    from tests.cli.faults import write_space
    stages = [{"type": "ChoiceStage", "out_channels": 1000 + 10 * i, "blocks": 1, "stride": 1} for i in range(64)]
    return write_space(path, name="huge", input_shape=[3, 224, 224], candidates=candidates,
                       layers=[{"type": "ConvBNReLU", "out_channels": 1000, "kernel": 3, "stride": 1}, *stages,
                               {"type": "GlobalAvgPool"}, {"type": "Linear", "out_features": 4}])


def test_generate_refuses_a_huge_output_without_force(tmp_path):
    huge = _huge_space(tmp_path / "H.json", [{"expand_ratio": 1, "kernel": 3}, {"expand_ratio": 6, "kernel": 7}])
    proc = cli("generate", "--space", huge, "--out", tmp_path / "m", "-q")
    one_line_error(proc, "GiB", "--force")
    assert "about" in proc.stderr.splitlines()[0]  # the estimate is printed first
    assert not (tmp_path / "m").exists()


def test_sample_refuses_a_huge_output_without_force(tmp_path):
    huge = _huge_space(tmp_path / "H.json", [{"expand_ratio": 6, "kernel": 7}, {"expand_ratio": 6, "kernel": 5}])
    proc = cli("sample", "--space", huge, "--num", "2", "--out", tmp_path / "n", "-q")
    one_line_error(proc, "2 networks", "GiB", "--force")
    assert "about" in proc.stderr.splitlines()[0]  # the estimate is printed first
    assert not (tmp_path / "n").exists()


def test_run_checks_modules_and_networks_together_before_measuring(tmp_path):
    huge = _huge_space(tmp_path / "H.json", [{"expand_ratio": 6, "kernel": 7}, {"expand_ratio": 6, "kernel": 5}])
    proc = cli("run", "--space", huge, "--num", "2", "--out", tmp_path / "w", "--target", "host", "-q")
    one_line_error(proc, "modules and 2 networks", "GiB", "--force")
    assert not (tmp_path / "w").exists()
