"""Where the engine finds its data.

The data directory is resolved in this order:

1. the ``TWIN_DATA`` environment variable, if set;
2. ``../shared/data`` relative to the current directory, when it exists
   (the layout of a development checkout);
3. the per-user data directory (``platformdirs.user_data_dir("shenzhen-twin")``),
   which is where ``twin data fetch shenzhen`` downloads to.

Code never hard-codes a path into the data: it asks :func:`data_dir` and
:func:`require_file`.
"""

from __future__ import annotations

import os
from pathlib import Path

from twin.errors import DataMissingError

ENV_VAR = "TWIN_DATA"


def user_data_dir() -> Path:
    """The per-user directory that ``twin data fetch`` fills."""
    import platformdirs

    return Path(platformdirs.user_data_dir("shenzhen-twin", appauthor=False)) / "data"


def data_dir() -> Path:
    """The data directory in force (see the module docstring for the order)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    dev = Path.cwd().parent / "shared" / "data"
    if dev.is_dir():
        return dev.resolve()
    return user_data_dir()


def data_dir_source() -> str:
    """Say which rule chose :func:`data_dir` (for ``twin info``)."""
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}"
    if (Path.cwd().parent / "shared" / "data").is_dir():
        return "../shared/data (development checkout)"
    return "user data dir"


def require_file(relpath: str | os.PathLike, what: str = "data file") -> Path:
    """Return ``data_dir()/relpath``, or raise :class:`DataMissingError` saying how to get it."""
    root = data_dir()
    path = root / relpath
    if not path.exists():
        raise DataMissingError(
            f"{what} not found: {path}\n"
            f"The data directory is {root} (chosen by {data_dir_source()}). "
            f"Set {ENV_VAR} to a directory holding '{relpath}', "
            f"or run `twin data fetch shenzhen` to download the public data into {user_data_dir()}."
        )
    return path
