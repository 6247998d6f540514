"""The ``--store`` parameter of the commands: a store directory (SQLite) or a ``postgresql://`` URL.

``StoreTarget(kind)`` checks a directory as ``InputPath(kind)`` does (``kind=None``: only expands ``~``, for
a store the command creates) and passes a URL through unchanged as a string (a :class:`~pathlib.Path` would
fold its ``//``). :func:`twin.store.open_store` and :meth:`twin.store.Store.open` take either.
"""

from __future__ import annotations

from pathlib import Path

import click


class StoreTarget(click.ParamType):
    """A store directory or a ``postgresql://user@host/db[?files=DIR]`` URL."""

    name = "store"

    def __init__(self, kind: str | None = None) -> None:
        self.kind = kind

    def convert(self, value, param, ctx) -> Path | str:
        from twin.store import is_store_url  # here: importing the CLI stays cheap

        if isinstance(value, str) and is_store_url(value):
            return value
        if self.kind is None:
            return Path(value).expanduser()
        from twin.cli._util import InputPath

        return InputPath(self.kind).convert(value, param, ctx)


def store_files_dir(target: Path | str) -> Path:
    """The directory next to a store for its files (runs, verification): the store directory itself, or the
    ``?files=`` directory of a PostgreSQL URL (:func:`twin.store_pg.split_url`)."""
    from twin.store import is_store_url

    if is_store_url(target):
        from twin.store_pg import split_url

        return split_url(str(target))[1]
    return Path(target)


def shown_target(target: Path | str | None) -> str:
    """A store target as commands print it: a URL without its password (``postgresql://u:***@host/db``)."""
    from urllib.parse import urlsplit, urlunsplit

    from twin.store import is_store_url

    text = str(target)
    if not is_store_url(target):
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


def password_to_env(target: Path | str) -> Path | str:
    """A store URL without its password, which goes to ``PGPASSWORD`` (libpq reads it there) instead.

    For commands that hand the store on to readers opened from :attr:`twin.store.Store.db_path` (the URL with
    its password masked, so they could not log in): ``twin serve``'s live view. A directory, or a URL
    without a password, is returned unchanged.
    """
    import os
    from urllib.parse import unquote, urlsplit, urlunsplit

    from twin.store import is_store_url

    if not is_store_url(target):
        return target
    parts = urlsplit(str(target))
    if parts.password is None:
        return target
    os.environ["PGPASSWORD"] = unquote(parts.password)
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@", 1)))
