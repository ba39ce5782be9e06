import shlex
from pathlib import Path

import pytest

from profiler.errors import ToolError
from profiler.phone.snpe.commands import (DevicePaths, QuantizeOptions, adsp_library_path, device_script,
                                    diagview_cmd, dlc_info_cmd, needs_quantized_dlc, net_run_cmd,
                                    onnx_to_dlc_cmd, quantize_cmds)
from profiler.phone.snpe.sdk import Sdk, SdkVersion

ROOT = Path("/opt/snpe")
BIN = "/opt/snpe/bin/x86_64-linux-clang/"
V1 = Sdk(ROOT, SdkVersion(1, 54, 2, 2899))
V1_OLD = Sdk(ROOT, SdkVersion(1, 17, 0, 0))
V2 = Sdk(ROOT, SdkVersion(2, 10, 0, 4541))
SEED = QuantizeOptions(bias_bitwidth=32, override_params=True)


def test_onnx_to_dlc_2x_and_late_1x():
    for sdk in (V1, V2):
        assert onnx_to_dlc_cmd(sdk, "m.onnx", "m.dlc") == [
            BIN + "snpe-onnx-to-dlc", "--input_network", "m.onnx", "--output_path", "m.dlc"]
    cmd = onnx_to_dlc_cmd(V2, Path("a/m.onnx"), Path("a/m.dlc"), input_dims={"x": [1, 32, 32, 3], "y": (1, 10)},
                          quantization_overrides=Path("a/enc.json"))
    assert cmd[5:] == ["--input_dim", "x", "1,32,32,3", "--input_dim", "y", "1,10",
                       "--quantization_overrides", "a/enc.json"]
    assert all(isinstance(a, str) for a in cmd)


def test_onnx_to_dlc_legacy_1x():
    assert onnx_to_dlc_cmd(V1_OLD, "m.onnx", "m.dlc") == [
        BIN + "snpe-onnx-to-dlc", "--model_path", "m.onnx", "--dlc_path", "m.dlc"]
    with pytest.raises(ToolError, match="neither --input_dim nor --quantization_overrides"):
        onnx_to_dlc_cmd(V1_OLD, "m.onnx", "m.dlc", quantization_overrides="e.json")


def test_quantize_1x_seed_command():
    # seed 000: snpe-dlc-quantize --input_dlc ... --input_list ... --override_params --bias_bitwidth 32
    [cmd] = quantize_cmds(V1, "m.dlc", "m_q.dlc", "/abs/list.txt", runtime="DSP", options=SEED)
    assert cmd == [BIN + "snpe-dlc-quantize", "--input_dlc", "m.dlc", "--input_list", "/abs/list.txt",
                   "--output_dlc", "m_q.dlc", "--override_params", "--bias_bitwidth", "32"]


def test_quantize_1x_all_options_and_aip_hta():
    opts = QuantizeOptions(act_bitwidth=16, weights_bitwidth=8, bias_bitwidth=32, use_enhanced_quantizer=True,
                           use_adjusted_weights_quantizer=True, cle=True, bc=True, axis_quant=True)
    [cmd] = quantize_cmds(V1, "m.dlc", "q.dlc", "l.txt", runtime="AIP", options=opts)
    assert cmd[7:] == ["--use_enhanced_quantizer", "--use_adjusted_weights_quantizer", "--optimizations", "cle",
                       "--bias_bitwidth", "32", "--act_bitwidth", "16", "--axis_quant",
                       "--optimizations", "bc", "--enable_hta"]
    [dsp] = quantize_cmds(V1, "m.dlc", "q.dlc", "l.txt", runtime="DSP", options=opts)
    assert "--enable_hta" not in dsp


def test_quantize_2x_quant_then_graph_prepare():
    opts = QuantizeOptions(act_bitwidth=16, use_enhanced_quantizer=True, cle=True, bc=True,
                           override_params=True, htp_socs=("sm8550", "sm8650"))
    quant, prep = quantize_cmds(V2, "m.dlc", "q.dlc", "/abs/l.txt", runtime="DSP", options=opts)
    assert quant == [BIN + "snpe-dlc-quant", "--input_dlc=m.dlc", "--input_list=/abs/l.txt", "--output_dlc=q.dlc",
                     "--use_enhanced_quantizer", "--optimizations=cle", "--override_params",
                     "--bias_bitwidth=32", "--act_bitwidth=16"]  # bc is a no-op in SNPE 2: dropped
    assert prep == [BIN + "snpe-dlc-graph-prepare", "--input_dlc=q.dlc", "--input_list=/abs/l.txt",
                    "--output_dlc=q.dlc", "--htp_socs=sm8550,sm8650"]


def test_quantize_2x_without_socs_or_for_aip_is_one_command():
    assert len(quantize_cmds(V2, "m.dlc", "q.dlc", "l.txt", runtime="HTP")) == 1
    [aip] = quantize_cmds(V2, "m.dlc", "q.dlc", "l.txt", runtime="AIP",
                          options=QuantizeOptions(htp_socs=("sm8550",)))
    assert aip[0].endswith("snpe-dlc-quant") and "--enable_hta" not in aip
    [default] = quantize_cmds(V2, "m.dlc", "q.dlc", "l.txt")
    assert default[4:] == ["--bias_bitwidth=32"]


@pytest.mark.parametrize("opts,match", [
    (QuantizeOptions(act_bitwidth=4), "act_bitwidth must be 8 or 16"),
    (QuantizeOptions(weights_bitwidth=32), "weights_bitwidth must be 8 or 16"),
    (QuantizeOptions(bias_bitwidth=16), "bias_bitwidth must be 8 or 32"),
    (QuantizeOptions(weights_bitwidth=16, use_adjusted_weights_quantizer=True), "only applies to 8-bit"),
    (QuantizeOptions(bc=True), "must be combined with cle"),
])
def test_quantize_option_errors(opts, match):
    with pytest.raises(ToolError, match=match):
        quantize_cmds(V2, "m.dlc", "q.dlc", "l.txt", options=opts)


def test_dlc_info_and_diagview():
    assert dlc_info_cmd(V2, Path("m.dlc")) == [BIN + "snpe-dlc-info", "-i", "m.dlc"]
    assert diagview_cmd(V1, "out/SNPEDiag_0.log") == [BIN + "snpe-diagview", "--input_log", "out/SNPEDiag_0.log"]
    assert diagview_cmd(V2, "d.log", "d.csv")[-2:] == ["--output", "d.csv"]


@pytest.mark.parametrize("runtime,flags", [
    ("CPU", []), ("GPU", ["--use_gpu"]), ("GPU_FP16", ["--use_gpu", "--gpu_mode", "float16"]),
    ("DSP", ["--use_dsp"]), ("HTP", ["--use_dsp"]), ("AIP", ["--use_aip"]), ("dsp", ["--use_dsp"]),
])
def test_net_run_runtime_flags(runtime, flags):
    cmd = net_run_cmd("/d/bin/snpe-net-run", "m.dlc", "list.txt", runtime=runtime, version=V2.version)
    assert cmd == ["/d/bin/snpe-net-run", "--container", "m.dlc", "--input_list", "list.txt",
                   "--output_dir", "output"] + flags


def test_net_run_buffers_profiles_and_levels():
    base = dict(runtime="DSP", perf_profile="burst", profiling_level="detailed")
    v2 = net_run_cmd("snpe-net-run", "m.dlc", "l.txt", version=V2.version, buffer="ub_tf8", **base)
    assert v2[7:] == ["--use_dsp", "--userbuffer_tfN", "8", "--perf_profile", "burst", "--profiling_level", "detailed"]
    v1 = net_run_cmd("snpe-net-run", "m.dlc", "l.txt", version=V1.version, buffer="ub_tf8", **base)
    assert v1[7:10] == ["--use_dsp", "--userbuffer_tf8", "--perf_profile"]
    ubf = net_run_cmd("snpe-net-run", "m.dlc", "l.txt", runtime="GPU", version=V2.version, buffer="ub_float")
    assert ubf[-2:] == ["--use_gpu", "--userbuffer_float"]
    lint = net_run_cmd("x", "m.dlc", "l.txt", runtime="DSP", version=V2.version, profiling_level="linting")
    assert lint[-2:] == ["--profiling_level", "linting"]


@pytest.mark.parametrize("kw,match", [
    (dict(runtime="NPU"), "unknown SNPE runtime 'NPU'"),
    (dict(runtime="CPU", buffer="ub_tf8"), "'ub_tf8' is not valid for CPU"),
    (dict(runtime="CPU", perf_profile="turbo"), "unknown perf profile"),
    (dict(runtime="CPU", profiling_level="verbose"), "unknown profiling level"),
    (dict(runtime="CPU", profiling_level="linting", version=SdkVersion(1, 68, 0)), "unknown profiling level"),
])
def test_net_run_errors(kw, match):
    kw.setdefault("version", V2.version)
    with pytest.raises(ToolError, match=match):
        net_run_cmd("snpe-net-run", "m.dlc", "l.txt", **kw)


def test_needs_quantized_dlc():
    assert [needs_quantized_dlc(r, V2.version) for r in ("CPU", "GPU", "GPU_FP16", "DSP", "HTP", "AIP")] == \
        [False, False, False, True, True, True]
    assert needs_quantized_dlc("DSP", V1.version) and needs_quantized_dlc("aip")
    with pytest.raises(ToolError):
        needs_quantized_dlc("TPU")


def test_device_script_text():
    dev = DevicePaths("/data/local/tmp/prof")
    cmd = net_run_cmd(dev.snpe_net_run, "m.dlc", "input_list.txt", runtime="DSP", version=V2.version,
                      perf_profile="burst", profiling_level="detailed")
    text = device_script(cmd, lib_dir=dev.lib_dir, model_dir=dev.model_dir("blk3-k5"))
    lines = text.splitlines()
    assert lines[0] == "#!/system/bin/sh"
    assert lines[1] == "export LD_LIBRARY_PATH=/data/local/tmp/prof/lib:$LD_LIBRARY_PATH"
    assert lines[2] == ('export ADSP_LIBRARY_PATH="/data/local/tmp/prof/lib;/vendor/dsp/cdsp;'
                        '/vendor/lib/rfsa/adsp;/system/lib/rfsa/adsp;/system/vendor/lib/rfsa/adsp;/dsp;'
                        '/usr/lib/rfsa/adsp;/etc/images/dsp;"')
    assert lines[3] == "cd /data/local/tmp/prof/models/blk3-k5 || exit 1"
    assert lines[4] == "rm -rf output"
    assert shlex.split(lines[5]) == cmd
    assert lines[5].startswith("/data/local/tmp/prof/bin/snpe-net-run --container m.dlc")
    assert text.endswith("\n") and len(lines) == 6


def test_device_script_quotes_arguments_and_checks_paths():
    text = device_script(["snpe-net-run", "--set_output_tensors", "a b;rm -rf /"], lib_dir="/d/lib",
                         model_dir="/d/m", dsp_lib_dirs=["/d/dsp", "/vendor/dsp/cdsp"])
    assert shlex.split(text.splitlines()[-1]) == ["snpe-net-run", "--set_output_tensors", "a b;rm -rf /"]
    assert '"/d/dsp;/vendor/dsp/cdsp;/vendor/lib/rfsa/adsp;' in text  # no duplicate system dir
    assert adsp_library_path(["/x"]).count("/vendor/dsp/cdsp") == 1
    for bad in ("relative/lib", "/data/my lib", "/d/$HOME", "/d/../etc", '/d/"q"'):
        with pytest.raises(ToolError, match="must be absolute"):
            device_script(["x"], lib_dir=bad, model_dir="/d/m")
    with pytest.raises(ToolError):
        DevicePaths("/data/local/tmp/has space")
    with pytest.raises(ToolError, match="plain folder name"):
        device_script(["x"], lib_dir="/d/lib", model_dir="/d/m", output_dir="../out")


def _run_script(tmp_path, fake_netrun_body, runs):
    """Run device_script(runs=N) with the host's sh against a stand-in snpe-net-run."""
    import subprocess
    from profiler.phone.snpe.commands import parse_script_output
    model = tmp_path / "m"
    model.mkdir(exist_ok=True)
    tool = tmp_path / "net-run"
    tool.write_text("#!/bin/sh\n" + fake_netrun_body)
    tool.chmod(0o755)
    text = device_script([str(tool), "--container", "m.dlc"], lib_dir=str(tmp_path / "lib"), model_dir=str(model),
                         runs=runs)
    proc = subprocess.run(["sh", "-c", text], capture_output=True, text=True)
    return proc, parse_script_output(proc.stdout), model


def test_device_script_runs_all_runs_and_names_each_log(tmp_path):
    body = 'mkdir -p output; n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; ' \
           'echo "run $n" > output/SNPEDiag_0.log\n'
    proc, outcome, model = _run_script(tmp_path, body, 3)
    assert proc.returncode == 0 and outcome.failed_run is None and outcome.missing_log_run is None
    assert outcome.logs == ("diag/1/SNPEDiag_0.log", "diag/2/SNPEDiag_0.log", "diag/3/SNPEDiag_0.log")
    assert [(model / p).read_text().strip() for p in outcome.logs] == ["run 1", "run 2", "run 3"]


def test_device_script_stops_at_the_failing_run_or_a_missing_log(tmp_path):
    body = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; ' \
           'if [ $n -eq 2 ]; then echo boom; exit 7; fi; mkdir -p output; echo x > output/SNPEDiag.log\n'
    proc, outcome, _ = _run_script(tmp_path, body, 4)
    assert proc.returncode == 7 and outcome.failed_run == 2 and outcome.failed_status == 7
    assert outcome.logs == ("diag/1/SNPEDiag.log",) and "boom" in proc.stdout
    proc, outcome, _ = _run_script(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, "exit 0\n", 2)
    assert proc.returncode == 3 and outcome.missing_log_run == 1 and outcome.logs == ()
    with pytest.raises(ToolError, match="runs must be at least 1"):
        device_script(["x"], lib_dir="/d/lib", model_dir="/d/m", runs=0)
