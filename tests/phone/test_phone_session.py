"""PhoneTarget end to end: run_session on emulated phones with the fake SNPE SDK.

The host tools and snpe-net-run are executables speaking the real flags and text formats
(tests/phone/fake_tools.py); the phones are tests/emulator/adbd.py processes behind a real adb
server (adbutils' binary), reached through the real adbutils client and named ``127.0.0.1:PORT``.
Unplugging is the phone's process dying. No timing is asserted.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from profiler.errors import DeviceError, ProfilerError
from profiler.session.loop import run_session
from profiler.session.store import read_store

from .conftest import PHONE_PROPS, session_config
from .fake_sdk import tool_calls
from .models import conv_uid, standard_specs, write_models

KEYS3 = {"Total Inference Time", "Forward Propagate", "Layers Time"}


def _latest(store: Path):
    return read_store(store).latest()


def _script(phone, runtime: str) -> str:
    """The run script the profiler pushed to a phone (read from its files)."""
    serial = phone.addr
    root = phone.host_path("/data/local/tmp/profiler/models")
    scripts = sorted(root.glob(f"*/run_{runtime}.sh"))
    assert scripts, f"no run_{runtime}.sh on {serial}"
    return scripts[0].read_text()


def test_two_phones_cpu_and_dsp_then_table(tmp_path, phones, sdk2, models, make_target):
    target = make_target(sdk2)
    out = tmp_path / "s.results"
    summary = run_session(models, out, target, session_config(["CPU", "DSP"], batch_size=2))
    assert summary.failed == [] and summary.measured == 6
    latest = _latest(out)
    assert len(latest) == 6 and all(r["status"] == "ok" for r in latest.values())
    # the work was shared by both phones; the SDK crossed the cable once per phone
    assert {r["device_state"]["serial"] for r in latest.values()} == {phones.a.addr, phones.b.addr}
    for phone in (phones.a, phones.b):
        sends = [d for _, d in phone.requests("SEND") if d.startswith("/data/local/tmp/profiler/bin/")]
        assert len(sends) == 1, sends
        # once per phone: the state and the md5s of everything under the device root (one call);
        # per module: the runs (one call), the state after (one call, also the next module's
        # state before), no md5 listing (the session knows what it pushed)
        mine = sum(r["device_state"]["serial"] == phone.addr for r in latest.values())
        assert mine >= 1
        shells = [d for _, d in phone.requests("shell,v2")]
        assert sum("dumpsys battery" in d and "md5sum" in d for d in shells) == 1
        assert sum("dumpsys battery" not in d and "md5sum" in d for d in shells) == 0
        assert sum("dumpsys battery" in d and "md5sum" not in d for d in shells) == mine
        assert sum("/run_" in d for d in shells) == mine and phone.count("sync") == 2 * mine + 2
    for (uid, rt), rec in latest.items():
        st = rec["device_state"]
        assert st["perf_profile"] == "sustained_high_performance" and st["profiling_level"] == "detailed"
        assert st["battery_temp_c_before"] in (30.0, 31.0) and st["governor"] in ("schedutil", "performance")
        assert all(len(v) == 2 for v in rec["samples"].values())     # one sample per run
        if rt == "CPU":
            assert set(rec["samples"]) == KEYS3 and not st["quantized"]
            assert rec["layers"]["unit"] == "us" and all(i["counted"] for i in rec["layers"]["items"])
            assert rec["layers"]["items"][0]["name"] == "block/conv"
        else:  # SNPE 2 DSP: quantized DLC, per-layer cycles -> no Layers Time, cycles kept with a note
            assert st["quantized"] and ".q" in st["dlc"] and st["calibration"] == "random"
            assert set(rec["samples"]) == {"Total Inference Time", "Forward Propagate"}
            assert rec["layers"]["unit"] == "cycles" and "--dsp-clock" in rec["layers"]["note"]
            assert rec["layers"]["items"][0]["counted"] is False  # HTP "Input OpId_N" (indented 2.x layout)
            assert rec["layers"]["items"][-1]["name"].startswith("Output OpId_")
    meta = read_store(out).meta
    assert meta["target"] == "phone" and meta["snpe"]["version"] == "2.10.0.4541"
    assert meta["device"]["soc"] == "SM8550" and set(meta["devices"]) == {phones.a.addr, phones.b.addr}
    # the quantizer of SNPE 2 got the documented flags, once per module
    quant = tool_calls(sdk2, "snpe-dlc-quant")
    assert len(quant) == 3 and not tool_calls(sdk2, "snpe-dlc-graph-prepare")
    for call in quant:
        argv = call["argv"]
        assert [a.split("=")[0] for a in argv[:3]] == ["--input_dlc", "--input_list", "--output_dlc"]
        assert argv[3:] == ["--bias_bitwidth=32"]
        listed = Path(argv[1].split("=", 1)[1]).read_text().split()
        assert len(listed) == 2 and all(Path(p).is_absolute() and Path(p).is_file() for p in listed)
    assert len(tool_calls(sdk2, "snpe-onnx-to-dlc")) == 3    # float DLC converted once, cached
    script = _script(phones.a, "DSP")
    assert "--use_dsp" in script and "--perf_profile sustained_high_performance" in script
    assert 'export ADSP_LIBRARY_PATH="/data/local/tmp/profiler/lib;' in script
    # profiler table reads the store
    from profiler.cli.main import main
    assert main(["table", "--results", str(out), "--out", str(tmp_path / "t")]) == 0
    rows = list(csv.reader((tmp_path / "t.csv").open()))
    assert {r[1] for r in rows} == {"CPU", "DSP"}
    assert {(r[1], r[2]) for r in rows} >= {("CPU", "Layers Time"), ("DSP", "Total Inference Time")}
    # the cache lies under the store's folder, one folder per models folder, nothing next to the ONNX
    from profiler.phone.prep import store_cache_folder
    cache = store_cache_folder(tmp_path, models) / "snpe-2.10.0.4541"
    assert len(list(cache.glob("*.q*.dlc"))) == 3 and len(list(cache.glob("*.dlc"))) == 6
    assert not list(models.glob("snpe-*")) and meta["phone"]["cache"] == str(tmp_path / "snpe-cache")
    # a second session, another store in the same folder, reuses every cached DLC: no converter or
    # quantizer call
    run_session(models, tmp_path / "again.results", target, session_config(["DSP"]))
    assert len(tool_calls(sdk2, "snpe-onnx-to-dlc")) == 3 and len(tool_calls(sdk2, "snpe-dlc-quant")) == 3


def test_state_after_a_module_is_the_state_before_the_next_one(tmp_path, phones, sdk2, make_target, monkeypatch):
    from profiler.phone.adb.session import DeviceSession
    real = DeviceSession.device_state
    reads = []

    def reading(self):  # every separate state read finds a new battery temperature
        reads.append(self.serial)
        phones.a.set_battery_temp(40.0 + len(reads))
        return real(self)

    monkeypatch.setattr(DeviceSession, "device_state", reading)
    models = write_models(tmp_path / "m", standard_specs(3))
    out = tmp_path / "st.results"
    target = make_target(sdk2, devices=(phones.a.addr,))
    assert run_session(models, out, target, session_config(["CPU"])).failed == []
    states = [r["device_state"] for r in read_store(out).records]  # one phone: in measurement order
    assert [st["battery_temp_c_after"] for st in states] == [41.0, 42.0, 43.0]
    assert [st["battery_temp_c_before"] for st in states] == [30.0, 41.0, 42.0]
    assert len(reads) == 3
    # a reading older than STATE_REUSE_S is not reused: each module reads its own state before
    from profiler.phone import target as phone_target
    monkeypatch.setattr(phone_target, "STATE_REUSE_S", -1.0)
    out = tmp_path / "st2.results"
    assert run_session(models, out, make_target(sdk2, devices=(phones.a.addr,)), session_config(["CPU"])).failed == []
    states = [r["device_state"] for r in read_store(out).records]
    assert [st["battery_temp_c_before"] for st in states] == [44.0, 46.0, 48.0]
    assert [st["battery_temp_c_after"] for st in states] == [45.0, 47.0, 49.0]
    assert len(reads) == 9


def test_files_changed_on_the_phone_between_sessions_are_pushed_again(tmp_path, phones, sdk2, make_target):
    models = write_models(tmp_path / "m", standard_specs(2))
    one = dict(devices=(phones.a.addr,))
    assert run_session(models, tmp_path / "1.results", make_target(sdk2, **one), session_config(["CPU"])).failed == []
    root = phones.a.host_path("/data/local/tmp/profiler")
    dlc = sorted(root.glob("models/*/*.dlc"))[0]
    good = dlc.read_bytes()
    dlc.write_bytes(b"changed behind the profiler's back")
    raw = sorted(root.glob("inputs/*/*.raw"))[-1]
    raw.unlink()
    net_run = root / "bin" / "snpe-net-run"
    net_run.write_bytes(net_run.read_bytes() + b"\n# changed\n")
    sends = phones.a.count("SEND")
    shells = phones.a.count("shell,v2")
    # a new session lists the device root once and pushes exactly what differs
    assert run_session(models, tmp_path / "2.results", make_target(sdk2, **one), session_config(["CPU"])).failed == []
    pushed = sorted(d.rsplit(",", 1)[0] for _, d in phones.a.requests("SEND")[sends:])
    device = "/data/local/tmp/profiler/"
    assert pushed == sorted(device + p.relative_to(root).as_posix() for p in (dlc, raw, net_run))
    assert dlc.read_bytes() == good and raw.is_file() and b"# changed" not in net_run.read_bytes()
    new_shells = [d for _, d in phones.a.requests("shell,v2")[shells:]]
    assert sum("md5sum" in d for d in new_shells) == 1


def test_modules_with_the_same_inputs_share_their_raws_on_the_phone(tmp_path, phones, sdk2, make_target):
    """Raws depend only on the input names and dims (and seed, count): pushed once per phone into
    inputs/in-<hash>/ for every module that has those inputs, and found there by snpe-net-run."""
    from .models import conv_uid
    specs = [{"uid": conv_uid(8, 8, 8, k), "c_in": 8, "c_out": 8, "hw": 8, "kernel": k} for k in (3, 1)]
    specs.append({"uid": conv_uid(4, 8, 8), "c_in": 4, "c_out": 8, "hw": 8})
    models = write_models(tmp_path / "m", specs)
    sends = phones.a.count("SEND")
    target = make_target(sdk2, devices=(phones.a.addr,), input_count=3)
    assert run_session(models, tmp_path / "s.results", target, session_config(["CPU", "DSP"])).failed == []
    pushed = [d.rsplit(",", 1)[0] for _, d in phones.a.requests("SEND")[sends:]]
    raws = [p for p in pushed if p.endswith(".raw")]
    assert len(raws) == 2 * 3 and len(set(raws)) == len(raws)   # 2 distinct inputs x 3 raws, once each
    assert all(p.startswith("/data/local/tmp/profiler/inputs/in-") for p in raws)
    root = phones.a.host_path("/data/local/tmp/profiler")
    lists = sorted(root.glob("inputs/*/input_list.txt"))
    assert len(lists) == 2 and all(ln.startswith(f"../../inputs/{f.parent.name}/")
                                   for f in lists for ln in f.read_text().splitlines())
    assert len(list((root / "models").iterdir())) == 3 and not list(root.glob("models/*/*.raw"))


def test_quantization_options_overrides_graph_prepare_and_dsp_clock(tmp_path, phones, sdk2, make_target):
    from profiler.phone.snpe import QuantizeOptions
    models = write_models(tmp_path / "m", standard_specs(1))
    overrides = Path(__file__).resolve().parent / "snpe" / "data" / "overrides_snpe_doc.json"
    opts = QuantizeOptions(act_bitwidth=16, use_enhanced_quantizer=True, cle=True, htp_socs=("sm8550",))
    target = make_target(sdk2, quantize=opts, quantization_overrides=str(overrides), dsp_clock_hz=800e6,
                         devices=(phones.b.addr,))
    out = tmp_path / "q.results"
    assert run_session(models, out, target, session_config(["DSP_ub_tf8"])).failed == []
    conv = tool_calls(sdk2, "snpe-onnx-to-dlc")[0]["argv"]
    assert conv[-2:] == ["--quantization_overrides", str(overrides)]
    quant = tool_calls(sdk2, "snpe-dlc-quant")[0]["argv"]
    assert quant[3:] == ["--use_enhanced_quantizer", "--optimizations=cle", "--override_params",
                         "--bias_bitwidth=32", "--act_bitwidth=16"]
    prep = tool_calls(sdk2, "snpe-dlc-graph-prepare")[0]["argv"]
    assert prep[-1] == "--htp_socs=sm8550" and prep[0].replace("input", "output") == prep[2]
    rec = list(_latest(out).values())[0]
    assert rec["device_state"]["serial"] == phones.b.addr and rec["device_state"]["buffer"] == "ub_tf8"
    assert "Layers Time" in rec["samples"] and rec["layers"]["unit"] == "us" and "note" not in rec["layers"]
    assert "--userbuffer_tfN 8" in _script(phones.b, "DSP_ub_tf8")


def test_snpe1_quantize_aip_and_flat_diagview(tmp_path, phones, sdk1, make_target):
    models = write_models(tmp_path / "m", standard_specs(1))
    from profiler.phone.snpe import QuantizeOptions
    target = make_target(sdk1, devices=(phones.a.addr,),
                         quantize=QuantizeOptions(cle=True, use_adjusted_weights_quantizer=True))
    out = tmp_path / "s1.results"
    assert run_session(models, out, target, session_config(["CPU", "AIP", "DSP_ub_tf8"])).failed == []
    calls = tool_calls(sdk1, "snpe-dlc-quantize")
    assert len(calls) == 2  # AIP (with HTA sections) and DSP are different quantized DLCs
    for call in calls:
        argv = call["argv"]
        assert argv[0:6:2] == ["--input_dlc", "--input_list", "--output_dlc"]
        assert argv[6:] [:5] == ["--use_adjusted_weights_quantizer", "--optimizations", "cle", "--bias_bitwidth", "32"]
    assert sum("--enable_hta" in c["argv"] for c in calls) == 1
    latest = _latest(out)
    cpu = latest[(conv_uid(3, 8, 16), "CPU")]
    # SNPE 1: the data layer is listed (layer 0) and excluded from Layers Time
    items = cpu["layers"]["items"]
    assert items[0]["type"] == "data" and items[0]["counted"] is False
    assert cpu["samples"]["Layers Time"][0] == pytest.approx(sum(i["values"][0] for i in items[1:]))
    assert latest[(conv_uid(3, 8, 16), "AIP")]["layers"]["unit"] == "us"  # cycles only from SNPE 1.63
    assert "--userbuffer_tf8" in _script(phones.a, "DSP_ub_tf8")


def test_cache_dir_overrides_the_store_folder_and_keeps_reuse(tmp_path, phones, sdk2, make_target):
    models = write_models(tmp_path / "m", standard_specs(1))
    target = make_target(sdk2, devices=(phones.a.addr,), cache_dir=str(tmp_path / "dlcs"))
    assert run_session(models, tmp_path / "out" / "a.results", target, session_config(["CPU"])).failed == []
    assert len(list((tmp_path / "dlcs" / "snpe-2.10.0.4541").glob("*.dlc"))) == 1
    assert not (tmp_path / "out" / "snpe-cache").exists() and not list(models.glob("snpe-*"))
    assert read_store(tmp_path / "out" / "a.results").meta["phone"]["cache"] == str(
        tmp_path / "dlcs" / "snpe-2.10.0.4541")
    again = make_target(sdk2, devices=(phones.a.addr,), cache_dir=str(tmp_path / "dlcs"))
    assert run_session(models, tmp_path / "elsewhere" / "b.results", again, session_config(["CPU"])).failed == []
    assert len(tool_calls(sdk2, "snpe-onnx-to-dlc")) == 1


def test_unwritable_store_folder_is_refused_before_any_phone_is_touched(tmp_path, phones, sdk2, make_target,
                                                                        monkeypatch):
    import os
    from profiler.phone import target as phone_target
    models = write_models(tmp_path / "m", standard_specs(1))
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # the tests run as root, for whom every folder is writable: os.access answers as for another uid
    monkeypatch.setattr(phone_target.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    before = phones.a.count() + phones.b.count()
    with pytest.raises(ProfilerError) as err:
        run_session(models, locked / "deeper" / "x.results", make_target(sdk2), session_config(["CPU"]))
    assert str(err.value) == (f"{locked}: the store's folder is not writable; the store and the DLC cache go "
                              "there: choose another --out")
    assert phones.a.count() + phones.b.count() == before and not list(locked.iterdir())
    monkeypatch.setenv("PROFILER_DOCKER_IMAGE", "profiler-bench:x")
    with pytest.raises(ProfilerError, match=re.escape(f"{locked}: the store's folder is not writable by uid "
                                                      f"{os.getuid()}:{os.getgid()} inside the container "
                                                      "(profiler-bench:x)")):
        run_session(models, locked / "x.results", make_target(sdk2), session_config(["CPU"]))


def test_vanishing_phone_hands_its_modules_to_the_other(tmp_path, phones, sdk2, make_target):
    models = write_models(tmp_path / "m", standard_specs(4))
    phones.unplug_after(phones.a, 1, "shell,v2", "/run_CPU.sh")  # while its first module runs
    target = make_target(sdk2)
    out = tmp_path / "v.results"
    summary = run_session(models, out, target, session_config(["CPU"], batch_size=3))
    assert summary.failed == []
    latest = _latest(out)
    assert len(latest) == 4 and all(r["status"] == "ok" for r in latest.values())
    by = [r["device_state"]["serial"] for r in latest.values()]
    assert by.count(phones.b.addr) >= 3 and phones.listed() == [phones.b.addr]


def test_no_phone_left_fails_the_rest_then_resume_measures_only_them(tmp_path, phones, sdk2, make_target):
    models = write_models(tmp_path / "m", standard_specs(4))
    for phone in (phones.a, phones.b):  # each dies as its second module starts running
        phones.unplug_after(phone, 2, "shell,v2", "/run_CPU.sh")
    out = tmp_path / "r.results"
    summary = run_session(models, out, make_target(sdk2), session_config(["CPU"], batch_size=4))
    ok = [k for k, r in _latest(out).items() if r["status"] == "ok"]
    assert summary.failed and 0 < len(ok) < 4
    for _, _, error in summary.failed:
        assert "vanished" in error and "--resume" in error and (phones.a.addr in error or phones.b.addr in error)
    # plug them back in and resume with a new session (the SDK on the phones is only md5-checked)
    for phone in (phones.a, phones.b):
        phones.replug(phone)
    again = run_session(models, out, make_target(sdk2), session_config(["CPU"]), resume=True)
    assert again.failed == [] and again.skipped == len(ok) and again.measured == 4 - len(ok)
    contents = read_store(out)
    assert all(r["status"] == "ok" for r in contents.latest().values()) and len(contents.latest()) == 4
    ok_records = [r for r in contents.records if r["status"] == "ok"]
    assert len(ok_records) == 4  # nothing measured twice


def test_interrupted_session_resumes_without_remeasuring(tmp_path, phones, sdk2, make_target):
    models = write_models(tmp_path / "m", standard_specs(3))
    out = tmp_path / "i.results"

    def ctrl_c(done, total, uid, failed):
        if done == 1:
            raise KeyboardInterrupt  # as Ctrl-C in the main thread while both phones work

    with pytest.raises(KeyboardInterrupt):
        run_session(models, out, make_target(sdk2), session_config(["CPU"], batch_size=3), on_progress=ctrl_c)
    assert len(read_store(out).done()) == 1
    again = run_session(models, out, make_target(sdk2), session_config(["CPU"]), resume=True)
    assert again.skipped == 1 and again.measured == 2 and again.failed == []
    contents = read_store(out)
    assert len(contents.done()) == 3 and len(contents.records) == 3 and len(contents.sessions) == 1


def test_failing_tools_and_corrupt_logs_fail_only_their_module(tmp_path, phones, sdk2, make_target):
    specs = standard_specs(2) + [
        {"uid": "Bad[einsum]", "c_in": 4, "c_out": 4, "hw": 8, "unsupported": True},
        {"uid": "Bad[corrupt_diag]", "c_in": 4, "c_out": 8, "hw": 8, "fault": "corrupt_diag"},
        {"uid": "Bad[netrun_crash]", "c_in": 8, "c_out": 4, "hw": 8, "fault": "netrun_crash"},
    ]
    models = write_models(tmp_path / "m", specs)
    out = tmp_path / "f.results"
    summary = run_session(models, out, make_target(sdk2), session_config(["CPU"]))
    errors = {uid: err for uid, _, err in summary.failed}
    assert set(errors) == {"Bad[einsum]", "Bad[corrupt_diag]", "Bad[netrun_crash]"}
    assert errors["Bad[einsum]"].startswith("snpe-onnx-to-dlc failed (exit code 1) on ")
    assert "Op type Einsum is not supported" in errors["Bad[einsum]"]
    corrupt = errors["Bad[corrupt_diag]"]
    assert "SNPEDiag_0.log of run 1 on device" in corrupt and "truncated" in corrupt and "log kept as" in corrupt
    kept = Path(corrupt.split("log kept as ")[1].rstrip(")"))
    assert kept.is_file() and kept.with_suffix(".diagview.txt").is_file()
    assert errors["Bad[netrun_crash]"].startswith(("snpe-net-run failed on device %s" % phones.a.addr,
                                                   "snpe-net-run failed on device %s" % phones.b.addr))
    assert "error_code=910" in errors["Bad[netrun_crash]"]
    assert "Traceback" not in " ".join(errors.values())
    latest = _latest(out)
    assert sum(r["status"] == "ok" for r in latest.values()) == 2
    # both phones stayed in service
    assert phones.a.count("shell,v2") > 5 and phones.b.count("shell,v2") > 5


def test_cooldown_wait_is_recorded(tmp_path, phones, sdk2, make_target):
    models = write_models(tmp_path / "m", standard_specs(1))
    phones.b.set_battery_temp(45.0)
    target = make_target(sdk2, cooldown_temp_c=40.0, cooldown_timeout_s=0.0, devices=(phones.b.addr,))
    out = tmp_path / "c.results"
    assert run_session(models, out, target, session_config(["CPU"])).failed == []
    st = list(_latest(out).values())[0]["device_state"]
    # still hot at the timeout: measured anyway, and the record says so
    assert st["cooldown"] == {"limit_c": 40.0, "cooled": False, "waited_s": st["cooldown"]["waited_s"]}
    assert st["battery_temp_c_before"] == 45.0 and st["governor"] == "performance"


def test_device_selection_errors(tmp_path, phones, sdk2, make_target):
    listed = ", ".join(sorted([phones.a.addr, phones.b.addr]))
    with pytest.raises(DeviceError, match=r"device NOPE not found \(adb lists: %s\)" % re.escape(listed)):
        make_target(sdk2, devices=("NOPE",)).facts(["CPU"])
    phones.add("OTHER1", props={"ro.product.model": "Pixel 7", "ro.soc.model": "GS201"})
    with pytest.raises(ProfilerError, match="the selected phones differ"):
        make_target(sdk2).facts(["CPU"])
    facts = make_target(sdk2, devices=(phones.a.addr, phones.b.addr)).facts(["CPU"])
    assert facts["device"]["serials"] == [phones.a.addr, phones.b.addr]
    arm32 = phones.add("ARM32", props=dict(PHONE_PROPS, **{"ro.product.cpu.abi": "armeabi-v7a"}))
    with pytest.raises(DeviceError, match="ABI armeabi-v7a is not supported"):
        make_target(sdk2, devices=(arm32.addr,)).facts(["CPU"])
    for phone in list(phones.devices.values()):
        phones.unplug(phone)
    with pytest.raises(DeviceError, match="no phone ready"):
        make_target(sdk2).facts(["CPU"])


def test_runtime_names(sdk2, make_target):
    target = make_target(sdk2)
    target.check_runtimes(["CPU", "GPU", "GPU_FP16", "DSP", "AIP", "DSP_ub_tf8", "GPU_ub_float"])
    with pytest.raises(ProfilerError, match="--runtime ORT_CPU: not a phone runtime.*host runtimes need --target host"):
        target.check_runtimes(["ORT_CPU"])
    with pytest.raises(ProfilerError, match="buffer type ub_tf8 is not valid for CPU"):
        target.check_runtimes(["CPU_ub_tf8"])
    with pytest.raises(ProfilerError, match="not usable with SNPE 2.10.0.4541 \\(off gives no timings\\)"):
        make_target(sdk2, profiling_level="off")
    with pytest.raises(ProfilerError, match="SNPE SDK not found"):
        make_target(None)
