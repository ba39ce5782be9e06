"""The whole pipeline on the host, and pairing by architecture id in the fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from profiler.errors import TableError
from profiler.pipeline.fit import fit_estimator
from profiler.table.latency import LatencyTable

from tests.conftest import CIFAR

FAST = ["--min-time", "0.01", "--min-repeat", "8", "--max-repeat", "50", "--warmup", "2",
        "--layer-runs", "4", "--remeasure", "0", "-q"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = subprocess.run([sys.executable, "-m", "profiler", "run", "--space", str(CIFAR), "--out", str(out),
                           "--num", "8", "--seed", "1", *FAST], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out / "stdout.txt").write_text(proc.stdout)
    return out


def test_run_writes_every_artefact(workdir):
    for name in ("modules/manifest.json", "modules.results", "table.csv", "table.json", "table.meta",
                 "networks/manifest.json", "networks/accum.json", "networks.results", "estimator.py",
                 "report.json", "report.png"):
        assert (workdir / name).is_file(), name
    out = (workdir / "stdout.txt").read_text()
    assert "held-out accuracy ORT_CPU:" in out and "of 8 networks within +-10%" in out
    assert f"estimator: {workdir / 'estimator.py'}" in out
    report = json.loads((workdir / "report.json").read_text())
    assert report["format"] == "profiler-fit-report"
    rt = report["runtimes"]["ORT_CPU"]
    assert rt["n"] == 8 and {n["id"] for n in rt["networks"]} == {f"arch-{i:04d}" for i in range(8)}
    assert 0.0 <= rt["heldout"]["after"]["within_10"] <= 1.0


def test_estimator_agrees_with_table_in_a_fresh_interpreter(workdir):
    table = LatencyTable.load(workdir / "table.json")
    full = json.loads((workdir / "report.json").read_text())
    report = full["runtimes"]["ORT_CPU"]
    assert (full["table_key"], full["table_stat"]) == ("Forward Propagate", "Median_Time")  # the defaults
    nets = json.loads((workdir / "networks" / "manifest.json").read_text())["entries"]
    assert nets[0]["extreme"] == "smallest" and nets[1]["extreme"] == "largest"
    uids = nets[3]["module_uids"]["block"]
    calib = report["calibration"]
    assert calib["model"] == report["model"] and set(report["candidates"]) == {
        "scale-bias", "module-overhead", "per-op"}
    if calib["model"] == "scale-bias":
        looked_up = sum(table.lookup(u, "ORT_CPU", full["table_key"], full["table_stat"]) for u in uids)
        expected = report["scale"] * looked_up + report["bias"]
    else:
        p = calib["params"]
        expected = p["bias_us"] + sum(
            p["scale"][p["op_types"].index(u.split("[")[0]) if p["op_types"] != ["*"] else 0]
            * table.lookup(u, "ORT_CPU", full["table_key"], full["table_stat"]) + p["overhead_us"] for u in uids)
    # the per-network constant: measured in the module session (the null network's Total Inference
    # Time, the networks' measured key), a table row of its own, added once to every estimate
    c0 = table.network_constant("ORT_CPU", full["target_key"], full["table_stat"])
    assert "@network" in table.uids and "@network" not in table.module_uids and c0 > 0
    assert report["network_const_us"] == c0 and calib["params"]["network_const_us"] == c0
    expected += c0
    uid_file = workdir / "uids.txt"
    uid_file.write_text("\n".join(uids) + "\n")
    proc = subprocess.run([sys.executable, "-I", "-S", str(workdir / "estimator.py"), "--uids", str(uid_file),
                           "--runtime", "ORT_CPU"], capture_output=True, text=True, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) == pytest.approx(expected, rel=1e-9)


def _rewrite_store(src: Path, dst: Path, transform) -> None:
    lines = src.read_text().splitlines()
    header, body = lines[0], lines[1:]
    dst.write_text("\n".join([header] + transform(body)) + "\n")


def test_fit_pairs_by_id_not_by_order(workdir, tmp_path):
    base = fit_estimator(workdir / "networks", [workdir / "networks.results"], workdir / "table.json",
                         tmp_path / "a" / "estimator.py")["report"].runtimes["ORT_CPU"]
    shuffled = tmp_path / "shuffled.results"
    _rewrite_store(workdir / "networks.results", shuffled, lambda body: body[::-1])
    again = fit_estimator(workdir / "networks", [shuffled], workdir / "table.json",
                          tmp_path / "b" / "estimator.py")["report"].runtimes["ORT_CPU"]
    assert again.scale == pytest.approx(base.scale, rel=1e-12)
    assert again.bias == pytest.approx(base.bias, rel=1e-12)
    # one network without a measurement: left out and named, the rest still paired by id
    dropped = tmp_path / "dropped.results"
    _rewrite_store(workdir / "networks.results", dropped,
                   lambda body: [l for l in body if '"uid":"arch-0002"' not in l])
    result = fit_estimator(workdir / "networks", [dropped], workdir / "table.json", tmp_path / "c" / "estimator.py")
    assert result["missing"]["ORT_CPU"] == ["arch-0002"]
    assert "arch-0002" not in result["report"].runtimes["ORT_CPU"].heldout_pred


def test_module_missing_from_table_is_named(workdir, tmp_path):
    nets = json.loads((workdir / "networks" / "manifest.json").read_text())["entries"]
    victim = next(u for u in nets[0]["module_uids"]["block"] if u.startswith("InvertedResidual"))
    data = json.loads((workdir / "table.json").read_text())
    del data[victim]
    (tmp_path / "t.json").write_text(json.dumps(data))
    (tmp_path / "t.meta").write_text((workdir / "table.meta").read_text())
    with pytest.raises(TableError) as exc:
        fit_estimator(workdir / "networks", [workdir / "networks.results"], tmp_path / "t.json",
                      tmp_path / "e.py")
    msg = str(exc.value)
    assert victim in msg and "ORT_CPU" in msg and "\n" not in msg


def _latest(store: Path, uid: str) -> dict:
    from profiler.session.store import read_store
    return read_store(store).latest()[(uid, "ORT_CPU")]


def test_constant_and_reference_are_measured_in_the_sessions_of_the_host(workdir):
    const = _latest(workdir / "modules.results", "@network")
    assert const["status"] == "ok"
    st = const["stats"]
    assert st["Total Inference Time"]["Median_Time"] > st["Forward Propagate"]["Median_Time"] > 0
    table = LatencyTable.load(workdir / "table.json")
    assert table.network_constant("ORT_CPU", "Total Inference Time", "Median_Time") == \
        st["Total Inference Time"]["Median_Time"]
    ref = _latest(workdir / "networks.results", "@reference")
    doc = json.loads((workdir / "networks" / "manifest.json").read_text())
    assert ref["status"] == "ok" and doc["reference"]["of"] in table.module_uids
    # accum.json: the modules' sums (estimate_accum's input) and the constant beside them
    accum = json.loads((workdir / "networks" / "accum.json").read_text())
    assert accum["network_constant"]["ORT_CPU"] == st["Total Inference Time"]["Median_Time"]


def test_drift_normaliser_rescales_the_measurements_by_the_reference(workdir, tmp_path):
    base = fit_estimator(workdir / "networks", [workdir / "networks.results"], workdir / "table.json",
                         tmp_path / "a" / "estimator.py", model="scale-bias")
    norm = fit_estimator(workdir / "networks", [workdir / "networks.results"], workdir / "table.json",
                         tmp_path / "b" / "estimator.py", model="scale-bias", normalise=True)
    doc = json.loads((workdir / "networks" / "manifest.json").read_text())
    table = LatencyTable.load(workdir / "table.json")
    ref = _latest(workdir / "networks.results", "@reference")["stats"]["Forward Propagate"]["Median_Time"]
    factor = ref / table.lookup(doc["reference"]["of"], "ORT_CPU", "Forward Propagate", "Median_Time")
    info = json.loads((tmp_path / "b" / "report.json").read_text())
    assert info["normalise"] is True and info["drift"]["ORT_CPU"] == pytest.approx(factor, rel=1e-12)
    a, b = base["report"].runtimes["ORT_CPU"], norm["report"].runtimes["ORT_CPU"]
    assert b.measured == pytest.approx([m / factor for m in a.measured], rel=1e-12)
    # one factor per session pair: a linear model absorbs it, the relative held-out errors stay
    assert b.heldout_after["mape"] == pytest.approx(a.heldout_after["mape"], rel=1e-6)


def test_normalise_without_a_reference_is_one_clear_error(workdir, tmp_path):
    import shutil
    from profiler.errors import FitError
    nets = tmp_path / "networks"
    shutil.copytree(workdir / "networks", nets)
    doc = json.loads((nets / "manifest.json").read_text())
    del doc["reference"]
    (nets / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(FitError, match="has no drift reference.*drop --normalise"):
        fit_estimator(nets, [workdir / "networks.results"], workdir / "table.json", tmp_path / "e.py",
                      normalise=True)


def test_normaliser_removes_a_synthetic_drift_of_the_network_session(workdir, tmp_path):
    """The same network session made 25% slower as a whole (networks and reference alike): with
    --normalise the fit sees exactly the measurements of the undrifted session; without, 25% more."""
    def slower(body):
        out = []
        for line in body:
            rec = json.loads(line)
            if rec.get("type") == "result" and rec.get("status") == "ok":
                rec["stats"] = {k: {s: (v * 1.25 if s != "Count" else v) for s, v in st.items()}
                                for k, st in rec["stats"].items()}
            out.append(json.dumps(rec, separators=(",", ":")))
        return out
    drifted = tmp_path / "drifted.results"
    _rewrite_store(workdir / "networks.results", drifted, slower)
    args = (workdir / "networks",)
    plain = fit_estimator(*args, [workdir / "networks.results"], workdir / "table.json", tmp_path / "p" / "e.py",
                          model="scale-bias", normalise=True)["report"].runtimes["ORT_CPU"]
    fixed = fit_estimator(*args, [drifted], workdir / "table.json", tmp_path / "f" / "e.py",
                          model="scale-bias", normalise=True)["report"].runtimes["ORT_CPU"]
    raw = fit_estimator(*args, [drifted], workdir / "table.json", tmp_path / "r" / "e.py",
                        model="scale-bias")["report"].runtimes["ORT_CPU"]
    assert fixed.measured == pytest.approx(plain.measured, rel=1e-12)
    assert fixed.heldout_before["mape"] == pytest.approx(plain.heldout_before["mape"], rel=1e-9)
    f0 = json.loads((tmp_path / "p" / "report.json").read_text())["drift"]["ORT_CPU"]
    assert json.loads((tmp_path / "f" / "report.json").read_text())["drift"]["ORT_CPU"] == pytest.approx(1.25 * f0)
    assert raw.measured == pytest.approx([m * 1.25 * f0 for m in fixed.measured], rel=1e-12)
    assert raw.heldout_before["mape"] != pytest.approx(fixed.heldout_before["mape"], rel=1e-3)


@pytest.mark.parametrize("num, said", [("0", "--num 0: sample at least 1 network"),
                                       ("100000000000", "100000000000 networks would write about")])
def test_a_bad_num_is_refused_before_any_module_is_measured(tmp_path, num, said):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "profiler", "run", "--space", str(CIFAR), "--out", str(out),
                           "--num", num, *FAST], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and said in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if not line.startswith("== ")]  # stage lines aside
    assert len(errors) == 1 and errors[0].startswith("profiler: error: ") and "Traceback" not in proc.stderr
    assert not (out / "modules.results").exists() and not (out / "modules").exists()
