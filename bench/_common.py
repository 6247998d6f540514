"""Shared helpers for the benchmarks in ``bench/``.

* :func:`time_call` - wall-clock timing with warm-up and repeats (median, min);
* :func:`machine_info` - CPU, cores, numba threads and library versions;
* :func:`stream_triad` - STREAM-triad memory bandwidth with numba at a given
  thread count, the roofline that memory-bound kernels are compared with;
* :func:`set_threads` - numba thread count, clamped to what numba allows;
* :func:`print_table` - a table with ``rich`` when present, plain text otherwise;
* :func:`write_results` - JSON to ``bench/results/<name>-<UTC timestamp>.json``.

Benchmarks are scripts (``bench/bench_*.py``), never collected by pytest
(its testpaths is ``tests/``). Import this module from a benchmark with the
script's folder on ``sys.path`` (it is, when the script is run as a file).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import njit, prange

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


# --------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------
@dataclass
class Timing:
    """Wall-clock times of repeated calls, in seconds."""

    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan

    @property
    def min(self) -> float:
        return min(self.times) if self.times else math.nan

    @property
    def n(self) -> int:
        return len(self.times)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "min_s": self.min, "n": self.n, "times_s": self.times}


def time_call(
    fn: Callable[[], Any],
    *,
    repeat: int = 5,
    warmup: int = 1,
    max_seconds: float | None = 20.0,
    min_repeat: int = 1,
) -> Timing:
    """Time ``fn()`` ``repeat`` times after ``warmup`` untimed calls.

    The warm-up calls absorb numba compilation (or cache loading) and first
    touch of the memory. With ``max_seconds``, repeats stop once that much
    time has been spent and at least ``min_repeat`` calls were timed, so slow
    references do not dominate a run.

    Returns
    -------
    Timing
        ``times`` (s) of each timed call; ``median`` and ``min`` derived.
    """
    for _ in range(warmup):
        fn()
    t = Timing()
    spent = 0.0
    for _ in range(max(repeat, min_repeat)):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        t.times.append(dt)
        spent += dt
        if max_seconds is not None and spent >= max_seconds and t.n >= min_repeat:
            break
    return t


# --------------------------------------------------------------------------
# Threads and machine
# --------------------------------------------------------------------------
def max_threads() -> int:
    """The largest thread count numba accepts (``NUMBA_NUM_THREADS``)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def set_threads(n: int) -> int:
    """Set numba's thread count to ``min(n, max_threads())``; return the count set."""
    n = max(1, min(int(n), max_threads()))
    numba.set_num_threads(n)
    return n


def thread_counts(requested: Sequence[int]) -> list[int]:
    """The requested thread counts that this machine supports, sorted, unique."""
    return sorted({n for n in requested if 1 <= n <= max_threads()}) or [1]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or None
    except Exception:
        return None


def cpu_pressure() -> dict[str, float] | None:
    """Linux PSI CPU pressure: % of time some runnable task waited for a CPU (avg10/60/300)."""
    try:
        with open("/proc/pressure/cpu", encoding="utf-8") as fh:
            line = fh.readline()
    except OSError:
        return None
    out = {}
    for part in line.split()[1:]:
        key, _, val = part.partition("=")
        if key.startswith("avg"):
            out[key] = float(val)
    return out or None


def cpu_stall_us() -> int | None:
    """Linux PSI total CPU stall (microseconds some runnable task waited), or None."""
    try:
        with open("/proc/pressure/cpu", encoding="utf-8") as fh:
            line = fh.readline()
    except OSError:
        return None
    for part in line.split()[1:]:
        if part.startswith("total="):
            return int(part[6:])
    return None


def contention_pct(stall_before: int | None, seconds: float) -> float | None:
    """% of ``seconds`` during which some task waited for a CPU (from PSI stall totals)."""
    stall_after = cpu_stall_us()
    if stall_before is None or stall_after is None or seconds <= 0:
        return None
    return 100.0 * (stall_after - stall_before) / 1e6 / seconds


def busy_warning(load_threshold: float = 0.5, pressure_threshold: float = 5.0) -> str | None:
    """A warning when CPU pressure (Linux PSI avg10) or, without PSI, the load average is high."""
    psi = cpu_pressure()
    if psi is not None:
        waiting = psi.get("avg10", 0.0)
        if waiting <= pressure_threshold:
            return None
        what = f"CPU pressure avg10 {waiting:.0f}%"
    else:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if load <= load_threshold:
            return None
        what = f"load average {load:.2f}"
    return (
        f"machine busy before the run ({what}): other processes share the CPU, timings "
        f"and thread speed-ups may be noisy; compare min with median"
    )


def machine_info() -> dict[str, Any]:
    """CPU model, core count, numba threading, library versions and load average."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel function has run yet
        layer = None
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numba_num_threads": max_threads(),
        "numba_threading_layer": layer,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "git": _git_commit(),
        "loadavg_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cpu_pressure_pct": cpu_pressure(),
    }
    for mod in ("numpy", "numba", "llvmlite", "scipy", "xarray", "rasterio"):
        info[mod] = _version(mod)
    return info


# --------------------------------------------------------------------------
# Memory bandwidth (STREAM triad)
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True, parallel=True)
def _triad(a, b, c, s):
    for i in prange(a.size):
        a[i] = b[i] + s * c[i]


@dataclass
class Bandwidth:
    """STREAM-triad bandwidth at one thread count (bytes counted: 24 per element)."""

    threads: int
    n_elements: int
    best_gbs: float
    median_gbs: float
    timing: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stream_triad(threads: int, total_mb: float = 400.0, repeat: int = 10) -> Bandwidth:
    """Memory bandwidth by the STREAM triad ``a[i] = b[i] + s * c[i]`` (numba prange).

    Three float64 arrays of ``total_mb / 3`` MB each (far beyond the caches
    at the default 400 MB). Bytes moved per element are counted as in
    STREAM: 2 reads + 1 write = 24 B, without the write-allocate read.

    Parameters
    ----------
    threads : int
        numba thread count (clamped to :func:`max_threads`).
    total_mb : float
        Size of the three arrays together, MB (10^6 bytes).
    repeat : int
        Timed repetitions after one warm-up; STREAM reports the best.

    Returns
    -------
    Bandwidth
        ``best_gbs`` (from the fastest run) and ``median_gbs``, GB/s (10^9 B/s).
    """
    prev = numba.get_num_threads()
    n_thr = set_threads(threads)
    try:
        n = max(1, int(total_mb * 1e6 / 24))
        a = np.zeros(n)
        b = np.full(n, 1.0)
        c = np.full(n, 2.0)
        t = time_call(lambda: _triad(a, b, c, 3.0), repeat=repeat, warmup=1, max_seconds=None)
    finally:
        numba.set_num_threads(prev)
    nbytes = 24.0 * n
    return Bandwidth(
        threads=n_thr,
        n_elements=n,
        best_gbs=nbytes / t.min / 1e9,
        median_gbs=nbytes / t.median / 1e9,
        timing=t.as_dict(),
    )


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------
def fmt(value: Any, digits: int = 3) -> str:
    """Short text for a table cell: '-' for None/NaN, 3 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0.0:
            return "0"
        mag = abs(value)
        if mag >= 10**digits:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if mag >= 1e-3 else f"{value:.2e}"
    return str(value)


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], notes: Sequence[str] = ()
) -> None:
    """Print a table (rich when importable, aligned plain text otherwise) and notes under it."""
    cells = [[fmt(v) for v in row] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None  # noqa: N806
    if Console is not None:
        table = Table(title=title, show_lines=False)
        for i, col in enumerate(columns):
            table.add_column(col, justify="left" if i < 3 else "right", no_wrap=True)
        for row in cells:
            table.add_row(*row)
        # Wide enough for every column (rich would otherwise ellipsise them in a pipe).
        need = sum(
            max(len(c), *(len(r[i]) for r in cells)) if cells else len(c)
            for i, c in enumerate(columns)
        )
        console = Console(width=max(Console().width, need + 3 * len(columns) + 1))
        console.print(table)
        for note in notes:
            console.print(f"  * {note}", highlight=False, soft_wrap=True)
        return
    widths = [
        max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)
    ]
    print(title)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(
            "  ".join(
                v.rjust(w) if i >= 3 else v.ljust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for note in notes:
        print(f"  * {note}")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_results(
    name: str, payload: dict[str, Any], out_dir: str | os.PathLike | None = None
) -> Path:
    """Write ``payload`` as JSON to ``<out_dir>/<name>-<UTC timestamp>.json``.

    ``out_dir`` defaults to ``bench/results/`` (git-ignored). NaN becomes
    ``null`` so the file is strict JSON.
    """
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out / f"{name}-{stamp}.json"

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    text = json.dumps(clean(payload), indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def start_pg_server():
    """A throw-away PostgreSQL server (``tests/pg_server.py``: Debian's binaries, run as ``postgres`` when root) for
    the benchmarks on the PostgreSQL store; ``new_database()`` gives a URL, ``stop()`` removes it. Exits with a
    message when PostgreSQL is not installed (give the benchmark ``--pg-url`` instead)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "pg_server.py"
    spec = importlib.util.spec_from_file_location("bench_pg_server", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    bin_dir = module.find_pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL not installed: apt-get install postgresql, or give --pg-url")
    return module.PgServer(bin_dir).start()


def on_both_backends(run_backend: Callable[[str, Any, Any], dict], args: Any) -> list[dict]:
    """``[run_backend("sqlite", <tmp>/sqlite, args), run_backend("postgresql", <url>?files=<tmp>/pgfiles, args)]``:
    the URL is ``args.pg_url`` or a fresh database of a throw-away server (:func:`start_pg_server`), removed
    with the temporary directory at the end."""
    import tempfile

    results, server = [], None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results.append(run_backend("sqlite", Path(tmp) / "sqlite", args))
            url = args.pg_url
            if url is None:
                server = start_pg_server()
                url = server.new_database()
            results.append(run_backend("postgresql", f"{url}?files={Path(tmp) / 'pgfiles'}", args))
        finally:
            if server is not None:
                server.stop()
    return results
