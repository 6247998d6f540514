"""The state of a twin: static layers, dynamic fields, clock, sensors and events.

Grid convention (shared with :mod:`gis.raster`): every layer is a 2-D
variable with dims ``("y", "x")``; ``y`` and ``x`` are 1-D coordinates at
cell centres in a projected CRS (the city's working CRS is EPSG:4547), ``y``
descending (north up). The static Dataset carries the grid in its attrs:
``crs`` (a string pyproj accepts) and ``transform`` (the 6-tuple
``(a, b, c, d, e, f)`` of a rasterio ``Affine``), so that cell ``(row, col)``
has its centre at::

    x = c + a * (col + 0.5) + b * (row + 0.5)
    y = f + d * (col + 0.5) + e * (row + 0.5)

Every variable has a ``units`` attr (``"1"`` for dimensionless, as in CF).
Dynamic fields (water depth, velocity, ...) live on the same grid in their
own Dataset and are set through :meth:`TwinState.set_field`, which checks
shape, grid and units, or through :meth:`TwinState.defer_field`, which
computes the values only when something reads them (a model publishing after
every step fields that are read every few steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from twin.clock import SimClock
from twin.errors import CRSError, GridError, ValidationError
from twin.events import EventLog
from twin.sensors import SensorRegistry

DIMS = ("y", "x")


def _check_transform(value: Any) -> tuple[float, ...]:
    try:
        t = tuple(float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise GridError(
            f"static attrs['transform']={value!r} is not a sequence of 6 numbers; "
            "give rasterio's Affine[:6] (a, b, c, d, e, f)"
        ) from exc
    if len(t) != 6 or not all(np.isfinite(t)):
        raise GridError(
            f"static attrs['transform']={value!r} must be 6 finite numbers (a, b, c, d, e, f)"
        )
    if t[0] * t[4] - t[1] * t[3] == 0:
        raise GridError(f"static attrs['transform']={value!r} is singular (zero cell size)")
    return t


def _check_crs(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CRSError(
            f"static attrs['crs']={value!r} must be a CRS string pyproj accepts, e.g. 'EPSG:4547'"
        )
    import pyproj

    try:
        pyproj.CRS.from_user_input(value)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(
            f"static attrs['crs']={value!r} is not a CRS pyproj understands: {exc}"
        ) from exc
    return value


def _check_var(ds_name: str, name: str, var: xr.DataArray, shape: tuple[int, int]) -> None:
    if var.dims != DIMS:
        raise GridError(
            f"{ds_name} variable {name!r} has dims {var.dims}; every layer must have dims {DIMS}"
        )
    if var.shape != shape:
        raise GridError(
            f"{ds_name} variable {name!r} has shape {var.shape}, but the grid is {shape} (y, x)"
        )
    units = var.attrs.get("units")
    if not isinstance(units, str) or not units:
        raise ValidationError(
            f"{ds_name} variable {name!r} has units={units!r}; set attrs['units'] "
            "(use '1' for dimensionless layers such as masks and ids)"
        )


def validate_static(static: xr.Dataset) -> None:
    """Check that a static Dataset follows the grid convention (module docstring).

    Raises
    ------
    GridError, CRSError, ValidationError
        Naming the offending variable, attr, shape or coordinate.
    """
    if not isinstance(static, xr.Dataset):
        raise GridError(f"static must be an xarray.Dataset, got {type(static).__name__}")
    for d in DIMS:
        if d not in static.coords or static[d].ndim != 1:
            raise GridError(
                f"static Dataset lacks a 1-D {d!r} coordinate (cell centres); "
                f"it has coords {list(static.coords)}"
            )
    shape = (static.sizes["y"], static.sizes["x"])
    if 0 in shape:
        raise GridError(f"static grid shape {shape} is empty")
    _check_crs(static.attrs.get("crs"))
    a, b, c, d, e, f = _check_transform(static.attrs.get("transform"))
    rows = np.arange(shape[0]) + 0.5
    cols = np.arange(shape[1]) + 0.5
    if b == 0 and d == 0:
        for coord, expected, step in (
            ("x", c + a * cols, abs(a)),
            ("y", f + e * rows, abs(e)),
        ):
            got = np.asarray(static[coord].values, dtype=float)
            err = np.max(np.abs(got - expected))
            if not err <= 1e-6 * step:
                raise GridError(
                    f"static coordinate {coord!r} does not match attrs['transform']="
                    f"{tuple(static.attrs['transform'])}: off by up to {err:g} (cell size {step:g}); "
                    "coords must be the cell centres the transform gives"
                )
    for name, var in static.data_vars.items():
        _check_var("static", str(name), var, shape)


class TwinState:
    """Everything a twin knows at one simulation time.

    Parameters
    ----------
    static : xarray.Dataset
        Static layers (elevation, land mask, ...) on the city grid; validated
        by :func:`validate_static`.
    clock : SimClock, optional
        Master clock (a new one at t=0 by default).
    sensors : SensorRegistry, optional
    events : EventLog, optional
    dynamic : xarray.Dataset, optional
        Dynamic fields on the same grid (each checked as by :meth:`set_field`).
    """

    def __init__(
        self,
        static: xr.Dataset,
        clock: SimClock | None = None,
        sensors: SensorRegistry | None = None,
        events: EventLog | None = None,
        dynamic: xr.Dataset | None = None,
    ) -> None:
        validate_static(static)
        self.static = static
        self.clock = clock if clock is not None else SimClock()
        self.sensors = sensors if sensors is not None else SensorRegistry()
        self.events = events if events is not None else EventLog()
        #: Deferred fields (:meth:`defer_field`): name -> (compute, units, long_name, attrs).
        self._pending: dict[str, tuple[Callable[[], Any], str, str, dict[str, Any] | None]] = {}
        self._dynamic = xr.Dataset(coords={d: static[d] for d in DIMS})
        if dynamic is not None:
            self._check_dynamic(dynamic)
            missing = {d: static[d] for d in DIMS if d not in dynamic.coords}
            # fields are stored on the Dataset's coords (_store): give it the grid's
            self._dynamic = dynamic.assign_coords(missing) if missing else dynamic

    @property
    def dynamic(self) -> xr.Dataset:
        """The dynamic fields (deferred ones computed first: :meth:`defer_field`)."""
        for name in list(self._pending):
            self._compute(name)
        return self._dynamic

    @dynamic.setter
    def dynamic(self, value: xr.Dataset) -> None:
        self._pending.clear()
        self._dynamic = value

    # ------------------------------------------------------------------ grid
    @property
    def shape(self) -> tuple[int, int]:
        """Grid shape ``(ny, nx)``."""
        return (self.static.sizes["y"], self.static.sizes["x"])

    @property
    def crs(self) -> str:
        return self.static.attrs["crs"]

    @property
    def transform(self) -> tuple[float, ...]:
        return tuple(self.static.attrs["transform"])

    def _check_coords(self, what: str, da: xr.DataArray | xr.Dataset) -> None:
        for d in DIMS:
            if d not in da.coords:
                continue
            if not np.array_equal(da[d].values, self.static[d].values):
                raise GridError(
                    f"{what}: coordinate {d!r} differs from the static grid's; "
                    "dynamic fields must be on the static grid (reproject them first)"
                )

    def _check_dynamic(self, dynamic: xr.Dataset) -> None:
        if not isinstance(dynamic, xr.Dataset):
            raise GridError(f"dynamic must be an xarray.Dataset, got {type(dynamic).__name__}")
        self._check_coords("dynamic Dataset", dynamic)
        for name, var in dynamic.data_vars.items():
            _check_var("dynamic", str(name), var, self.shape)
            if name in self.static.data_vars:
                raise ValidationError(
                    f"dynamic field {name!r} has the name of a static layer; rename it"
                )

    # ---------------------------------------------------------------- fields
    def set_field(
        self,
        name: str,
        data: np.ndarray | xr.DataArray,
        units: str,
        long_name: str = "",
        *,
        copy: bool = True,
        attrs: dict[str, Any] | None = None,
    ) -> xr.DataArray:
        """Set (create or replace) a dynamic field on the static grid.

        Parameters
        ----------
        name : str
            Field name, e.g. ``"water_depth"``; must not be a static layer's name.
        data : array-like or DataArray, shape (ny, nx)
            Values; a DataArray must have dims ("y", "x") and the static coords.
        units : str
            Units (non-empty; ``"1"`` for dimensionless), e.g. ``"m"``.
        long_name : str
            Human-readable description.
        copy : bool
            Copy the values (default) so later in-place changes to ``data``
            do not leak into the state.
        attrs : dict, optional
            Further attributes.

        Raises
        ------
        GridError
            If the shape, dims or coords do not match the static grid.
        ValidationError
            If ``units`` is missing or ``name`` is a static layer's.
        """
        self._check_name_units(name, units)
        self._pending.pop(name, None)
        return self._store(name, data, units, long_name, copy=copy, attrs=attrs)

    def defer_field(
        self,
        name: str,
        compute: Callable[[], np.ndarray | xr.DataArray],
        units: str,
        long_name: str = "",
        *,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        """Set a dynamic field whose values ``compute()`` gives when the field is first read.

        For a field that a model publishes after every step but that is read
        every few steps (a flow speed read by the road closures every 300 s
        and the output frames every 600 s, published every 60 s): the values
        are computed only if something reads them (:meth:`field`,
        :attr:`dynamic`, :meth:`summary`) before the next ``set_field`` or
        ``defer_field`` of the name, and then once. ``compute`` must give
        the values as of this call: it may only depend on data that does not
        change until the caller sets the field again (a model's arrays,
        republished after each step). Its result is stored as by
        ``set_field(name, compute(), units, long_name, copy=False, attrs=attrs)``,
        checked then (shape, coords), and not copied.

        The first set of a name (a field the state does not hold yet)
        computes at once, so that fields keep the order they were first set
        in (the order of the frames written from :attr:`dynamic`).

        Raises
        ------
        ValidationError
            If ``units`` is missing, ``name`` is a static layer's or
            ``compute`` is not callable.
        """
        self._check_name_units(name, units)
        if not callable(compute):
            raise ValidationError(f"field {name!r}: compute is a {type(compute).__name__}, not a callable "
                                  "returning the values; use set_field for values at hand")
        if name not in self._dynamic.data_vars:
            self._pending.pop(name, None)
            self._store(name, compute(), units, long_name, copy=False, attrs=attrs)
            return
        self._pending[name] = (compute, units, long_name, attrs)

    def _compute(self, name: str) -> None:
        """Store a deferred field's values (:meth:`defer_field`)."""
        compute, units, long_name, attrs = self._pending.pop(name)
        self._store(name, compute(), units, long_name, copy=False, attrs=attrs)

    def _check_name_units(self, name: str, units: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValidationError(f"field name={name!r} must be a non-empty string")
        if name in self.static.data_vars:
            raise ValidationError(
                f"field name {name!r} is a static layer; dynamic fields need their own names"
            )
        if not isinstance(units, str) or not units:
            raise ValidationError(
                f"field {name!r}: units={units!r} must be a non-empty string "
                "(e.g. 'm', 'm s-1'; '1' for dimensionless)"
            )

    def _store(
        self,
        name: str,
        data: np.ndarray | xr.DataArray,
        units: str,
        long_name: str,
        *,
        copy: bool,
        attrs: dict[str, Any] | None,
    ) -> xr.DataArray:
        """Check ``data`` against the grid and put it in the dynamic Dataset.

        The values go in as a bare ``xarray.Variable`` on the Dataset's own
        coords (the static grid's): with nothing to align, the assignment
        costs about a third of assigning a DataArray with coords, and gives the
        same Dataset.
        """
        if isinstance(data, xr.DataArray):
            if data.dims != DIMS:
                raise GridError(f"field {name!r} has dims {data.dims}; expected {DIMS}")
            self._check_coords(f"field {name!r}", data)
            values = data.values
        else:
            values = np.asarray(data)
        if values.shape != self.shape:
            raise GridError(
                f"field {name!r} has shape {values.shape}, but the static grid is "
                f"{self.shape} (y, x); regrid the data onto the static grid first"
            )
        if copy:
            values = values.copy()
        all_attrs = dict(attrs or {})
        all_attrs["units"] = units
        if long_name:
            all_attrs["long_name"] = long_name
        self._dynamic[name] = xr.Variable(DIMS, values, all_attrs)
        return self._dynamic[name]

    def field(self, name: str) -> xr.DataArray:
        """A dynamic field (a deferred one computed now), or else a static layer, by name."""
        if name in self._pending:
            self._compute(name)
        if name in self._dynamic.data_vars:
            return self._dynamic[name]
        if name in self.static.data_vars:
            return self.static[name]
        raise ValidationError(
            f"no field named {name!r}; dynamic fields: {list(self._dynamic.data_vars)}, "
            f"static layers: {list(self.static.data_vars)}"
        )

    def has_field(self, name: str) -> bool:
        return name in self._dynamic.data_vars or name in self.static.data_vars

    def drop_field(self, name: str) -> None:
        """Remove a dynamic field."""
        if name not in self._dynamic.data_vars:
            raise ValidationError(
                f"no dynamic field named {name!r}; have {list(self._dynamic.data_vars)}"
            )
        self._pending.pop(name, None)
        self._dynamic = self._dynamic.drop_vars(name)

    # --------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        """JSON-compatible overview: grid, layers, fields, clock, sensors, events."""
        a, _, c, _, e, f = self.transform
        ny, nx = self.shape

        def layer(var: xr.DataArray) -> dict[str, Any]:
            out: dict[str, Any] = {"dtype": str(var.dtype), "units": var.attrs.get("units")}
            if var.attrs.get("long_name"):
                out["long_name"] = var.attrs["long_name"]
            if np.issubdtype(var.dtype, np.number) and var.size:
                vals = np.asarray(var.values)
                finite = np.isfinite(vals) if vals.dtype.kind == "f" else np.ones(vals.shape, bool)
                if finite.any():
                    out["min"] = float(vals[finite].min())
                    out["max"] = float(vals[finite].max())
                out["n_valid"] = int(finite.sum())
            return out

        return {
            "grid": {
                "shape": [ny, nx],
                "crs": self.crs,
                "cell_size": [abs(a), abs(e)],
                "bounds": [
                    min(c, c + a * nx),
                    min(f, f + e * ny),
                    max(c, c + a * nx),
                    max(f, f + e * ny),
                ],
            },
            "static": {str(k): layer(v) for k, v in self.static.data_vars.items()},
            "dynamic": {str(k): layer(v) for k, v in self.dynamic.data_vars.items()},
            "clock": {
                "start": self.clock.start.isoformat(),
                "now_s": self.clock.now_s,
                "now_local": self.clock.now_local.isoformat(),
            },
            "sensors": {"count": len(self.sensors), "by_kind": self.sensors.kinds()},
            "events": {"count": len(self.events), "by_severity": self.events.counts()},
        }

    def __repr__(self) -> str:
        return (
            f"TwinState(shape={self.shape}, crs={self.crs!r}, static={list(self.static.data_vars)}, "
            f"dynamic={list(self._dynamic.data_vars)}, t={self.clock.now_s} s, "
            f"{len(self.sensors)} sensors, {len(self.events)} events)"
        )
