"""Phone target tests: fake SNPE SDK tools + emulated phones behind the loopback adb server."""
