"""User-facing errors. The CLI prints ``str(err)`` on one line and exits non-zero."""


class ProfilerError(Exception):
    """Base of every error caused by user input or the environment (never a bug)."""

    exit_code = 2


class SpaceError(ProfilerError):
    """An invalid search-space file."""


class ManifestError(ProfilerError):
    """A missing or invalid models directory / manifest.json."""


class ResultsError(ProfilerError):
    """A results store that is corrupt, of a newer version, or does not match the session."""


class StoreFullError(ResultsError):
    """A results store could not be appended to (disk full); what is stored is complete."""


class Interrupted(ProfilerError, KeyboardInterrupt):
    """Ctrl-C during a bench session: the message says what the store kept (still a
    ``KeyboardInterrupt`` for callers that stop on one)."""

    exit_code = 130


class TableError(ProfilerError):
    """A latency table that is invalid or lacks a module/runtime being looked up."""


class FitError(ProfilerError):
    """Not enough or inconsistent data to fit an estimator."""


class ToolError(ProfilerError):
    """An external tool (SNPE SDK binary, docker, ...) is missing or failed."""


class DeviceError(ProfilerError):
    """An adb device is missing, vanished or misbehaved."""
