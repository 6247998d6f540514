"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

import click

from twin.errors import TwinError


@contextmanager
def user_errors():
    """Turn engine errors into a clean one-line CLI error (exit 1) instead of a traceback."""
    try:
        yield
    except TwinError as err:
        raise click.ClickException(f"{type(err).__name__}: {err}") from err


@contextmanager
def status(message: str):
    """A spinner on stderr while long work runs (silent when stderr is not a terminal)."""
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(message):
        yield


def echo_json(obj) -> None:
    """Print JSON to stdout (UTF-8, non-ASCII kept)."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")
