"""The --store parameter type: a directory is checked like any input path, a PostgreSQL URL passes unchanged."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from twin.cli.store_target import StoreTarget, password_to_env, shown_target, store_files_dir
from twin.store import Store


def test_a_url_passes_unchanged_and_a_directory_is_checked(tmp_path):
    url = "postgresql://twin@db.example:5432/twin?files=/srv/twin"
    assert StoreTarget("store").convert(url, None, None) == url  # a Path would fold the //
    assert StoreTarget().convert(str(tmp_path / "new"), None, None) == tmp_path / "new"
    with pytest.raises(click.ClickException, match="holds no twin.sqlite"):
        StoreTarget("store").convert(str(tmp_path), None, None)
    Store.open(tmp_path).close()
    assert StoreTarget("store").convert(str(tmp_path), None, None) == Path(tmp_path)


def test_a_url_is_shown_without_its_password_and_its_files_dir_is_the_files_parameter(tmp_path):
    url = f"postgresql://twin:s3cret@db.example:5432/twin?files={tmp_path}"
    assert shown_target(url) == f"postgresql://twin:***@db.example:5432/twin?files={tmp_path}"
    assert shown_target(tmp_path) == str(tmp_path) and shown_target("postgresql://db/x") == "postgresql://db/x"
    assert store_files_dir(url) == tmp_path.resolve() and store_files_dir(tmp_path) == tmp_path


def test_a_urls_password_moves_to_pgpassword_for_readers_that_reopen_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "old")  # restored after the test
    assert password_to_env("postgresql://twin:p%40ss@db:5432/twin?files=/srv") == "postgresql://twin@db:5432/twin?files=/srv"
    import os

    assert os.environ["PGPASSWORD"] == "p@ss"
    assert password_to_env(tmp_path) == tmp_path and password_to_env("postgresql://db/x") == "postgresql://db/x"
