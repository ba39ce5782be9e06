"""The pure SNPE core: parsers, encodings, SDK lookup and command lines (no device I/O).

* :mod:`.encodings`: quantization-overrides JSON (read/validate/write) and TF-style encodings;
* :mod:`.diagview`: ``snpe-diagview`` output -> per-run latencies and layer times;
* :mod:`.dlcinfo`: ``snpe-dlc-info`` output -> inputs and the layer table;
* :mod:`.bench_import`: the SDK's ``snpe_bench.py`` CSV/JSON results;
* :mod:`.results`: the common imported-profile shape and summary -> samples conversion;
* :mod:`.qnn_profile`, :mod:`.ai_hub`, :mod:`.diagview_csv`: qnn-profile-viewer text, AI Hub
  profile JSON, snpe-diagview ``--output`` CSV;
* :mod:`.sdk`: find the SDK, its version, its device folders;
* :mod:`.commands`: argument lists for converters, quantizers, dlc-info, diagview, snpe-net-run
  and the on-device shell script;
* :mod:`.rawinput`: ``.raw`` inputs and input lists.

Reference: ``docs/snpe.md``.
"""

from profiler.phone.snpe.ai_hub import load_ai_hub_profile, parse_ai_hub_profile
from profiler.phone.snpe.bench_import import (BenchFlavor, BenchImport, bench_profiles, load_bench_results, parse_bench_csv,
                                        parse_bench_json)
from profiler.phone.snpe.commands import (DevicePaths, QuantizeOptions, ScriptOutcome, device_script, diagview_cmd, dlc_info_cmd,
                                    needs_quantized_dlc, net_run_cmd, onnx_to_dlc_cmd, parse_script_output,
                                    quantize_cmds)
from profiler.phone.snpe.diagview import (DiagRun, LayerTime, Measure, parse_clock, parse_diagview,
                                    parse_diagview_file, summarize)
from profiler.phone.snpe.diagview_csv import load_diagview_csv, parse_diagview_csv
from profiler.phone.snpe.dlcinfo import DlcInfo, DlcLayer, DlcTensor, parse_dlc_info, parse_dlc_info_csv, parse_dlc_info_file
from profiler.phone.snpe.encodings import (Encoding, EncodingsError, QuantOverrides, compute_encoding,
                                     load_overrides, make_overrides, parse_overrides, save_overrides)
from profiler.phone.snpe.qnn_profile import QnnProfile, parse_qnn_profile, parse_qnn_profile_file
from profiler.phone.snpe.rawinput import (RawInputError, format_input_list, images_to_raw, random_inputs,
                                    write_input_list)
from profiler.phone.snpe.results import ImportedLayer, ImportedProfile, samples_from_summary
from profiler.phone.snpe.sdk import (DeviceTarget, Sdk, SdkVersion, device_artifacts, device_target, locate_sdk,
                               parse_version, resolve_device_target)

__all__ = [
    "ImportedLayer", "ImportedProfile", "QnnProfile", "bench_profiles", "load_ai_hub_profile", "load_diagview_csv",
    "parse_ai_hub_profile", "parse_diagview_csv", "parse_dlc_info_csv", "parse_qnn_profile",
    "parse_qnn_profile_file", "samples_from_summary", "ScriptOutcome", "parse_script_output",
    "BenchFlavor", "BenchImport", "DevicePaths", "DeviceTarget", "DiagRun", "DlcInfo", "DlcLayer",
    "DlcTensor", "Encoding", "EncodingsError", "LayerTime", "Measure", "QuantOverrides",
    "QuantizeOptions", "RawInputError", "Sdk", "SdkVersion", "compute_encoding", "device_artifacts",
    "device_script", "device_target", "diagview_cmd", "dlc_info_cmd", "format_input_list", "images_to_raw",
    "load_bench_results", "load_overrides", "locate_sdk", "make_overrides", "needs_quantized_dlc",
    "net_run_cmd", "onnx_to_dlc_cmd", "parse_bench_csv", "parse_bench_json", "parse_clock", "parse_diagview",
    "parse_diagview_file", "parse_dlc_info", "parse_dlc_info_file", "parse_overrides", "parse_version",
    "quantize_cmds", "random_inputs", "resolve_device_target", "save_overrides", "summarize",
    "write_input_list",
]
