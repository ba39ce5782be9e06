"""Phones over adb: device listing, one-device sessions and a multi-phone scheduler.

Only adbutils is used to reach devices (through the adb server). See ``docs/phones.md``.
"""

from profiler.phone.adb.scheduler import ShardReport, device_name, run_sharded
from profiler.phone.adb.session import (DEFAULT_TIMEOUT_S, GOVERNOR_PATH, CoolResult, DeviceInfo, StuckDeviceError,
                                     is_loopback, parse_server, resolve_servers, server_name,
                                     DeviceSession, DeviceState, PushReport, ShellResult,
                                     describe_listing, device_info_from_props, list_devices,
                                     open_client, open_session, parse_device_state, parse_getprop)

__all__ = [
    "CoolResult", "DEFAULT_TIMEOUT_S", "DeviceInfo", "DeviceSession", "DeviceState",
    "GOVERNOR_PATH", "PushReport", "ShardReport", "ShellResult", "describe_listing",
    "device_info_from_props", "device_name", "list_devices", "open_client", "open_session",
    "parse_device_state", "parse_getprop", "run_sharded", "StuckDeviceError", "is_loopback",
    "parse_server", "resolve_servers", "server_name",
]
