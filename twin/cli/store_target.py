"""The ``--store`` parameter of the commands: a store directory (SQLite) or a ``postgresql://`` URL.

``StoreTarget(kind)`` checks a directory as ``InputPath(kind)`` does (``kind=None``: only expands ``~``, for
a store the command creates) and passes a URL through unchanged as a string (a :class:`~pathlib.Path` would
fold its ``//``). :func:`twin.store.open_store` and :meth:`twin.store.Store.open` take either.
"""

from __future__ import annotations

from pathlib import Path

import click

from twin.store import is_store_url


class StoreTarget(click.ParamType):
    """A store directory or a ``postgresql://user@host/db[?files=DIR]`` URL."""

    name = "store"

    def __init__(self, kind: str | None = None) -> None:
        self.kind = kind

    def convert(self, value, param, ctx) -> Path | str:
        if isinstance(value, str) and is_store_url(value):
            return value
        if self.kind is None:
            return Path(value).expanduser()
        from twin.cli._util import InputPath

        return InputPath(self.kind).convert(value, param, ctx)
