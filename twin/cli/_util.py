"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from twin.cli.store_target import StoreTarget
from twin.errors import DataIntegrityError, DataMissingError, TwinError


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


# -- input files ------------------------------------------------------------------------------------
# A wrong input file gets one line naming the file and what was expected, never a library's
# traceback or its hints (xarray's "installed IO backends", GDAL's format list). Commands declare
# ``type=InputPath("flood_run")``; the checks are cheap sniffs (magic bytes, a header, the CRS)
# made before any heavy work, and the library still reports anything deeper with its own error.

NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")
SQLITE_MAGIC = b"SQLite format 3\x00"


class InputRejected(Exception):
    """Why a path is not the input expected (a short phrase, without the path).

    ``missing`` marks a part that is absent (a run folder without flood.nc) rather than wrong.
    """

    def __init__(self, why: str, *, missing: bool = False) -> None:
        super().__init__(why)
        self.missing = missing


def _head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError as exc:
        raise InputRejected(f"cannot read it ({exc.strerror or exc})") from exc


def _first_line(exc: BaseException, limit: int = 160) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _check_flood_nc(path: Path) -> Path:
    if path.is_dir():
        if not (path / "flood.nc").is_file():
            raise InputRejected("the folder holds no flood.nc", missing=True)
        path = path / "flood.nc"
    if not _head(path, 8).startswith(NETCDF_MAGIC):
        raise InputRejected("not a NetCDF file")
    import xarray as xr

    try:
        with xr.open_dataset(path) as ds:
            missing = [v for v in ("max_depth", "arrival_time") if v not in ds]
            have = sorted(map(str, ds.data_vars))
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not this input"
        raise InputRejected(f"cannot be read ({_first_line(exc)})") from exc
    if missing:
        raise InputRejected(f"no {' or '.join(map(repr, missing))} variable (it has {have[:8]}"
                            f"{' …' if len(have) > 8 else ''})")
    return path


def _check_raster(path: Path) -> Path:
    import warnings

    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NotGeoreferencedWarning: reported below as "no CRS"
            with rasterio.open(path) as src:
                crs, count = src.crs, src.count
    except RasterioIOError as exc:
        raise InputRejected("not a raster GDAL can read") from exc
    if count < 1:
        raise InputRejected("it has no band")
    if crs is None:
        raise InputRejected("it has no CRS (georeference it first, e.g. gdal_edit.py -a_srs EPSG:4326 FILE)")
    return path


def _check_text_feed(path: Path) -> Path:
    n = 65536
    head = _head(path, n)
    if b"\x00" in head:
        raise InputRejected("it holds binary data, not text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not (len(head) == n and exc.start >= n - 3):  # else: a character cut by the window
            raise InputRejected("it holds binary data, not UTF-8 text") from exc
    return path


def _check_store(path: Path) -> Path:
    from twin.store import DB_NAME

    db = path / DB_NAME
    if not db.is_file():
        raise InputRejected(f"the folder holds no {DB_NAME}", missing=True)
    if not _head(db, 16).startswith(SQLITE_MAGIC):
        raise InputRejected(f"its {DB_NAME} is not an SQLite database")
    return path


def _check_toml(path: Path) -> Path:
    import tomllib

    try:
        tomllib.loads(_head(path, 16 * 2**20).decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputRejected(f"not TOML ({_first_line(exc)})") from exc
    return path


def _no_check(path: Path) -> Path:
    return path


@dataclass(frozen=True)
class InputKind:
    """What a command expects of an input path: its description, file or folder, a content check."""

    what: str
    file_ok: bool = True
    dir_ok: bool = False
    must_exist: bool = True
    check: Callable[[Path], Path] = _no_check


INPUT_KINDS: dict[str, InputKind] = {
    "flood_run": InputKind("a flood run's NetCDF (flood.nc written by `twin flood run`, or its folder)",
                           dir_ok=True, check=_check_flood_nc),
    "dem": InputKind("a DEM raster with a CRS (GeoTIFF, .hgt, ...; elevation in m)", check=_check_raster),
    "replay": InputKind("a recorded sensor feed (CSV or JSON lines)", check=_check_text_feed),
    "store": InputKind("a twin store (the folder `twin bridge run --store` writes)", file_ok=False,
                       dir_ok=True, check=_check_store),
    "store_dir": InputKind("a twin store folder (created when missing)", file_ok=False, dir_ok=True,
                           must_exist=False),
    "alerts": InputKind("an alert thresholds TOML (like hardware_bridge/fusion/alerts.toml)",
                        check=_check_toml),
}


def check_input(path: str | os.PathLike, kind: str) -> Path:
    """``path`` checked as the input ``kind`` of :data:`INPUT_KINDS` (a folder resolved to its file).

    Raises
    ------
    DataMissingError
        The path does not exist (or a run folder holds no flood.nc).
    DataIntegrityError
        It exists but is not what ``kind`` expects; the one-line message names the
        path, what was expected and why, e.g. "notadem.tif is not a flood run's
        NetCDF (...): not a NetCDF file".
    """
    spec = INPUT_KINDS[kind]
    p = Path(path)
    if not p.exists():
        if not spec.must_exist and not p.is_symlink():
            return p
        raise DataMissingError(f"{p} does not exist: expected {spec.what}")
    try:
        if p.is_dir() and not spec.dir_ok:
            raise InputRejected("it is a folder")
        if not p.is_dir() and not spec.file_ok:
            raise InputRejected("it is a file, not a folder")
        return spec.check(p)
    except InputRejected as why:
        cls = DataMissingError if why.missing else DataIntegrityError
        raise cls(f"{p} is not {spec.what}: {why}") from why.__cause__


def one_line(err: BaseException) -> str:
    """``"ErrorClass: message"`` on one line (line breaks of the message become spaces)."""
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


class InputPath(click.ParamType):
    """A click parameter type for an input path of ``kind`` (see :func:`check_input`).

    A wrong path is a one-line ``Error: ...`` (exit 1), without the usage text that
    ``click.Path`` prints, so every command answers a wrong input file the same way.
    """

    name = "path"

    def __init__(self, kind: str) -> None:
        if kind not in INPUT_KINDS:
            raise ValueError(f"input kind {kind!r} unknown; known: {sorted(INPUT_KINDS)}")
        self.kind = kind

    def convert(self, value, param, ctx) -> Path:
        try:
            return check_input(value, self.kind)
        except TwinError as err:
            raise click.ClickException(one_line(err)) from err

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type="file" if INPUT_KINDS[self.kind].file_ok else "dir")]


class ExistingFile(click.ParamType):
    """An existing input file whose content the model checks itself (before the run).

    A missing path or a folder is a one-line error naming the argument (``FILE``) or
    option and the path, and what was expected (``what``); unlike :class:`InputPath`
    it does not look inside the file.
    """

    name = "path"

    def __init__(self, what: str) -> None:
        self.what = what

    def convert(self, value, param, ctx) -> Path:
        p = Path(value).expanduser()
        if not p.is_file():
            why = "is a folder" if p.is_dir() else "does not exist"
            name = "FILE" if param is None or isinstance(param, click.Argument) else param.opts[0]
            raise click.ClickException(f"{name}: {p} {why}: expected {self.what}")
        return p


def run_output_options(files: str, *, map_help: str = "Also write map.html (offline).") -> Callable:
    """The output options every run command shares: ``--out`` (required), ``--report/--no-report``,
    ``--map/--no-map``, ``--json`` and ``--store``, passed as ``out_dir``, ``with_report``,
    ``with_map``, ``as_json`` and ``store_dir`` (open it with :func:`run_store`).

    ``files`` lists what the run writes into ``--out`` (its help text).
    """
    options = [
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
                     help=f"Output folder: {files}."),
        click.option("--report/--no-report", "with_report", default=True, show_default=True,
                     help="Also write report.html (offline)."),
        click.option("--map/--no-map", "with_map", default=True, show_default=True, help=map_help),
        click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout."),
        click.option("--store", "store_dir", type=StoreTarget(), default=None,
                     metavar="DIR|URL", help="Also record the run and its events in this twin store (a folder "
                     "or a postgresql:// URL: the one "
                     "`twin serve --store` shows), tied to the run."),
    ]

    def decorate(f: Callable) -> Callable:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


@contextmanager
def run_store(store_dir: Path | str | None):
    """The twin store at ``store_dir`` for a run's events (``--store``), closed afterwards; None without one."""
    if store_dir is None:
        yield None
        return
    from twin.store import Store

    store = Store.open(store_dir)
    try:
        yield store
    finally:
        store.close()


class PhaseBar:
    """A rich progress bar on stderr for a pipeline run: the phase, or what ``describe(p)`` makes of a
    progress dict (the model's own stage, cells, simulated time...), the fraction done and the time taken."""

    def __init__(self, title: str, describe: Callable[[dict], str | None] | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._p = Progress(TextColumn(f"[bold]{title}[/bold]"), BarColumn(), TextColumn("{task.fields[what]}"),
                           TimeElapsedColumn(), console=Console(stderr=True))
        self._describe = describe
        self._task = None

    def __enter__(self) -> PhaseBar:
        self._p.start()
        self._task = self._p.add_task("run", total=1.0, what="")
        return self

    def __exit__(self, *exc) -> None:
        self._p.stop()

    def update(self, p: dict) -> None:
        if p.get("message"):
            self._p.console.print(p["message"])
        what = (self._describe(p) if self._describe is not None else None) or p.get("phase", "")
        self._p.update(self._task, completed=p.get("fraction", 0.0), what=what)

