# A package, so that this directory's conftest.py is imported as ``device.conftest`` and does
# not replace the top-level ``conftest`` module that tests/test_*.py import names from.
