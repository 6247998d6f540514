"""The DAS file (NetCDF4) and its ground-truth CSV: write chunk by chunk, read layout, iterate in chunks.

File layout (issue 15's contract): variable ``strain_rate(time, channel)`` float32 with ``units="1/s"``; coordinates
``time`` (float64 s since ``start_time``, the unlimited dimension so a writer appends chunk by chunk) and ``channel``
(int32); ``chainage_m(channel)`` float64; global attributes ``fs_hz``, ``dx_m``, ``line``, ``chainage0_m``,
``direction``, ``start_time`` (ISO 8601 with zone) and ``source``. Written and read with ``netCDF4`` directly
(xarray opens it too) so neither side holds more than one chunk.

**Other formats.** A file that is not a DAS record in this layout (PRODML, Terra15, TDMS, DASDAE, ... : whatever
``dascore`` reads, the optional extra ``pip install 'shenzhen-twin[das]'``) is read through ``dascore.spool(path)``:
each patch transposed to ``(time, distance)``, float32, chunk by chunk; the layout from its steps (``dx_m`` the
distance step in the patch's distance unit, taken as metres; ``fs_hz`` 1 / time step; ``chainage0_m`` the first
distance; no line) and ``start_time`` its first time, in UTC. Without dascore such a file is an error naming the
extra.

Ground truth beside it, ``<stem>.truth.csv``: one row per injected event, train passage or road vehicle with the
columns :data:`TRUTH_COLUMNS` (the contract's eight) followed by :data:`TRUTH_EXTRA` (what a moving source needs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from physics.das_layout import FibreLayout
from twin.errors import DataIntegrityError, DataMissingError, ValidationError

__all__ = [
    "TRUTH_COLUMNS",
    "TRUTH_EXTRA",
    "DasInfo",
    "iter_das",
    "read_das_info",
    "read_das_layout",
    "read_truth",
    "truth_path",
    "write_das",
    "write_truth",
]

VARIABLE = "strain_rate"
LAYOUT_ATTRS = ("fs_hz", "dx_m", "line", "chainage0_m", "direction")
REQUIRED_ATTRS = (*LAYOUT_ATTRS, "start_time", "source")

#: The contract's truth columns, in order.
TRUTH_COLUMNS = ("event_id", "class", "t_start_s", "t_end_s", "channel", "chainage_m", "offset_m", "snr_db")
#: Extra columns after the contract's: where a moving source ends (train, excavation), its speed and length.
TRUTH_EXTRA = ("channel_end", "speed_m_s", "length_m")
_TRUTH_DTYPES = {
    "event_id": "int64", "class": "str", "t_start_s": "float64", "t_end_s": "float64", "channel": "int64",
    "chainage_m": "float64", "offset_m": "float64", "snr_db": "float64", "channel_end": "int64",
    "speed_m_s": "float64", "length_m": "float64",
}


@dataclass(frozen=True)
class DasInfo:
    """What a DAS file holds, without its data.

    Attributes
    ----------
    layout : FibreLayout
    start_time : datetime.datetime
        Time of sample 0 (timezone-aware).
    source : str
    n_time : int
        Samples per channel in the file.
    """

    layout: FibreLayout
    start_time: dt.datetime
    source: str
    n_time: int

    @property
    def duration_s(self) -> float:
        """Length of the record, ``n_time / fs_hz`` (s)."""
        return self.n_time / self.layout.fs_hz


def truth_path(das_path: str | Path) -> Path:
    """The truth CSV beside a DAS file: ``<dir>/<stem>.truth.csv``."""
    p = Path(das_path)
    return p.with_name(p.stem + ".truth.csv")


def _iso_start(start_time: dt.datetime | str) -> str:
    when = dt.datetime.fromisoformat(start_time) if isinstance(start_time, str) else start_time
    if not isinstance(when, dt.datetime) or when.tzinfo is None:
        raise ValidationError(f"start_time = {start_time!r}: give an ISO 8601 time with its zone, "
                              "e.g. 2026-12-04T22:00:00+08:00")
    return when.isoformat()


def _time_chunk(n_channel: int) -> int:
    """Samples per HDF5 chunk along time: about 1 M values (4 MB) per chunk."""
    return int(max(1, min(4096, 1_000_000 // n_channel)))


def write_das(
    path: str | Path,
    layout: FibreLayout,
    chunks: Iterable[np.ndarray],
    start_time: dt.datetime | str,
    source: str,
    *,
    compress: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write a DAS record chunk by chunk (memory bounded by one chunk).

    Parameters
    ----------
    path : str or Path
        The ``.nc`` file to create (overwritten).
    layout : FibreLayout
    chunks : iterable of numpy.ndarray
        Strain rate (1/s), each of shape ``(n_time_i, layout.n_channel)``; cast to float32.
    start_time : datetime or str
        Time of the first sample, timezone-aware (ISO 8601 with zone when a string).
    source : str
        Who made the record, e.g. ``"Shenzhen Twin DAS simulator, seed 7"``.
    compress : bool
        zlib level 1 with byte shuffle (simulated noise shrinks by only ~14 % and writing is ~8x
        slower; off by default).
    progress : callable(int), optional
        Called after each chunk with the number of samples per channel written so far.

    Returns
    -------
    int
        Samples per channel written.
    """
    import netCDF4

    start_iso = _iso_start(start_time)
    path = Path(path)
    n_written = 0
    with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
        nc.createDimension("time", None)
        nc.createDimension("channel", layout.n_channel)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = f"seconds since {start_iso}"
        t.long_name = "time since start_time"
        ch = nc.createVariable("channel", "i4", ("channel",))
        ch[:] = layout.channels
        ch.long_name = "channel number along the fibre"
        ca = nc.createVariable("chainage_m", "f8", ("channel",))
        ca[:] = layout.chainage_m(layout.channels)
        ca.units = "m"
        ca.long_name = f"chainage along {layout.line or 'the line'} (no CRS: the tunnel layer maps it to a point)"
        var = nc.createVariable(VARIABLE, "f4", ("time", "channel"), zlib=compress, complevel=1, shuffle=compress,
                                chunksizes=(_time_chunk(layout.n_channel), layout.n_channel))
        var.units = "1/s"
        var.coordinates = "chainage_m"
        var.long_name = "strain rate along the fibre"
        for key, value in layout.to_attrs().items():
            nc.setncattr(key, value)
        nc.setncattr("start_time", start_iso)
        nc.setncattr("source", source)
        nc.setncattr("Conventions", "CF-1.8")
        for chunk in chunks:
            arr = np.asarray(chunk, dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] != layout.n_channel:
                raise ValidationError(f"chunk shape = {arr.shape}: give (n_time, {layout.n_channel}) arrays, "
                                      "time-major, one column per channel")
            n = arr.shape[0]
            var[n_written:n_written + n, :] = arr
            t[n_written:n_written + n] = np.arange(n_written, n_written + n, dtype=np.float64) / layout.fs_hz
            n_written += n
            if progress is not None:
                progress(n_written)
    return n_written


def _open(path: str | Path):  # -> netCDF4.Dataset
    import netCDF4

    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"DAS file {str(p)!r} not found: give the path of a file written by "
                               "`twin tunnel simulate` (das.nc) or another NetCDF4 DAS record")
    try:
        nc = netCDF4.Dataset(p, "r")
    except OSError as err:
        raise DataIntegrityError(f"DAS file {str(p)!r} is not a readable NetCDF4/HDF5 file ({err}); "
                                 "write it again or check the download") from err
    missing = [a for a in REQUIRED_ATTRS if a not in nc.ncattrs()]
    if VARIABLE not in nc.variables:
        missing.insert(0, f"variable {VARIABLE!r}")
    if missing:
        nc.close()
        raise DataIntegrityError(f"DAS file {str(p)!r} lacks {', '.join(missing)}: it is not a DAS record in "
                                 "the twin's layout (see physics/das_io.py)")
    var = nc.variables[VARIABLE]
    if var.dimensions != ("time", "channel"):
        nc.close()
        raise DataIntegrityError(f"DAS file {str(p)!r}: {VARIABLE} has dimensions {var.dimensions}, "
                                 "expected ('time', 'channel')")
    return nc


def _info(nc, path: str | Path) -> DasInfo:  # nc: netCDF4.Dataset
    var = nc.variables[VARIABLE]
    try:
        layout = FibreLayout(n_channel=var.shape[1], dx_m=float(nc.getncattr("dx_m")),
                             fs_hz=float(nc.getncattr("fs_hz")), line=str(nc.getncattr("line")),
                             chainage0_m=float(nc.getncattr("chainage0_m")),
                             direction=int(nc.getncattr("direction")))
        start = dt.datetime.fromisoformat(str(nc.getncattr("start_time")))
    except (ValidationError, ValueError) as err:
        raise DataIntegrityError(f"DAS file {str(path)!r} has a bad layout attribute: {err}") from err
    return DasInfo(layout=layout, start_time=start, source=str(nc.getncattr("source")), n_time=int(var.shape[0]))


DAS_EXTRA = "pip install 'shenzhen-twin[das]'"


def _dascore_spool(path: str | Path, err: DataIntegrityError):
    """The file's patches through dascore, sorted by start time; ``err`` (why our reader refused it) re-raised with
    what dascore says when it cannot read the file either, or with the extra to install when it is absent."""
    try:
        import dascore
    except ImportError:
        raise DataIntegrityError(f"{err}. Other DAS formats (PRODML, TDMS, Terra15, DASDAE, ...) are read through "
                                 f"dascore, which is not installed: {DAS_EXTRA}") from err
    try:
        patches = sorted(dascore.spool(str(path)), key=lambda q: q.get_coord("time").min())
    except Exception as exc:  # dascore raises its own errors per format: none of them reads it
        raise DataIntegrityError(f"{err}; nor does dascore read it ({type(exc).__name__}: {exc})") from err
    if not patches:
        raise DataIntegrityError(f"{err}; dascore reads it but finds no patch in it")
    for q in patches:
        if set(q.dims) != {"time", "distance"}:
            raise DataIntegrityError(f"DAS file {str(path)!r}: dascore patch dims {q.dims}; expected time and "
                                     "distance")
    return patches


def _dascore_info(path: str | Path, patches: list) -> DasInfo:
    import dascore

    q = patches[0]
    dist, time = q.get_coord("distance"), q.get_coord("time")
    dt_s = float(time.step / np.timedelta64(1, "s")) if np.issubdtype(np.asarray(time.step).dtype,
                                                                        np.timedelta64) else float(time.step)
    t0 = np.datetime64(time.min(), "ns").astype("datetime64[us]").astype(dt.datetime)
    try:
        layout = FibreLayout(n_channel=int(q.shape[q.dims.index("distance")]), dx_m=float(dist.step),
                             fs_hz=1.0 / dt_s, chainage0_m=float(dist.min()))
    except ValidationError as err:
        raise DataIntegrityError(f"DAS file {str(path)!r} (read by dascore) has a bad layout: {err}") from err
    n_time = sum(int(p.shape[p.dims.index("time")]) for p in patches)
    return DasInfo(layout=layout, start_time=t0.replace(tzinfo=dt.UTC),
                   source=f"{Path(path).name} via dascore {dascore.__version__}", n_time=n_time)


def read_das_info(path: str | Path) -> DasInfo:
    """Layout, start time, source and length of a DAS file, without reading its data (other formats: through
    dascore, see the module docstring).

    Raises
    ------
    DataMissingError
        No file at ``path``.
    DataIntegrityError
        Not NetCDF4, or the variable or an attribute of the contract missing or bad, and not a file dascore reads
        (or dascore not installed: the message names the extra).
    """
    try:
        nc = _open(path)
    except DataIntegrityError as err:
        return _dascore_info(path, _dascore_spool(path, err))
    with nc:
        return _info(nc, path)


def read_das_layout(path: str | Path) -> FibreLayout:
    """The :class:`FibreLayout` of a DAS file (see :func:`read_das_info` for the errors)."""
    return read_das_info(path).layout


def iter_das(path: str | Path, chunk_s: float = 1.0) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t0_s, chunk)`` from a DAS file, one chunk in memory at a time.

    Parameters
    ----------
    path : str or Path
    chunk_s : float
        Chunk length (s, > 0); rounded to whole samples (at least one). The last chunk may be shorter.

    Yields
    ------
    t0_s : float
        Time of the chunk's first sample, s since ``start_time``.
    chunk : numpy.ndarray
        float32, shape ``(n_time, n_channel)``, strain rate in 1/s.
    """
    if not np.isfinite(chunk_s) or chunk_s <= 0:
        raise ValidationError(f"chunk_s = {chunk_s!r}: give a chunk length in seconds > 0")
    try:
        nc = _open(path)
    except DataIntegrityError as err:
        yield from _iter_dascore(path, _dascore_spool(path, err), chunk_s)
        return
    with nc:
        info = _info(nc, path)
        var = nc.variables[VARIABLE]
        var.set_auto_mask(False)
        step = max(1, int(round(chunk_s * info.layout.fs_hz)))
        for i0 in range(0, info.n_time, step):
            chunk = np.ascontiguousarray(var[i0:min(i0 + step, info.n_time), :], dtype=np.float32)
            yield i0 / info.layout.fs_hz, chunk


def _iter_dascore(path: str | Path, patches: list, chunk_s: float) -> Iterator[tuple[float, np.ndarray]]:
    """``(t0_s, chunk)`` from dascore patches: time-major float32, t0 from each patch's start."""
    info = _dascore_info(path, patches)
    fs = info.layout.fs_hz
    step = max(1, int(round(chunk_s * fs)))
    t_ref = np.datetime64(patches[0].get_coord("time").min(), "ns")
    for q in patches:
        if int(q.shape[q.dims.index("distance")]) != info.layout.n_channel:
            raise DataIntegrityError(f"DAS file {str(path)!r}: its patches have different channel counts "
                                     f"({q.shape} against {info.layout.n_channel} channels)")
        data = q.transpose("time", "distance").data
        t0 = float((np.datetime64(q.get_coord("time").min(), "ns") - t_ref) / np.timedelta64(1, "s"))
        for i0 in range(0, data.shape[0], step):
            yield t0 + i0 / fs, np.ascontiguousarray(data[i0:i0 + step], dtype=np.float32)


def write_truth(path: str | Path, truth: pd.DataFrame) -> Path:
    """Write the ground-truth table as CSV (contract columns first, then the extra ones that are present)."""
    missing = [c for c in TRUTH_COLUMNS if c not in truth.columns]
    if missing:
        raise ValidationError(f"truth table lacks columns {missing}: give {list(TRUTH_COLUMNS)}")
    cols = [*TRUTH_COLUMNS, *(c for c in TRUTH_EXTRA if c in truth.columns)]
    path = Path(path)
    truth[cols].to_csv(path, index=False, float_format="%.6g")
    return path


def read_truth(path: str | Path) -> pd.DataFrame:
    """Read a truth CSV into a DataFrame with the contract's columns and dtypes (and the extra ones if present).

    Raises
    ------
    DataMissingError
        No file at ``path``.
    DataIntegrityError
        A contract column missing or a value of the wrong type.
    """
    p = Path(path)
    if not p.is_file():
        raise DataMissingError(f"truth file {str(p)!r} not found: it is written beside the DAS file as "
                               "<stem>.truth.csv by `twin tunnel simulate`")
    df = pd.read_csv(p, dtype={"class": str})
    missing = [c for c in TRUTH_COLUMNS if c not in df.columns]
    if missing:
        raise DataIntegrityError(f"truth file {str(p)!r} lacks columns {missing}; expected {list(TRUTH_COLUMNS)}")
    try:
        return df.astype({c: t for c, t in _TRUTH_DTYPES.items() if c in df.columns and t != "str"})
    except (ValueError, TypeError) as err:
        raise DataIntegrityError(f"truth file {str(p)!r} has a value of the wrong type: {err}") from err
