"""The --store parameter type: a directory is checked like any input path, a PostgreSQL URL passes unchanged."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from twin.cli.store_target import StoreTarget
from twin.store import Store


def test_a_url_passes_unchanged_and_a_directory_is_checked(tmp_path):
    url = "postgresql://twin@db.example:5432/twin?files=/srv/twin"
    assert StoreTarget("store").convert(url, None, None) == url  # a Path would fold the //
    assert StoreTarget().convert(str(tmp_path / "new"), None, None) == tmp_path / "new"
    with pytest.raises(click.ClickException, match="holds no twin.sqlite"):
        StoreTarget("store").convert(str(tmp_path), None, None)
    Store.open(tmp_path).close()
    assert StoreTarget("store").convert(str(tmp_path), None, None) == Path(tmp_path)
