"""Argument lists (never shell strings) for the SNPE host tools and the on-device run.

Host tools (run by the caller with ``subprocess.run(list)``):

* ``snpe-onnx-to-dlc --input_network M.onnx --output_path M.dlc [--input_dim NAME 1,H,W,C]...
  [--quantization_overrides E.json]``; SDKs before 1.25 used ``--model_path/--dlc_path`` and
  had neither input dims nor overrides;
* SNPE 1.x: ``snpe-dlc-quantize --input_dlc D --input_list L --output_dlc Q [options]``
  (``--enable_hta`` for AIP);
* SNPE 2.x: ``snpe-dlc-quant --input_dlc=D --input_list=L --output_dlc=Q [options]`` then, for
  an HTP offline cache, ``snpe-dlc-graph-prepare --input_dlc=Q --input_list=L --output_dlc=Q
  --htp_socs=sm8550`` (the same two steps the SDK's ``snpe-dlc-quantize`` wrapper runs);
* ``snpe-dlc-info -i D`` and ``snpe-diagview --input_log SNPEDiag_0.log [--output X.csv]``.

On the device: the ``snpe-net-run`` argument list and the ``sh`` script that sets
``LD_LIBRARY_PATH`` and the quoted, ``;``-separated ``ADSP_LIBRARY_PATH`` before running it.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from profiler.errors import ToolError
from profiler.phone.snpe.sdk import Sdk, SdkVersion

PathLike = Union[str, os.PathLike]

RUNTIME_FLAGS = {
    "CPU": (),
    "GPU": ("--use_gpu",),
    "GPU_FP16": ("--use_gpu", "--gpu_mode", "float16"),
    "DSP": ("--use_dsp",),
    "HTP": ("--use_dsp",),  # SNPE 2 reaches the HTP through the DSP runtime
    "AIP": ("--use_aip",),
}
QUANTIZED_RUNTIMES = frozenset({"DSP", "HTP", "AIP"})
BUFFER_TYPES = ("float", "ub_float", "ub_tf8")
RUNTIME_BUFFERS = {
    "CPU": ("float", "ub_float"), "GPU": ("float", "ub_float"), "GPU_FP16": ("float", "ub_float"),
    "DSP": BUFFER_TYPES, "HTP": BUFFER_TYPES, "AIP": BUFFER_TYPES,
}
PERF_PROFILES = ("low_balanced", "balanced", "default", "high_performance", "sustained_high_performance",
                 "burst", "low_power_saver", "power_saver", "high_power_saver", "system_settings")
PROFILING_LEVELS = ("off", "basic", "moderate", "detailed", "linting")
ADSP_SYSTEM_DIRS = ("/vendor/dsp/cdsp", "/vendor/lib/rfsa/adsp", "/system/lib/rfsa/adsp",
                    "/system/vendor/lib/rfsa/adsp", "/dsp", "/usr/lib/rfsa/adsp", "/etc/images/dsp")
LEGACY_CONVERTER_BEFORE = SdkVersion(1, 25, 0)
_DEVICE_PATH_RE = re.compile(r"^/[A-Za-z0-9_./+\-=@%,:]*$")


def _runtime(runtime: str) -> str:
    rt = runtime.upper()
    if rt not in RUNTIME_FLAGS:
        raise ToolError(f"unknown SNPE runtime {runtime!r}; use one of {', '.join(RUNTIME_FLAGS)}")
    return rt


def needs_quantized_dlc(runtime: str, version: Optional[SdkVersion] = None) -> bool:
    """True if ``runtime`` must get a quantized DLC.

    AIP never runs a float DLC; SNPE 2's DSP/HTP only runs quantized DLCs. SNPE 1's DSP would
    quantize a float DLC itself at init, but that is not what gets deployed, so we always
    quantize for DSP as well. ``version`` is accepted for call-site clarity; the answer does
    not depend on it.
    """
    return _runtime(runtime) in QUANTIZED_RUNTIMES


def onnx_to_dlc_cmd(sdk: Sdk, onnx: PathLike, dlc: PathLike, *,
                input_dims: Optional[Mapping[str, Sequence[int]]] = None,
                quantization_overrides: Optional[PathLike] = None) -> List[str]:
    """``snpe-onnx-to-dlc`` arguments for this SDK version."""
    tool = sdk.tool("snpe-onnx-to-dlc")
    if sdk.version < LEGACY_CONVERTER_BEFORE:
        if input_dims or quantization_overrides:
            raise ToolError(f"snpe-onnx-to-dlc of SNPE {sdk.version} takes neither --input_dim nor "
                            f"--quantization_overrides; use SNPE >= 1.25")
        return [tool, "--model_path", str(onnx), "--dlc_path", str(dlc)]
    cmd = [tool, "--input_network", str(onnx), "--output_path", str(dlc)]
    for name, dims in (input_dims or {}).items():
        cmd += ["--input_dim", name, ",".join(str(int(d)) for d in dims)]
    if quantization_overrides is not None:
        cmd += ["--quantization_overrides", str(quantization_overrides)]
    return cmd


@dataclass(frozen=True)
class QuantizeOptions:
    """snpe-dlc-quantize / snpe-dlc-quant options. Defaults: the tool's, except 32-bit biases."""

    act_bitwidth: int = 8
    weights_bitwidth: int = 8
    bias_bitwidth: int = 32
    use_enhanced_quantizer: bool = False
    use_adjusted_weights_quantizer: bool = False
    cle: bool = False
    bc: bool = False
    override_params: bool = False
    axis_quant: bool = False
    htp_socs: Tuple[str, ...] = ()

    def validate(self) -> None:
        if self.act_bitwidth not in (8, 16):
            raise ToolError(f"act_bitwidth must be 8 or 16, not {self.act_bitwidth}")
        if self.weights_bitwidth not in (8, 16):
            raise ToolError(f"weights_bitwidth must be 8 or 16, not {self.weights_bitwidth}")
        if self.bias_bitwidth not in (8, 32):
            raise ToolError(f"bias_bitwidth must be 8 or 32, not {self.bias_bitwidth}")
        if self.use_adjusted_weights_quantizer and self.weights_bitwidth != 8:
            raise ToolError("the adjusted weights quantizer only applies to 8-bit weights")
        if self.bc and not self.cle:
            raise ToolError("bias correction (bc) must be combined with cle")


def _quant_flags(opts: QuantizeOptions, eq: bool) -> List[str]:
    def kv(key: str, value: object) -> List[str]:
        return [f"--{key}={value}"] if eq else [f"--{key}", str(value)]

    out: List[str] = []
    if opts.use_enhanced_quantizer:
        out.append("--use_enhanced_quantizer")
    if opts.use_adjusted_weights_quantizer:
        out.append("--use_adjusted_weights_quantizer")
    if opts.cle:
        out += kv("optimizations", "cle")
    if opts.override_params:
        out.append("--override_params")
    if opts.bias_bitwidth != 8:
        out += kv("bias_bitwidth", opts.bias_bitwidth)
    if opts.act_bitwidth != 8:
        out += kv("act_bitwidth", opts.act_bitwidth)
    if opts.weights_bitwidth != 8:
        out += kv("weights_bitwidth", opts.weights_bitwidth)
    if opts.axis_quant:
        out.append("--axis_quant")
    return out


def quantize_cmds(sdk: Sdk, dlc: PathLike, output_dlc: PathLike, input_list: PathLike, *,
             runtime: str = "DSP", options: QuantizeOptions = QuantizeOptions()) -> List[List[str]]:
    """The command(s) that turn a float DLC into the quantized DLC for ``runtime``.

    SNPE 1.x: one ``snpe-dlc-quantize`` call (``--optimizations bc`` after cle when asked,
    ``--enable_hta`` for AIP). SNPE 2.x: ``snpe-dlc-quant`` (bc is a no-op there and is
    dropped; HTA is retired), plus ``snpe-dlc-graph-prepare`` in place when ``htp_socs`` are
    given for a DSP/HTP runtime (otherwise the HTP graph is prepared on the device at init).
    ``input_list`` must list absolute raw paths (see :mod:`profiler.phone.snpe.rawinput`).
    """
    rt = _runtime(runtime)
    options.validate()
    if not sdk.version.snpe2:
        cmd = [sdk.tool("snpe-dlc-quantize"), "--input_dlc", str(dlc), "--input_list", str(input_list),
               "--output_dlc", str(output_dlc)] + _quant_flags(options, eq=False)
        if options.bc:
            cmd += ["--optimizations", "bc"]
        if rt == "AIP":
            cmd.append("--enable_hta")
        return [cmd]
    cmds = [[sdk.tool("snpe-dlc-quant"), f"--input_dlc={dlc}", f"--input_list={input_list}",
             f"--output_dlc={output_dlc}"] + _quant_flags(options, eq=True)]
    if options.htp_socs and rt in ("DSP", "HTP"):
        cmds.append([sdk.tool("snpe-dlc-graph-prepare"), f"--input_dlc={output_dlc}",
                     f"--input_list={input_list}", f"--output_dlc={output_dlc}",
                     f"--htp_socs={','.join(options.htp_socs)}"])
    return cmds


def dlc_info_cmd(sdk: Sdk, dlc: PathLike) -> List[str]:
    """``snpe-dlc-info -i <dlc>``."""
    return [sdk.tool("snpe-dlc-info"), "-i", str(dlc)]


def diagview_cmd(sdk: Sdk, diag_log: PathLike, csv_output: Optional[PathLike] = None) -> List[str]:
    """``snpe-diagview --input_log <log> [--output <csv>]`` (parse its stdout)."""
    cmd = [sdk.tool("snpe-diagview"), "--input_log", str(diag_log)]
    if csv_output is not None:
        cmd += ["--output", str(csv_output)]
    return cmd


def net_run_cmd(snpe_net_run: str, container: str, input_list: str, *, runtime: str,
            version: SdkVersion, buffer: str = "float", output_dir: str = "output",
            perf_profile: Optional[str] = None, profiling_level: Optional[str] = None,
            extra: Sequence[str] = ()) -> List[str]:
    """The on-device ``snpe-net-run`` argument list (paths as seen on the device)."""
    rt = _runtime(runtime)
    if buffer not in RUNTIME_BUFFERS[rt]:
        raise ToolError(f"buffer type {buffer!r} is not valid for {rt}; use one of {', '.join(RUNTIME_BUFFERS[rt])}")
    cmd = [snpe_net_run, "--container", container, "--input_list", input_list, "--output_dir", output_dir]
    cmd += list(RUNTIME_FLAGS[rt])
    if buffer == "ub_float":
        cmd.append("--userbuffer_float")
    elif buffer == "ub_tf8":
        cmd += ["--userbuffer_tfN", "8"] if version.snpe2 else ["--userbuffer_tf8"]
    if perf_profile is not None:
        if perf_profile not in PERF_PROFILES:
            raise ToolError(f"unknown perf profile {perf_profile!r}; use one of {', '.join(PERF_PROFILES)}")
        cmd += ["--perf_profile", perf_profile]
    if profiling_level is not None:
        if profiling_level not in PROFILING_LEVELS or (profiling_level == "linting" and not version.snpe2):
            raise ToolError(f"unknown profiling level {profiling_level!r} for SNPE {version}; "
                            f"use off, basic, moderate or detailed")
        cmd += ["--profiling_level", profiling_level]
    return cmd + list(extra)


@dataclass(frozen=True)
class DevicePaths:
    """Device folder layout under one root (default ``/data/local/tmp/profiler``)::

        <root>/bin/snpe-net-run   <root>/lib/*.so (incl. DSP skels)   <root>/models/<name>/
        <root>/inputs/<name>/ (benchmark raws + input list, shared by modules with the same inputs)
    """

    FOLDERS = ("bin", "lib", "inputs", "models")  # everything the profiler writes under the root

    root: str = "/data/local/tmp/profiler"

    def __post_init__(self) -> None:
        check_device_path(self.root)

    @property
    def bin_dir(self) -> str:
        return f"{self.root.rstrip('/')}/bin"

    @property
    def lib_dir(self) -> str:
        return f"{self.root.rstrip('/')}/lib"

    @property
    def models_dir(self) -> str:
        return f"{self.root.rstrip('/')}/models"

    @property
    def inputs_root(self) -> str:
        return f"{self.root.rstrip('/')}/inputs"

    @property
    def snpe_net_run(self) -> str:
        return f"{self.bin_dir}/snpe-net-run"

    def model_dir(self, name: str) -> str:
        return check_device_path(f"{self.root.rstrip('/')}/models/{name}")

    def inputs_dir(self, name: str) -> str:
        return check_device_path(f"{self.inputs_root}/{name}")

    @staticmethod
    def inputs_from_model_dir(name: str) -> str:
        """``inputs_dir(name)`` as seen from any ``model_dir`` (the script's working folder)."""
        check_device_path(f"/inputs/{name}")
        return f"../../inputs/{name}"


def check_device_path(path: str) -> str:
    """Return ``path`` if it is absolute and needs no shell quoting, else :class:`ToolError`."""
    if not _DEVICE_PATH_RE.match(path) or "/../" in path + "/":
        raise ToolError(f"device path {path!r} must be absolute and use only letters, digits and "
                        f"_ . / + - = @ % , : (it is written into an adb shell script)")
    return path


def adsp_library_path(lib_dirs: Sequence[str]) -> str:
    """The ``;``-separated ADSP_LIBRARY_PATH value: our skel dirs first, then the system ones."""
    dirs = [check_device_path(d) for d in lib_dirs] + [d for d in ADSP_SYSTEM_DIRS if d not in lib_dirs]
    return ";".join(dirs) + ";"


RUN_FAILED_MARK = "PROFILER-RUN-FAILED"
NO_LOG_MARK = "PROFILER-NO-DIAG-LOG"
DIAG_LOG_MARK = "PROFILER-DIAG-LOG"
DIAG_DIR = "diag"


def device_script(net_run_cmd: Sequence[str], *, lib_dir: str, model_dir: str,
                  dsp_lib_dirs: Optional[Sequence[str]] = None, output_dir: str = "output",
                  runs: Optional[int] = None) -> str:
    """Text of the ``sh`` script that runs ``net_run_cmd`` on the device.

    It exports ``LD_LIBRARY_PATH=<lib_dir>:$LD_LIBRARY_PATH`` and the double-quoted
    ``ADSP_LIBRARY_PATH="<dsp dirs>;<system dirs>;"`` (DSP skels default to ``lib_dir``), enters
    ``model_dir``, removes the old output folder and runs the command (each argument quoted).
    The script's exit status is snpe-net-run's.

    With ``runs=N`` the command is run N times in the one script (one device shell call for
    all of a module's runs): before each run the output folder is removed; after it, its
    ``SNPEDiag*.log`` is moved to ``diag/<run>/`` (the name kept) and a line
    ``PROFILER-DIAG-LOG <run> diag/<run>/<name>`` is printed, so the host pulls each log by its
    known name. A failing run stops the script with snpe-net-run's exit status after
    ``PROFILER-RUN-FAILED <run> <status>``; a run that writes no log stops it with status 3
    after ``PROFILER-NO-DIAG-LOG <run>``. See :func:`parse_script_output`.
    """
    check_device_path(lib_dir)
    check_device_path(model_dir)
    if not output_dir or "/" in output_dir or output_dir in (".", ".."):
        raise ToolError(f"output_dir {output_dir!r} must be a plain folder name inside the model dir")
    dsp = list(dsp_lib_dirs) if dsp_lib_dirs is not None else [lib_dir]
    head = [
        "#!/system/bin/sh",
        f"export LD_LIBRARY_PATH={lib_dir}:$LD_LIBRARY_PATH",
        f'export ADSP_LIBRARY_PATH="{adsp_library_path(dsp)}"',
        f"cd {model_dir} || exit 1",
    ]
    out = shlex.quote(output_dir)
    run = " ".join(shlex.quote(a) for a in net_run_cmd)
    if runs is None:
        return "\n".join(head + [f"rm -rf {out}", run, ""])
    if runs < 1:
        raise ToolError(f"runs must be at least 1, not {runs}")
    return "\n".join(head + [
        f"rm -rf {DIAG_DIR}",
        "i=1",
        f"while [ $i -le {int(runs)} ]; do",
        f"  rm -rf {out}",
        f"  {run}",
        "  rc=$?",
        f'  if [ $rc -ne 0 ]; then echo "{RUN_FAILED_MARK} $i $rc"; exit $rc; fi',
        f"  set -- {out}/SNPEDiag*.log",
        f'  if [ ! -f "$1" ]; then echo "{NO_LOG_MARK} $i"; exit 3; fi',
        f'  mkdir -p {DIAG_DIR}/$i && mv "$1" {DIAG_DIR}/$i/ || exit 1',
        f'  echo "{DIAG_LOG_MARK} $i {DIAG_DIR}/$i/${{1##*/}}"',
        "  i=$((i + 1))",
        "done",
        "",
    ])


@dataclass(frozen=True)
class ScriptOutcome:
    """What a multi-run device script reported: the diag log of each finished run (relative to
    the model folder, in run order), and the run that failed (with its status) or wrote no log."""

    logs: Tuple[str, ...]
    failed_run: Optional[int] = None
    failed_status: Optional[int] = None
    missing_log_run: Optional[int] = None


def parse_script_output(text: str) -> ScriptOutcome:
    """Read the marker lines of :func:`device_script` (``runs=N``) from its output."""
    logs: Dict[int, str] = {}
    failed = status = missing = None
    for line in text.splitlines():
        parts = line.strip().split(" ", 2)
        if len(parts) == 3 and parts[0] == DIAG_LOG_MARK and parts[1].isdigit():
            logs[int(parts[1])] = parts[2]
        elif len(parts) == 3 and parts[0] == RUN_FAILED_MARK and parts[1].isdigit():
            failed, status = int(parts[1]), int(parts[2]) if parts[2].lstrip("-").isdigit() else None
        elif len(parts) == 2 and parts[0] == NO_LOG_MARK and parts[1].isdigit():
            missing = int(parts[1])
    return ScriptOutcome(tuple(logs[k] for k in sorted(logs)), failed, status, missing)


__all__ = [
    "ADSP_SYSTEM_DIRS", "BUFFER_TYPES", "DevicePaths", "PERF_PROFILES", "PROFILING_LEVELS",
    "QuantizeOptions", "RUNTIME_BUFFERS", "RUNTIME_FLAGS", "adsp_library_path", "check_device_path",
    "ScriptOutcome", "device_script", "diagview_cmd", "parse_script_output", "dlc_info_cmd", "needs_quantized_dlc", "net_run_cmd", "onnx_to_dlc_cmd",
    "quantize_cmds",
]
