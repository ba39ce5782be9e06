"""Fault probe, manifests (issue 12 items 5, 7, 13): foreign, malformed and damaged manifests."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.cli.faults import FAST, cli, one_line_error, snapshot


def test_generate_refuses_to_replace_a_foreign_manifest(tiny, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "my web app"}\n')
    before = snapshot(out)
    one_line_error(cli("generate", "--space", tiny["space"], "--out", out, "-q"), "not written by the profiler")
    assert snapshot(out) == before


def test_sample_refuses_a_modules_folder(tiny, tmp_path):
    out = tmp_path / "m"
    shutil.copytree(tiny["modules"], out)
    before = snapshot(out)
    one_line_error(cli("sample", "--space", tiny["space"], "--num", "2", "--out", out, "-q"),
                   "holds modules, not networks")
    assert snapshot(out) == before


BROKEN = {
    "non-utf8": lambda m: m.write_bytes(b'{"format": "profiler-models", "x": "\xff\xfe"}'),
    "entry-not-object": lambda m: _edit(m, lambda d: d["entries"].__setitem__(0, "oops")),
    "no-onnx": lambda m: _edit(m, lambda d: d["entries"][0]["files"].pop("onnx")),
}


def _edit(manifest, change):
    doc = json.loads(manifest.read_text())
    change(doc)
    manifest.write_text(json.dumps(doc))


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bench_on_a_malformed_manifest_writes_nothing(tiny, tmp_path, case):
    models = tmp_path / "m"
    shutil.copytree(tiny["modules"], models)
    BROKEN[case](models / "manifest.json")
    store = tmp_path / "r"
    one_line_error(cli("bench", "--models", models, "--out", store, *FAST), "manifest.json")
    assert not store.exists()


def test_bench_on_a_manifest_that_is_a_directory(tmp_path):
    (tmp_path / "m" / "manifest.json").mkdir(parents=True)
    one_line_error(cli("bench", "--models", tmp_path / "m", "--out", tmp_path / "r", *FAST), "not a file")
    assert not (tmp_path / "r").exists()


def test_generate_rewrites_a_truncated_model(tiny, tmp_path):
    out = tmp_path / "m"
    shutil.copytree(tiny["modules"], out)
    model = sorted(out.glob("*.onnx"))[0]
    good = model.read_bytes()
    model.write_bytes(good[: len(good) // 2])
    assert cli("generate", "--space", tiny["space"], "--out", out, "-q").returncode == 0
    assert model.read_bytes() == good


def test_fit_needs_no_space_file_the_manifest_embeds_the_space(tiny, tmp_path):
    n0 = tmp_path / "n0"
    shutil.copytree(tiny["n0"], n0)
    man = n0 / "manifest.json"
    doc = json.loads(man.read_text())
    assert doc["space"]["document"]["name"] == doc["space"]["name"]
    doc["space"]["path"] = str(tmp_path / "moved" / "T.json")  # the space file is gone (or the cwd changed)
    man.write_text(json.dumps(doc))
    proc = cli("fit", "--sampled", n0, "--measured", tiny["n0_store"], "--table", tiny["table"],
               "--out", tmp_path / "e" / "estimator.py")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "e" / "estimator.py").exists()
    # a manifest from before the space was embedded still needs the file, and says so in one line
    del doc["space"]["document"]
    man.write_text(json.dumps(doc))
    one_line_error(cli("fit", "--sampled", n0, "--measured", tiny["n0_store"], "--table", tiny["table"],
                       "--out", tmp_path / "f" / "estimator.py"), "search space cannot be read", "moved")
