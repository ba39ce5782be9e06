"""Fault probe, adb options (issue 12 item 9, validation): a bad port is one line, no traceback."""

from __future__ import annotations

import pytest

from tests.cli.faults import cli, one_line_error


@pytest.mark.parametrize("port", ["70000", "-1", "0", "abc"])
def test_bad_adb_port(port):
    one_line_error(cli("devices", f"--adb-port={port}"), "--adb-port", "1-65535", code=2)


def test_bad_adb_port_in_the_environment():
    one_line_error(cli("devices", env={"ANDROID_ADB_SERVER_PORT": "abc"}), "ANDROID_ADB_SERVER_PORT", "'abc'")


@pytest.mark.parametrize("value", ["nohost", "h:0", "h:70000", ":5037", "h:abc"])
def test_bad_adb_server(value):
    for cmd in (["devices"], ["clean", "--device", "X"]):
        one_line_error(cli(*cmd, f"--adb-server={value}"), "--adb-server", repr(value), "HOST:PORT", code=2)


def test_bad_adb_servers_in_the_environment():
    one_line_error(cli("devices", env={"PROFILER_ADB_SERVERS": "127.0.0.1:5037,oops"}),
                   "PROFILER_ADB_SERVERS", "'oops'", code=2)
