"""Locate the SNPE/QAIRT SDK on the host, read its version, and name its device folders.

The root comes from ``--snpe-root`` or the ``SNPE_ROOT`` environment variable (what
``bin/envsetup.sh`` exports). The version is read, in this order, from: a ``sdk.yaml``
``version:`` line (QAIRT layouts), a path component such as ``snpe-1.54.2.2899``,
``snpe-2.9.0.4462`` or ``qairt/2.22.6.240515``, the first ``SNPE <x.y.z>`` line of
``ReleaseNotes.txt``, or the output of ``snpe-net-run --version`` when asked to run it.

Device folders (arm64 Android) by SDK version::

    1.17 .. 1.19   lib/aarch64-android-gcc4.9     DSP skels: lib/dsp
    1.20 .. 1.x    lib/aarch64-android-clang6.0   DSP skels: lib/dsp
    2.0  .. 2.9    lib/aarch64-android-clang8.0   DSP skels: lib/dsp
    >= 2.10        lib/aarch64-android            DSP skels: lib/hexagon-v<NN>/unsigned

The version boundaries are from the SDK trees we could inspect (1.17, 1.55, 2.5, QAIRT 2.2x);
:func:`resolve_device_target` therefore also checks the SDK on disk and falls back to the other
known names before giving up.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from profiler.errors import ToolError

HOST_ARCH = "x86_64-linux-clang"
HEXAGON_ARCHS = ("v66", "v68", "v69", "v73", "v75", "v79")
_VERSION_RE = re.compile(r"(?<![\d.])(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?(?:_\d+)?(?![\d.])")


@dataclass(frozen=True, order=True)
class SdkVersion:
    """``major.minor.patch.build`` (build 0 when the source gave only three numbers)."""

    major: int
    minor: int
    patch: int
    build: int = 0

    @property
    def snpe2(self) -> bool:
        """True for SNPE 2.x / QAIRT (new DLC format, snpe-dlc-quant, no HTA)."""
        return self.major >= 2

    def as_tuple(self) -> Tuple[int, int, int, int]:
        return (self.major, self.minor, self.patch, self.build)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}.{self.build}"


def parse_version(text: str) -> SdkVersion:
    """The first ``x.y.z[.build]`` in ``text`` (a path, a tool banner, a version string).

    ``2.37.0.250724175447_124859`` gives build 250724175447. Raises :class:`ToolError`.
    """
    m = _VERSION_RE.search(text)
    if not m:
        raise ToolError(f"cannot find an SNPE version (like 2.10.0.4541) in {text.strip()[:120]!r}")
    return SdkVersion(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4) or 0))


@dataclass(frozen=True)
class DeviceTarget:
    """Where the arm64 binaries, libraries and DSP skels sit inside the SDK (relative paths)."""

    target: str
    bin_dir: str
    lib_dir: str
    dsp_dirs: Tuple[str, ...]


def device_target_candidates(version: SdkVersion, dsp_archs: Optional[Sequence[str]] = None) -> List[DeviceTarget]:
    """Known arm64 Android folder layouts for ``version``, most likely first (pure)."""
    def make(target: str, dsp: Tuple[str, ...]) -> DeviceTarget:
        return DeviceTarget(target, f"bin/{target}", f"lib/{target}", dsp)

    hexagon = tuple(f"lib/hexagon-{a}/unsigned" for a in (dsp_archs or HEXAGON_ARCHS))
    if version >= SdkVersion(2, 10, 0):
        return [make("aarch64-android", hexagon), make("aarch64-android-clang8.0", ("lib/dsp",))]
    if version.major >= 2:
        return [make("aarch64-android-clang8.0", ("lib/dsp",)), make("aarch64-android", hexagon)]
    if version >= SdkVersion(1, 20, 0):
        return [make("aarch64-android-clang6.0", ("lib/dsp",)), make("aarch64-android-clang8.0", ("lib/dsp",))]
    return [make("aarch64-android-gcc4.9", ("lib/dsp",)), make("aarch64-android-clang3.8", ("lib/dsp",))]


def device_target(version: SdkVersion, dsp_archs: Optional[Sequence[str]] = None) -> DeviceTarget:
    """The expected arm64 Android layout for ``version`` (pure; see module docstring)."""
    return device_target_candidates(version, dsp_archs)[0]


@dataclass(frozen=True)
class Sdk:
    """An SDK root and its version. Building commands needs nothing else (no disk access)."""

    root: Path
    version: SdkVersion

    @property
    def host_bin(self) -> Path:
        return self.root / "bin" / HOST_ARCH

    def tool(self, name: str) -> str:
        """Path of a host tool (not checked; see :meth:`check_tool`)."""
        return str(self.host_bin / name)

    def check_tool(self, name: str) -> Path:
        """Path of a host tool, or :class:`ToolError` if the SDK does not have it."""
        path = self.host_bin / name
        if not path.is_file():
            raise ToolError(f"{path}: {name} not found in the SNPE SDK at {self.root} "
                            f"(SNPE {self.version}); check --snpe-root / SNPE_ROOT")
        return path


def find_sdk_root(snpe_root: Union[str, Path, None] = None,
                  env: Optional[Mapping[str, str]] = None) -> Path:
    """The SDK root from ``snpe_root`` or ``$SNPE_ROOT``; :class:`ToolError` if absent or wrong."""
    env = os.environ if env is None else env
    given = snpe_root if snpe_root not in (None, "") else env.get("SNPE_ROOT")
    origin = "--snpe-root" if snpe_root not in (None, "") else "SNPE_ROOT"
    if not given:
        raise ToolError("SNPE SDK not found: pass --snpe-root <sdk dir> or set SNPE_ROOT "
                        "(e.g. source <sdk>/bin/envsetup.sh)")
    root = Path(given).expanduser()
    if root.exists() and not root.is_dir():
        raise ToolError(f"{root}: is a file, not the SNPE SDK directory ({origin}); pass the SDK's root folder")
    if not root.is_dir():
        raise ToolError(f"{root}: SNPE SDK directory ({origin}) does not exist")
    if not (root / "bin").is_dir() or not (root / "lib").is_dir():
        raise ToolError(f"{root}: not an SNPE SDK root ({origin}): expected bin/ and lib/ inside "
                        f"(point it at the folder containing bin/{HOST_ARCH})")
    return root


def version_from_files(root: Path) -> Optional[SdkVersion]:
    """The version from files and folder names under ``root``, or None if nothing says."""
    yaml = root / "sdk.yaml"
    if yaml.is_file():
        for line in yaml.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip().lower().startswith("version:"):
                try:
                    return parse_version(line.split(":", 1)[1])
                except ToolError:
                    break
    for part in reversed(root.resolve().parts):
        m = _VERSION_RE.search(part)
        if m and (part[: m.start()] in ("", "v", "snpe-", "snpe_", "qairt-", "snpe-sdk-")):
            return parse_version(part)
    notes = root / "ReleaseNotes.txt"
    if notes.is_file():
        for line in notes.read_text(encoding="utf-8", errors="replace").splitlines()[:40]:
            m = re.match(r"^\s*(?:SNPE|Qualcomm.*SDK)\s+v?(\d+\.\d+\.\d+(?:\.\d+)?)\s*$", line)
            if m:
                return parse_version(m.group(1))
    return None


def tool_version_output(root: Path, timeout: float = 30.0) -> str:
    """Run ``snpe-net-run --version`` on the host and return its output (stdout + stderr)."""
    exe = root / "bin" / HOST_ARCH / "snpe-net-run"
    if not exe.is_file():
        raise ToolError(f"{exe}: not found; cannot ask the SDK for its version")
    env = dict(os.environ)
    lib = str(root / "lib" / HOST_ARCH)
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    try:
        proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ToolError(f"{exe} --version failed: {e}") from None
    return proc.stdout + proc.stderr


def detect_version(root: Path, *, run_tool: bool = False) -> SdkVersion:
    """The SDK version from its files, else (``run_tool``) from ``snpe-net-run --version``."""
    found = version_from_files(root)
    if found is not None:
        return found
    if run_tool:
        return parse_version(tool_version_output(root))
    raise ToolError(f"{root}: cannot tell the SNPE version (no sdk.yaml, no version in the folder "
                    f"name, no ReleaseNotes.txt); rename the folder like snpe-2.10.0.4541 or pass "
                    f"the version explicitly")


def locate_sdk(snpe_root: Union[str, Path, None] = None, *, version: Union[str, SdkVersion, None] = None,
               env: Optional[Mapping[str, str]] = None, run_tool: bool = False) -> Sdk:
    """Find the SDK root and its version (``version`` overrides detection)."""
    root = find_sdk_root(snpe_root, env)
    if isinstance(version, str):
        version = parse_version(version)
    return Sdk(root, version if version is not None else detect_version(root, run_tool=run_tool))


def resolve_device_target(sdk: Sdk, dsp_archs: Optional[Sequence[str]] = None) -> DeviceTarget:
    """The first known layout whose ``snpe-net-run`` and lib dir exist in this SDK.

    DSP skel dirs are filtered to those present. Raises :class:`ToolError` listing what was tried.
    """
    tried = []
    for cand in device_target_candidates(sdk.version, dsp_archs):
        if (sdk.root / cand.bin_dir / "snpe-net-run").is_file() and (sdk.root / cand.lib_dir).is_dir():
            dsp = tuple(d for d in cand.dsp_dirs if (sdk.root / d).is_dir())
            return DeviceTarget(cand.target, cand.bin_dir, cand.lib_dir, dsp)
        tried.append(f"{cand.bin_dir}/snpe-net-run")
    raise ToolError(f"{sdk.root}: no arm64 Android snpe-net-run in the SNPE SDK (SNPE {sdk.version}); "
                    f"looked for {', '.join(tried)}")


def device_artifacts(sdk: Sdk, target: DeviceTarget) -> List[Tuple[Path, str]]:
    """Host files to push: ``[(host path, "bin/<name>" | "lib/<name>"), ...]``.

    ``snpe-net-run`` goes to ``bin/``; every ``*.so`` of the lib dir and of the DSP skel dirs
    goes to ``lib/`` (one folder serves LD_LIBRARY_PATH and ADSP_LIBRARY_PATH, like snpe_bench).
    """
    exe = sdk.root / target.bin_dir / "snpe-net-run"
    if not exe.is_file():
        raise ToolError(f"{exe}: not found in the SNPE SDK")
    out: List[Tuple[Path, str]] = [(exe, "bin/snpe-net-run")]
    seen = set()
    for d in (target.lib_dir,) + tuple(target.dsp_dirs):
        for so in sorted((sdk.root / d).glob("*.so")):
            if so.name not in seen:
                seen.add(so.name)
                out.append((so, f"lib/{so.name}"))
    if len(out) == 1:
        raise ToolError(f"{sdk.root / target.lib_dir}: no .so libraries in the SNPE SDK")
    return out


__all__ = [
    "DeviceTarget", "HEXAGON_ARCHS", "HOST_ARCH", "Sdk", "SdkVersion", "detect_version",
    "device_artifacts", "device_target", "device_target_candidates", "find_sdk_root", "locate_sdk",
    "parse_version", "resolve_device_target", "tool_version_output", "version_from_files",
]
