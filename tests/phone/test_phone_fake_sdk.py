"""The fake SDK itself: real flags in (unknown ones refused), real text formats out.

These checks keep the end-to-end tests honest: what the fakes print must be what the
profiler's parsers (tests/phone/snpe) accept for the real tools, in each SDK generation's layout.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from profiler.errors import ResultsError
from profiler.phone.snpe import parse_diagview, parse_dlc_info

from .fake_sdk import device_layout, make_fake_sdk
from .models import standard_specs, write_models


def _run(exe: Path, *args, cwd=None, env=None):
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    out = write_models(tmp_path_factory.mktemp("m"), standard_specs(2)[1:])
    return sorted(out.glob("*.onnx"))[0]


def _device_run(sdk: Path, dlc: Path, tmp: Path, *flags):
    """Run the device-side snpe-net-run on the host, with the env the device script sets."""
    target, dsp_dirs = device_layout(sdk.name.split("-", 1)[1])
    raw = tmp / "x_0.raw"
    np.zeros(16 * 16 * 8, np.float32).tofile(raw)
    (tmp / "input_list.txt").write_text("x_0.raw\n")
    env = dict(os.environ, LD_LIBRARY_PATH=str(sdk / "lib" / target),
               ADSP_LIBRARY_PATH=";".join(str(sdk / d) for d in dsp_dirs) + ";/dsp;")
    return _run(sdk / "bin" / target / "snpe-net-run", "--container", dlc, "--input_list", "input_list.txt",
                "--output_dir", "output", *flags, cwd=tmp, env=env)


@pytest.mark.parametrize("version, layout, dsp_unit", [
    ("1.54.2.2899", "flat", "us"), ("2.5.0.4052", "flat", "cycles"), ("2.10.0.4541", "indented", "cycles")])
def test_tools_chain_in_each_sdk_generation(tmp_path, onnx_model, version, layout, dsp_unit):
    sdk = make_fake_sdk(tmp_path, version)
    host = sdk / "bin" / "x86_64-linux-clang"
    dlc = tmp_path / "m.dlc"
    assert _run(host / "snpe-onnx-to-dlc", "--input_network", onnx_model, "--output_path", dlc).returncode == 0
    info = parse_dlc_info(_run(host / "snpe-dlc-info", "-i", dlc).stdout)
    assert info.input_dims() == {"x": [1, 16, 16, 8]}                  # NHWC, as SNPE stores it
    assert [t for _, t in info.layer_types()][-2:] in (["neuron", "elementwise_op"],
                                                       ["ElementWiseNeuron", "Eltwise_Binary"])
    assert (info.layers[0].type == "data") is (version < "2")      # SNPE 1 lists a data layer
    # quantize (1.x: snpe-dlc-quantize, 2.x: snpe-dlc-quant) with absolute calibration paths
    calib = tmp_path / "c.raw"
    np.ones(16 * 16 * 8, np.float32).tofile(calib)
    (tmp_path / "calib.txt").write_text(f"{calib}\n")
    q = tmp_path / "q.dlc"
    if version < "2":
        res = _run(host / "snpe-dlc-quantize", "--input_dlc", dlc, "--input_list", tmp_path / "calib.txt",
                   "--output_dlc", q, "--bias_bitwidth", "32")
    else:
        res = _run(host / "snpe-dlc-quant", f"--input_dlc={dlc}", f"--input_list={tmp_path / 'calib.txt'}",
                   f"--output_dlc={q}", "--bias_bitwidth=32")
    assert res.returncode == 0, res.stderr
    assert parse_dlc_info(_run(host / "snpe-dlc-info", "-i", q).stdout).is_quantized
    for flags, runtime, unit in (((), "CPU", "us"), (("--use_dsp",), "DSP", dsp_unit)):
        work = tmp_path / runtime
        work.mkdir()
        res = _device_run(sdk, q, work, "--perf_profile", "burst", "--profiling_level", "detailed", *flags)
        assert res.returncode == 0, res.stdout + res.stderr
        log = work / "output" / "SNPEDiag_0.log"
        with pytest.raises(ResultsError, match="binary data"):   # the log itself is not text
            parse_diagview(log.read_bytes().decode("latin-1"))
        text = _run(host / "snpe-diagview", "--input_log", log).stdout
        run, = parse_diagview(text, layer_types=info.layer_types())
        assert run.layout == layout and run.sdk_version == version and run.layers_unit == unit
        assert run.total_inference_us > run.forward_propagate_us > 0
        assert {lt.runtime for lt in run.layers} == {runtime}
        if unit == "us":
            assert 0 < run.layers_time_us < run.total_inference_us


def test_unknown_flags_are_refused(tmp_path, onnx_model):
    sdk = make_fake_sdk(tmp_path, "2.10.0.4541")
    host = sdk / "bin" / "x86_64-linux-clang"
    for tool, args in (("snpe-onnx-to-dlc", ["--input_network", onnx_model, "--fast"]),
                       ("snpe-dlc-quant", ["--input_dlc=a.dlc", "--input_list=l.txt", "--optimizations=bc2"]),
                       ("snpe-dlc-info", ["-i", "a.dlc", "--all"]),
                       ("snpe-diagview", ["--input_log", "x.log", "--csv", "y"]),
                       ("snpe-dlc-graph-prepare", ["--input_dlc=a", "--htp_socs=sm8550", "--htp_archs=v73"])):
        res = _run(host / tool, *args)
        assert res.returncode == 2, (tool, res.stdout, res.stderr)
    legacy = make_fake_sdk(tmp_path, "1.22.0.100")   # before 1.25: --model_path/--dlc_path only
    assert _run(legacy / "bin/x86_64-linux-clang/snpe-onnx-to-dlc", "--input_network", onnx_model).returncode == 2
    res = _device_run(sdk, tmp_path / "none.dlc", tmp_path, "--use_npu")
    assert res.returncode == 2 and "--use_npu" in res.stderr


def test_net_run_needs_libs_skels_and_a_quantized_dlc_for_dsp(tmp_path, onnx_model):
    sdk = make_fake_sdk(tmp_path, "2.10.0.4541")
    host = sdk / "bin" / "x86_64-linux-clang"
    dlc = tmp_path / "f.dlc"
    _run(host / "snpe-onnx-to-dlc", "--input_network", onnx_model, "--output_path", dlc)
    res = _device_run(sdk, dlc, tmp_path, "--use_dsp")
    assert res.returncode == 1 and "Non-quantized DLC" in res.stdout
    target, _ = device_layout("2.10.0.4541")
    res = subprocess.run([str(sdk / "bin" / target / "snpe-net-run"), "--container", dlc, "--input_list", "x"],
                         capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert res.returncode == 1 and 'library "libSNPE.so" not found' in res.stderr


def test_truncated_log_gives_truncated_diagview_text(tmp_path):
    sdk = make_fake_sdk(tmp_path, "2.10.0.4541")
    log = tmp_path / "SNPEDiag_0.log"
    log.write_bytes(b"SNPEDIAG\x00\x02{\"sdk\": \"2.10")
    res = _run(sdk / "bin/x86_64-linux-clang/snpe-diagview", "--input_log", log)
    assert res.returncode == 0
    with pytest.raises(ResultsError, match="truncated"):
        parse_diagview(res.stdout, str(log))
    log.write_bytes(b"not a log")
    res = _run(sdk / "bin/x86_64-linux-clang/snpe-diagview", "--input_log", log)
    assert res.returncode == 1 and "is not an SNPE diagnostic log" in res.stderr
