"""Fault probe, adb options (issue 12 item 9, validation): a bad port is one line, no traceback."""

from __future__ import annotations

import pytest

from tests.cli.faults import cli, one_line_error


@pytest.mark.parametrize("port", ["70000", "-1", "0", "abc"])
def test_bad_adb_port(port):
    one_line_error(cli("devices", f"--adb-port={port}"), "--adb-port", "1-65535", code=2)


def test_bad_adb_port_in_the_environment():
    one_line_error(cli("devices", env={"ANDROID_ADB_SERVER_PORT": "abc"}), "ANDROID_ADB_SERVER_PORT", "'abc'")
