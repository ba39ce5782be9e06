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
