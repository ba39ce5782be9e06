"""Generate a fake SNPE SDK tree whose tools are executables speaking the real formats.

``make_fake_sdk(parent, "2.10.0.4541")`` writes ``parent/snpe-2.10.0.4541/`` with the folder
layout of that version (see ``docs/snpe.md``)::

    bin/x86_64-linux-clang/   snpe-onnx-to-dlc snpe-dlc-info snpe-diagview
                              snpe-dlc-quantize (1.x) | snpe-dlc-quant snpe-dlc-graph-prepare (2.x)
    bin/<arm64 target>/       snpe-net-run  (pushed to the phone by the profiler)
    lib/<arm64 target>/       libSNPE.so libc++_shared.so ...
    lib/dsp/ or lib/hexagon-v73/unsigned/   DSP/HTP skel libraries
    lib/x86_64-linux-clang/   lib/python/

Every tool is a standalone Python script (``#!<this interpreter>``) made of
:mod:`tests.phone.fake_tools` plus its name, the SDK version and the path of ``calls.jsonl``,
where host tools log their argument lists (and the interpreter that ran them).

For an SDK that runs elsewhere (mounted into the bench-runner container): ``host_python``
is the ``#!`` interpreter of the host tools (e.g. ``"/usr/bin/env python3"``: the image's
venv Python, which must have ``onnx`` for the converter), ``device_python`` the one of
``snpe-net-run`` (run by the loopback adb server on the test machine: keep this interpreter),
and ``calls`` a writable path for the call log when the SDK itself is mounted read-only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Union

HERE = Path(__file__).resolve().parent
HOST_TOOLS_1X = ("snpe-onnx-to-dlc", "snpe-dlc-info", "snpe-diagview", "snpe-dlc-quantize")
HOST_TOOLS_2X = ("snpe-onnx-to-dlc", "snpe-dlc-info", "snpe-diagview", "snpe-dlc-quant",
                 "snpe-dlc-graph-prepare")


def _vt(version: str):
    return tuple(int(p) for p in version.split(".")[:3])


def device_layout(version: str):
    """(arm64 folder name, DSP skel folders) of a version, as the real SDKs lay them out."""
    vt = _vt(version)
    if vt >= (2, 10, 0):
        return "aarch64-android", ["lib/hexagon-v73/unsigned", "lib/hexagon-v75/unsigned"]
    if vt >= (2, 0, 0):
        return "aarch64-android-clang8.0", ["lib/dsp"]
    if vt >= (1, 20, 0):
        return "aarch64-android-clang6.0", ["lib/dsp"]
    return "aarch64-android-gcc4.9", ["lib/dsp"]


def tool_source(tool: str, version: str, calls: str, python: Optional[str] = None) -> str:
    body = (HERE / "fake_tools.py").read_text(encoding="utf-8")
    return (f"#!{python or sys.executable}\n"
            f"TOOL = {tool!r}\nVERSION = {version!r}\nCALLS = {calls!r}\n"
            + body + "\n\nif __name__ == '__main__':\n    sys.exit(main())\n")


def _write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def _write_lib(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x7fELF fake " + path.name.encode() + b"\0" * 512)
    path.chmod(0o644)


def make_fake_sdk(parent: Path, version: str = "2.10.0.4541", *, host_python: Optional[str] = None,
                  device_python: Optional[str] = None, calls: Optional[Union[str, Path]] = None) -> Path:
    """Write the fake SDK ``parent/snpe-<version>/``; see the module docstring for the options."""
    root = Path(parent) / f"snpe-{version}"
    calls = str(calls or root / "calls.jsonl")
    host = root / "bin" / "x86_64-linux-clang"
    tools = HOST_TOOLS_2X if _vt(version) >= (2, 0, 0) else HOST_TOOLS_1X
    for tool in tools:
        _write_exe(host / tool, tool_source(tool, version, calls, host_python))
    target, dsp_dirs = device_layout(version)
    _write_exe(root / "bin" / target / "snpe-net-run", tool_source("snpe-net-run", version, "", device_python))
    libs = ["libSNPE.so", "libc++_shared.so"]
    if _vt(version) >= (2, 10, 0):
        libs += ["libSnpeHtpV73Stub.so", "libSnpeHtpPrepare.so"]
    else:
        libs += ["libsnpe_dsp_domains_v2.so", "libcalculator.so"]
    for name in libs:
        _write_lib(root / "lib" / target / name)
    for d in dsp_dirs:
        arch = d.split("hexagon-")[1].split("/")[0].upper() if "hexagon" in d else "V66"
        skel = f"libSnpeHtp{arch}Skel.so" if "hexagon" in d else "libSnpeDspV66Skel.so"
        _write_lib(root / d / skel)
    _write_lib(root / "lib" / "x86_64-linux-clang" / "libSNPE.so")
    (root / "lib" / "python").mkdir(parents=True, exist_ok=True)
    (root / "ReleaseNotes.txt").write_text(f"SNPE {version}\n", encoding="utf-8")
    return root


def tool_calls(sdk_root: Path, tool: str = None, calls: Optional[Union[str, Path]] = None) -> List[Dict]:
    """Logged host-tool calls ``[{"tool", "argv", "cwd", "python"}, ...]`` (optionally of one tool),
    from ``calls`` when the SDK was made with another call-log path."""
    path = Path(calls) if calls else Path(sdk_root) / "calls.jsonl"
    if not path.exists():
        return []
    calls = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [c for c in calls if tool is None or c["tool"] == tool]
