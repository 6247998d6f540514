"""One exception hierarchy for the whole engine.

Every error the engine raises on purpose derives from :class:`TwinError`.
Where a builtin fits, the class inherits it too (as rasterio does), so a
caller may catch either ``TwinError`` or e.g. ``FileNotFoundError``.
Messages say what went wrong, name the field and value, and tell the user
what to do next.
"""

from __future__ import annotations


class TwinError(Exception):
    """Root of every error raised by Shenzhen Twin."""


class ConfigError(TwinError, ValueError):
    """A setting, manifest entry or command option is invalid."""


class DataError(TwinError):
    """Input data cannot be used."""


class DataMissingError(DataError, FileNotFoundError):
    """A data file the engine needs is not there."""


class DataIntegrityError(DataError, ValueError):
    """A data file exists but its content is wrong (checksum, size, format)."""


class FetchError(DataError, OSError):
    """Downloading data failed."""


class CRSError(TwinError, ValueError):
    """An unknown, missing or mismatched coordinate reference system."""


class GridError(TwinError, ValueError):
    """A raster grid is malformed or two grids do not match."""


class ValidationError(TwinError, ValueError):
    """A value failed validation; the message names the field and the value."""


class GraphError(TwinError, ValueError):
    """A road graph cannot be built or routed."""


class StoreError(TwinError, OSError):
    """The twin's store cannot be read or written."""


class SnapshotError(StoreError):
    """A snapshot is missing, corrupt or does not match the state."""


class ClockError(TwinError, ValueError):
    """The simulation clock was asked to do something impossible (e.g. go back)."""


class BrowserError(TwinError, RuntimeError):
    """Headless Chromium could not be started or driven."""


class RequestError(ValidationError):
    """A run request a model cannot run, found before it starts; names the ``field`` and ``value``.

    Raised by a run kind's pre-check (:meth:`twin.runkinds.RunKind.check`), so a caller
    (the console's ``POST /api/runs``, ``twin <kind> run``) can refuse the request and
    point at the field to change.
    """

    def __init__(self, message: str, *, field: str, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class RunCancelled(TwinError):
    """A run was cancelled while in progress (it stops at its next progress report)."""


def describe_problems(exc, source: str) -> str:
    """One message listing every problem of a pydantic ``ValidationError`` ``exc``: its path in the
    file, the value and what is allowed (a building file, a fire building file...)."""
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] in ("model_type", "missing") or "input" not in e or isinstance(e["input"], dict):
            lines.append(f"{loc}: {msg}")
        else:
            lines.append(f"{loc} = {e['input']!r}: {msg}")
    return f"{source}: {len(lines)} problem(s): " + "; ".join(lines)
