import os
import stat
from pathlib import Path

import pytest

from profiler.errors import ToolError
from profiler.phone.snpe.sdk import (Sdk, SdkVersion, detect_version, device_artifacts, device_target,
                               find_sdk_root, locate_sdk, parse_version, resolve_device_target,
                               version_from_files)


@pytest.mark.parametrize("text,version", [
    ("snpe-1.54.2.2899", (1, 54, 2, 2899)),
    ("/opt/qcom/aistack/qairt/2.22.6.240515", (2, 22, 6, 240515)),
    ("Software library version: 2.37.0.250724175447_124859", (2, 37, 0, 250724175447)),
    ("SNPE v2.10.0.4541\n", (2, 10, 0, 4541)),
    ("SNPE 2.5.0", (2, 5, 0, 0)),
    ("snpe-1.17.1", (1, 17, 1, 0)),
])
def test_parse_version(text, version):
    v = parse_version(text)
    assert v.as_tuple() == version
    assert v.snpe2 == (version[0] >= 2)


def test_parse_version_rejects_and_orders():
    with pytest.raises(ToolError, match="cannot find an SNPE version"):
        parse_version("snpe-net-run: command not found")
    assert SdkVersion(1, 68, 0) < SdkVersion(2, 0, 0) < SdkVersion(2, 10, 0, 1)
    assert str(SdkVersion(2, 9, 0, 4462)) == "2.9.0.4462"


def make_sdk(base: Path, name: str) -> Path:
    root = base / name
    (root / "bin" / "x86_64-linux-clang").mkdir(parents=True)
    (root / "lib").mkdir()
    return root


def test_find_sdk_root_argument_wins_over_env(tmp_path):
    a, b = make_sdk(tmp_path, "snpe-1.54.2.2899"), make_sdk(tmp_path, "snpe-2.9.0.4462")
    assert find_sdk_root(a, env={"SNPE_ROOT": str(b)}) == a
    assert find_sdk_root(None, env={"SNPE_ROOT": str(b)}) == b
    assert find_sdk_root("", env={"SNPE_ROOT": str(b)}) == b


def test_find_sdk_root_errors(tmp_path):
    with pytest.raises(ToolError, match="pass --snpe-root .* or set SNPE_ROOT"):
        find_sdk_root(None, env={})
    with pytest.raises(ToolError, match=r"\(SNPE_ROOT\) does not exist"):
        find_sdk_root(None, env={"SNPE_ROOT": str(tmp_path / "nope")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ToolError, match="not an SNPE SDK root"):
        find_sdk_root(tmp_path / "empty", env={})


def test_version_from_folder_names(tmp_path):
    assert detect_version(make_sdk(tmp_path, "snpe-2.9.0.4462")).as_tuple() == (2, 9, 0, 4462)
    qairt = tmp_path / "qairt"
    qairt.mkdir()
    assert detect_version(make_sdk(qairt, "2.22.6.240515")) == SdkVersion(2, 22, 6, 240515)
    assert detect_version(make_sdk(tmp_path, "v2.12.0.230626")) == SdkVersion(2, 12, 0, 230626)


def test_version_from_sdk_yaml_and_release_notes(tmp_path):
    root = make_sdk(tmp_path, "sdk_a")
    (root / "sdk.yaml").write_text("name: qairt\nversion: 2.26.0.240828\n")
    assert detect_version(root) == SdkVersion(2, 26, 0, 240828)
    root = make_sdk(tmp_path, "sdk_b")
    (root / "ReleaseNotes.txt").write_text("SNPE SDK\n\nSNPE is a software development kit.\n\nSNPE 2.5.0\n")
    assert detect_version(root) == SdkVersion(2, 5, 0, 0)


def test_version_unknown_then_from_tool(tmp_path):
    root = make_sdk(tmp_path, "sdk_c")
    assert version_from_files(root) is None
    with pytest.raises(ToolError, match="cannot tell the SNPE version"):
        detect_version(root)
    exe = root / "bin" / "x86_64-linux-clang" / "snpe-net-run"
    exe.write_text("#!/bin/sh\necho \"SNPE v2.12.0.230626 ($LD_LIBRARY_PATH)\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    assert detect_version(root, run_tool=True) == SdkVersion(2, 12, 0, 230626)


def test_locate_sdk_with_explicit_version(tmp_path):
    root = make_sdk(tmp_path, "sdk_d")
    sdk = locate_sdk(root, version="2.10.0.4541", env={})
    assert sdk == Sdk(root, SdkVersion(2, 10, 0, 4541))
    assert sdk.tool("snpe-dlc-info") == str(root / "bin" / "x86_64-linux-clang" / "snpe-dlc-info")
    with pytest.raises(ToolError, match="snpe-dlc-info not found"):
        sdk.check_tool("snpe-dlc-info")


@pytest.mark.parametrize("version,target,lib,dsp", [
    ("1.17.0", "aarch64-android-gcc4.9", "lib/aarch64-android-gcc4.9", ("lib/dsp",)),
    ("1.54.2.2899", "aarch64-android-clang6.0", "lib/aarch64-android-clang6.0", ("lib/dsp",)),
    ("2.5.0.4052", "aarch64-android-clang8.0", "lib/aarch64-android-clang8.0", ("lib/dsp",)),
    ("2.9.0.4462", "aarch64-android-clang8.0", "lib/aarch64-android-clang8.0", ("lib/dsp",)),
])
def test_device_target_by_version(version, target, lib, dsp):
    t = device_target(parse_version(version))
    assert (t.target, t.lib_dir, t.bin_dir, t.dsp_dirs) == (target, lib, f"bin/{target}", dsp)


def test_device_target_qairt_hexagon_dirs():
    t = device_target(SdkVersion(2, 22, 6), dsp_archs=("v73", "v75"))
    assert t.target == "aarch64-android" and t.lib_dir == "lib/aarch64-android"
    assert t.dsp_dirs == ("lib/hexagon-v73/unsigned", "lib/hexagon-v75/unsigned")
    assert "lib/hexagon-v68/unsigned" in device_target(SdkVersion(2, 10, 0)).dsp_dirs


def populate(root: Path, target: str, libs, dsp_dirs) -> None:
    (root / "bin" / target).mkdir(parents=True, exist_ok=True)
    (root / "bin" / target / "snpe-net-run").write_bytes(b"\x7fELF")
    (root / "lib" / target).mkdir(parents=True, exist_ok=True)
    for so in libs:
        (root / "lib" / target / so).write_bytes(b"so")
    for d, files in dsp_dirs.items():
        (root / d).mkdir(parents=True, exist_ok=True)
        for so in files:
            (root / d / so).write_bytes(b"skel")


def test_resolve_device_target_and_artifacts_qairt(tmp_path):
    root = make_sdk(tmp_path, "2.22.6.240515")
    populate(root, "aarch64-android", ["libSNPE.so", "libSnpeHtpV73Stub.so", "libc++_shared.so"],
             {"lib/hexagon-v73/unsigned": ["libSnpeHtpV73Skel.so"]})
    sdk = Sdk(root, SdkVersion(2, 22, 6, 240515))
    t = resolve_device_target(sdk)
    assert t.target == "aarch64-android" and t.dsp_dirs == ("lib/hexagon-v73/unsigned",)
    arts = device_artifacts(sdk, t)
    assert arts[0] == (root / "bin/aarch64-android/snpe-net-run", "bin/snpe-net-run")
    assert sorted(dest for _, dest in arts[1:]) == [
        "lib/libSNPE.so", "lib/libSnpeHtpV73Skel.so", "lib/libSnpeHtpV73Stub.so", "lib/libc++_shared.so"]


def test_resolve_device_target_falls_back_to_what_exists(tmp_path):
    root = make_sdk(tmp_path, "sdk_e")
    populate(root, "aarch64-android-clang8.0", ["libSNPE.so"], {"lib/dsp": ["libSnpeDspV66Skel.so"]})
    sdk = Sdk(root, SdkVersion(2, 10, 0))  # expected aarch64-android, the tree has the 2.0-2.9 layout
    t = resolve_device_target(sdk)
    assert t.target == "aarch64-android-clang8.0" and t.dsp_dirs == ("lib/dsp",)
    empty = Sdk(make_sdk(tmp_path, "sdk_f"), SdkVersion(1, 54, 2))
    with pytest.raises(ToolError, match="aarch64-android-clang6.0/snpe-net-run"):
        resolve_device_target(empty)


def test_env_default_is_process_environment(tmp_path, monkeypatch):
    root = make_sdk(tmp_path, "snpe-2.9.0.4462")
    monkeypatch.setenv("SNPE_ROOT", str(root))
    assert locate_sdk().version == SdkVersion(2, 9, 0, 4462)
    assert os.environ["SNPE_ROOT"] == str(root)
