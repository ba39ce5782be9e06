"""Tests against a device-side adbd emulator behind the real adb server."""
