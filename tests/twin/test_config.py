"""How the data directory is chosen."""

import pytest

from twin import config
from twin.errors import DataMissingError, TwinError


def test_env_var_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    assert config.data_dir_source() == "$TWIN_DATA"


def test_dev_checkout_then_user_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("TWIN_DATA", raising=False)
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    assert config.data_dir() == config.user_data_dir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert config.data_dir() == (tmp_path / "shared" / "data").resolve()


def test_require_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(tmp_path))
    with pytest.raises(DataMissingError) as err:
        config.require_file("shenzhen/terrain/x.tif", what="DEM")
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, TwinError)
    for part in ("x.tif", "TWIN_DATA", "twin data fetch shenzhen"):
        assert part in str(err.value)
    (tmp_path / "shenzhen").mkdir()
    (tmp_path / "shenzhen" / "a.txt").write_text("x")
    assert config.require_file("shenzhen/a.txt").read_text() == "x"
