"""Snapshot files: the Datasets of a twin state as groups of one NetCDF4 file, exactly.

A snapshot keeps the static and dynamic Datasets of a
:class:`~twin.state.TwinState` in one NetCDF4 (HDF5) file, groups ``static`` and
``dynamic``, netCDF4 engine, lossless zlib. What netCDF cannot hold exactly is
kept beside it: every variable's and Dataset's attrs (tuples, numpy scalars,
arrays, dicts, datetimes) as tagged JSON in the ``twin_attrs_json`` attribute,
and the dtypes, coordinate names and variable order in ``twin_meta_json``, so
:func:`read_datasets` gives back what :func:`write_datasets` was given. Attrs
netCDF can hold natively are written natively too, for other tools (QGIS, ncdump).

The file is written to a temp file, fsync'ed and renamed, so a crash leaves the
old file or the new one, never half of one; its SHA-256 and size are returned
for the store to record, and :func:`verify_file` checks them before a restore.

The rows that describe a snapshot (clock, sensors, events) live in the store's
database; :class:`twin.store.Store` owns those and calls this module for the file.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.errors import SnapshotError
from twin.files import file_sha256

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from twin.state import TwinState

#: Groups of a snapshot file, in the order they are written.
STATE_GROUPS = ("static", "dynamic")

_SUPPORTED_KINDS = "biuf"  # bool, signed/unsigned int, float


def _encode_attr(value: Any, where: str) -> Any:
    """Tagged-JSON form of an attr value that restores its exact Python/numpy type."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _SUPPORTED_KINDS + "U":
            raise SnapshotError(f"attr {where} is an array of dtype {value.dtype}: not supported")
        return {
            "__ndarray__": value.dtype.str,
            "shape": list(value.shape),
            "data": value.ravel().tolist(),
        }
    if isinstance(value, np.generic):
        if value.dtype.kind not in _SUPPORTED_KINDS + "U":
            raise SnapshotError(f"attr {where}={value!r} has dtype {value.dtype}: not supported")
        return {"__np__": value.dtype.str, "v": value.item()}
    if isinstance(value, int | float):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_attr(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode_attr(v, where) for v in value]
    if isinstance(value, dict):
        return {"__dict__": {str(k): _encode_attr(v, f"{where}.{k}") for k, v in value.items()}}
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise SnapshotError(
        f"attr {where}={value!r} of type {type(value).__name__} cannot be kept in a snapshot; "
        "use str, numbers, tuples, lists, dicts or numpy arrays"
    )


def _decode_attr(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_attr(v) for v in value]
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["data"], dtype=np.dtype(value["__ndarray__"])).reshape(
                value["shape"]
            )
        if "__np__" in value:
            return np.dtype(value["__np__"]).type(value["v"])
        if "__tuple__" in value:
            return tuple(_decode_attr(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: _decode_attr(v) for k, v in value["__dict__"].items()}
        if "__datetime__" in value:
            return datetime.fromisoformat(value["__datetime__"])
    return value


def _decode_attrs(text: str) -> dict[str, Any]:
    return {k: _decode_attr(v) for k, v in json.loads(text).items()}


def _native_attr(value: Any) -> Any | None:
    """The attr as netCDF can hold it natively (for other tools), or None to skip it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return value
    if isinstance(value, tuple | list | np.ndarray):
        arr = np.asarray(value)
        if arr.ndim == 1 and arr.size and arr.dtype.kind in "iuf":
            return arr
    return None


_TWIN_ATTRS = "twin_attrs_json"
_TWIN_META = "twin_meta_json"


def _prepare(ds: xr.Dataset, group: str) -> tuple[xr.Dataset, dict[str, Any]]:
    """Copy of ``ds`` ready for writing (no encodings, native attrs) and its exact-encoding."""
    ds = ds.drop_encoding()
    enc: dict[str, Any] = {}
    meta = {
        "dtypes": {},
        "coords": [str(c) for c in ds.coords],
        "order": [str(v) for v in ds.variables],
    }
    out = ds.copy(deep=False)
    for name, var in ds.variables.items():
        where = f"{group}/{name}"
        if var.dtype.kind not in _SUPPORTED_KINDS:
            raise SnapshotError(
                f"variable {where} has dtype {var.dtype}; snapshots keep bool, integer and "
                "float variables only — convert it (e.g. to codes) first"
            )
        meta["dtypes"][str(name)] = var.dtype.str
        attrs = {k: _native_attr(v) for k, v in var.attrs.items()}
        attrs = {k: v for k, v in attrs.items() if v is not None and not k.startswith("_")}
        attrs[_TWIN_ATTRS] = json.dumps(
            {str(k): _encode_attr(v, f"{where}.{k}") for k, v in var.attrs.items()}
        )
        out[name].attrs = attrs
        e: dict[str, Any] = {"_FillValue": None}
        if var.ndim > 0 and var.size > 1 and var.dtype.kind != "b":
            e.update(zlib=True, complevel=1, shuffle=True)
        enc[str(name)] = e
    ds_attrs = {k: _native_attr(v) for k, v in ds.attrs.items()}
    ds_attrs = {k: v for k, v in ds_attrs.items() if v is not None and not k.startswith("_")}
    ds_attrs[_TWIN_ATTRS] = json.dumps(
        {str(k): _encode_attr(v, f"{group}.{k}") for k, v in ds.attrs.items()}
    )
    ds_attrs[_TWIN_META] = json.dumps(meta)
    out.attrs = ds_attrs
    return out, enc


def _restore(ds: xr.Dataset, path: Path, group: str) -> xr.Dataset:
    """Undo :func:`_prepare` on a Dataset read with ``decode_cf=False``."""
    import xarray as xr

    try:
        meta = json.loads(ds.attrs[_TWIN_META])
        ds_attrs = _decode_attrs(ds.attrs[_TWIN_ATTRS])
    except (KeyError, ValueError) as exc:
        raise SnapshotError(
            f"snapshot file {path} group {group!r} lacks the twin metadata: not written by Store"
        ) from exc
    out = ds.drop_encoding()
    new_vars = {}
    for name in meta["order"]:
        var = out.variables[name]
        attrs = _decode_attrs(var.attrs.get(_TWIN_ATTRS, "{}"))
        dtype = np.dtype(meta["dtypes"][name])
        data = var.values
        if data.dtype != dtype:
            data = data.astype(dtype)
        new_vars[name] = xr.Variable(var.dims, data, attrs=attrs)
    coords = {k: v for k, v in new_vars.items() if k in meta["coords"]}
    data_vars = {k: v for k, v in new_vars.items() if k not in meta["coords"]}
    return xr.Dataset(data_vars, coords=coords, attrs=ds_attrs)


def write_datasets(path: str | os.PathLike, groups: dict[str, xr.Dataset]) -> tuple[str, int]:
    """Write Datasets as groups of one NetCDF4 file, atomically; return ``(sha256, nbytes)``.

    The file is written to a temp file beside ``path``, fsync'ed, renamed
    over ``path`` and the directory fsync'ed, so ``path`` either holds the
    whole file or nothing.
    """

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        mode = "w"
        for group, ds in groups.items():
            prepared, enc = _prepare(ds, group)
            prepared.to_netcdf(tmp, mode=mode, group=group, engine="netcdf4", encoding=enc)
            mode = "a"
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        digest, nbytes = file_sha256(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest, nbytes


def read_datasets(path: str | os.PathLike, groups: Iterable[str]) -> dict[str, xr.Dataset]:
    """Read groups written by :func:`write_datasets`, exactly as they were (loaded into memory)."""
    import xarray as xr

    path = Path(path)
    out = {}
    for group in groups:
        try:
            with xr.open_dataset(path, group=group, engine="netcdf4", decode_cf=False) as ds:
                ds.load()
                out[group] = _restore(ds, path, group)
        except (OSError, ValueError) as exc:
            raise SnapshotError(
                f"cannot read group {group!r} of snapshot file {path}: {exc}"
            ) from exc
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def snapshot_filename(created: datetime) -> str:
    """File name of a snapshot made at ``created`` (UTC): sorts by time, unique by a uuid part."""
    return f"{created.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:12]}.nc"


def write_state(path: Path, state: TwinState) -> tuple[str, int]:
    """Write the static and dynamic Datasets of ``state`` to ``path``; ``(sha256, nbytes)``.

    Raises
    ------
    SnapshotError
        If a variable or attr cannot be kept exactly, or the file cannot be written.
    """
    try:
        return write_datasets(path, {"static": state.static, "dynamic": state.dynamic})
    except SnapshotError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise SnapshotError(f"cannot write snapshot file {path}: {exc}") from exc


def read_state(path: Path) -> dict[str, xr.Dataset]:
    """The ``static`` and ``dynamic`` Datasets of a snapshot file, by group name."""
    return read_datasets(path, STATE_GROUPS)


def verify_file(path: Path, sha256: str, nbytes: int, snapshot_id: int) -> None:
    """Check that a snapshot file exists and has the recorded SHA-256 and size.

    Raises
    ------
    SnapshotError
        Naming the snapshot and the file, when it is missing or differs.
    """
    if not path.is_file():
        raise SnapshotError(
            f"snapshot {snapshot_id} file {path} is missing; the snapshot cannot be restored"
        )
    digest, size = file_sha256(path)
    if digest != sha256 or size != nbytes:
        raise SnapshotError(
            f"snapshot {snapshot_id} file {path} is corrupt or was modified: "
            f"sha256 {digest} ({size} bytes) != recorded {sha256} ({nbytes} bytes); "
            "restore another snapshot"
        )


__all__ = [
    "STATE_GROUPS",
    "read_datasets",
    "read_state",
    "snapshot_filename",
    "verify_file",
    "write_datasets",
    "write_state",
]
