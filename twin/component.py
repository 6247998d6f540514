"""The contract every physics component follows (after landlab's Component).

A component declares its fields at class level (name, units, intent, where
they live, doc, and the attribute that holds each), so callers can inspect it
without building one; it advances with ``step(dt)``, sub-stepping internally
under its own stability limit and returning the simulated time elapsed.

Callers (the twin's clock, data assimilation, views) read and write a
component's fields by name only, through :meth:`Component.get` and
:meth:`Component.set`, never through its attributes: ``set`` converts units,
refuses bad values and lets the component keep its derived state consistent
(:meth:`Component._field_changed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import xarray as xr

from twin.errors import GridError, ValidationError
from twin.units import convert


@dataclass(frozen=True)
class FieldSpec:
    """One declared input or output of a component.

    Attributes
    ----------
    units : str
        Units of the values (landlab's form: ``"m"``, ``"m2/s"``, ``"1"``).
    intent : {"in", "out", "inout"}
        ``in``: read by the component; ``out``: written by it; ``inout``: both.
    doc : str
        What the field is (the DataArray's ``long_name``).
    at : {"cell", "face", "grid", "point"}
        Where the values live. Face fields sit between cells: one more column
        (x faces) or one more row (y faces) than the cell grid.
    optional : bool
        The component runs without it.
    dtype : str
        Declared dtype (a component may hold float32 instead, see its docs).
    attr : str or None
        The component's attribute holding the values as an array in ``units``
        on ``at``. None when the component holds the field in another form (e.g.
        squared, or as an object): the field is then not readable or writable
        by name, and ``doc`` says how to reach it.
    fixed : bool
        An input read once at construction, from which the component derives
        state: :meth:`Component.set` refuses it (build a new component instead).
    valid_min : float or None
        Smallest valid value (in ``units``); :meth:`Component.set` refuses less.
    """

    units: str
    intent: Literal["in", "out", "inout"]
    doc: str
    at: Literal["cell", "face", "grid", "point"] = "cell"
    optional: bool = False
    dtype: str = "float64"
    attr: str | None = None
    fixed: bool = False
    valid_min: float | None = None


@dataclass(frozen=True)
class CellGrid:
    """Where a component's cells are, for labelling its fields.

    Attributes
    ----------
    x, y : ndarray
        Cell-centre coordinates (m), ``y`` descending (north up).
    crs : str or None
        The CRS of ``x`` and ``y`` (``None`` for a grid in plain metres).
    transform : tuple of 6 floats or None
        rasterio's ``Affine[:6]`` of the grid (gives the face coordinates).
    """

    x: np.ndarray
    y: np.ndarray
    crs: str | None = None
    transform: tuple[float, ...] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.y), len(self.x))

    def x_faces(self) -> np.ndarray | None:
        """x of the faces between columns (nx + 1 values), or None without a transform."""
        if self.transform is None:
            return None
        a, _, c = self.transform[:3]
        return c + a * np.arange(len(self.x) + 1)

    def y_faces(self) -> np.ndarray | None:
        """y of the faces between rows (ny + 1 values), or None without a transform."""
        if self.transform is None:
            return None
        e, f = self.transform[4:6]
        return f + e * np.arange(len(self.y) + 1)


class Component:
    """Base class: declared fields, ``get``/``set`` by name, ``step(dt) -> elapsed seconds``.

    Subclasses declare ``fields`` (name -> :class:`FieldSpec`), implement
    :meth:`step`, and override :meth:`cell_grid` (when they live on a grid) and
    :meth:`_field_changed` (when they cache state derived from a settable field).
    """

    name: ClassVar[str] = "Component"
    cite_as: ClassVar[str] = ""
    fields: ClassVar[dict[str, FieldSpec]] = {}

    # -- the declaration (no instance needed) ------------------------------------------
    @classmethod
    def input_var_names(cls) -> tuple[str, ...]:
        return tuple(k for k, f in cls.fields.items() if f.intent in ("in", "inout"))

    @classmethod
    def output_var_names(cls) -> tuple[str, ...]:
        return tuple(k for k, f in cls.fields.items() if f.intent in ("out", "inout"))

    @classmethod
    def spec(cls, name: str) -> FieldSpec:
        """The :class:`FieldSpec` of ``name``; a ValidationError listing the fields if unknown."""
        try:
            return cls.fields[name]
        except KeyError:
            raise ValidationError(
                f"{cls.name} has no field {name!r}; fields: {sorted(cls.fields)}"
            ) from None

    @classmethod
    def var_units(cls, name: str) -> str:
        return cls.spec(name).units

    # -- fields by name --------------------------------------------------------------
    def cell_grid(self) -> CellGrid | None:
        """The component's cell grid (coords, CRS); None when it has none (the default)."""
        return None

    def get(self, name: str) -> xr.DataArray:
        """The values of field ``name`` as a DataArray: a copy, in the declared units.

        A copy, not a view: later steps do not change what was returned, and
        editing it changes nothing in the component (use :meth:`set`, which
        keeps the component consistent). Attributes: ``units``, ``long_name``
        (the field's doc) and, when the component has a grid, ``crs``; cell
        fields carry the grid's ``transform`` and (y, x) cell-centre coords,
        face fields (y, x_face) or (y_face, x) face coords.

        Raises
        ------
        ValidationError
            If the component has no such field or does not hold it as an array.
        """
        spec = self.spec(name)
        values = np.array(self._array_of(name, spec), copy=True)
        grid = self.cell_grid()
        dims, coords = self._labels(spec, values.shape, grid)
        attrs = {"units": spec.units, "long_name": spec.doc}
        if grid is not None and grid.crs:
            attrs["crs"] = grid.crs
        if grid is not None and grid.transform is not None and dims == ("y", "x"):
            attrs["transform"] = tuple(grid.transform)
        return xr.DataArray(values, dims=dims, coords=coords, name=name, attrs=attrs)

    def set(self, name: str, values, units: str | None = None) -> None:
        """Write field ``name`` (an ``in`` or ``inout`` field) in place.

        Parameters
        ----------
        name : str
            A declared field whose intent is ``in`` or ``inout`` and which is
            not ``fixed``.
        values : array-like or DataArray
            New values, the field's shape. A DataArray on a grid must have the
            component's cell coords; its ``units`` attr is used when ``units``
            is not given.
        units : str, optional
            Units of ``values``; converted (pint) to the declared units when
            they differ. Default: the declared units.

        Raises
        ------
        ValidationError
            Unknown, output-only, fixed or unheld field; units that do not
            convert; a non-finite value or one below the field's ``valid_min``;
            anything :meth:`_field_changed` refuses (the old values are then
            restored).
        GridError
            Wrong shape, or a DataArray on other coordinates.
        """
        spec = self.spec(name)
        if spec.intent == "out":
            raise ValidationError(
                f"{self.name}.{name} is an output (intent 'out') and cannot be set; "
                f"settable fields: {sorted(self._settable())}"
            )
        if spec.fixed:
            raise ValidationError(
                f"{self.name}.{name} is read once at construction ({spec.doc}); "
                f"build a new {type(self).__name__} with the new values instead"
            )
        target = self._array_of(name, spec)
        if isinstance(values, xr.DataArray):
            self._check_coords(name, values)
            units = values.attrs.get("units") if units is None else units
            values = values.values
        given = spec.units if units is None else units
        new = convert(values, given, spec.units, what=f"{self.name}.{name}")
        self._check_values(name, spec, new, target.shape, given, values)
        previous = target.copy()
        target[...] = new
        try:
            self._field_changed(name, previous)
        except BaseException:
            target[...] = previous
            raise

    def _field_changed(self, name: str, previous: np.ndarray) -> None:
        """Called by :meth:`set` after it wrote ``name``; ``previous`` holds the old values.

        Override to refresh state derived from the field (a cached maximum,
        booked volumes). Raising refuses the values: :meth:`set` restores
        ``previous`` and re-raises. The default does nothing.
        """

    # -- helpers -------------------------------------------------------------------
    def _settable(self) -> list[str]:
        return [k for k, f in self.fields.items()
                if f.intent != "out" and not f.fixed and f.attr is not None]

    def _array_of(self, name: str, spec: FieldSpec) -> np.ndarray:
        if spec.attr is None:
            raise ValidationError(
                f"{self.name}.{name} is not held as an array in {spec.units!r} ({spec.doc}), so "
                "it cannot be read or set by name"
            )
        arr = getattr(self, spec.attr, None)
        if not isinstance(arr, np.ndarray):
            raise ValidationError(
                f"{self.name}.{name}: its declared attribute {spec.attr!r} holds "
                f"{type(arr).__name__}, not an array; fix the FieldSpec's attr"
            )
        return arr

    def _labels(self, spec: FieldSpec, shape: tuple[int, ...],
                grid: CellGrid | None) -> tuple[tuple[str, ...] | None, dict]:
        """Dims and coords of a field's values: cell (y, x), face (y, x_face) or (y_face, x)."""
        if len(shape) != 2 or spec.at not in ("cell", "face"):
            return None, {}
        if grid is None:
            return ("y", "x"), {}
        ny, nx = grid.shape
        if shape == (ny, nx):
            return ("y", "x"), {"y": grid.y, "x": grid.x}
        if shape == (ny, nx + 1):
            xf = grid.x_faces()
            return ("y", "x_face"), {"y": grid.y, **({} if xf is None else {"x_face": xf})}
        if shape == (ny + 1, nx):
            yf = grid.y_faces()
            return ("y_face", "x"), {"x": grid.x, **({} if yf is None else {"y_face": yf})}
        raise GridError(f"{self.name}: a {spec.at} field of shape {shape} on a {grid.shape} grid")

    def _check_coords(self, name: str, values: xr.DataArray) -> None:
        grid = self.cell_grid()
        if grid is None:
            return
        for dim, expected in (("y", grid.y), ("x", grid.x)):
            if dim in values.coords and not np.allclose(values[dim].values, expected):
                raise GridError(
                    f"{self.name}.{name}: the values' {dim!r} coordinate differs from the "
                    "component's grid; regrid them onto it first"
                )

    def _check_values(self, name: str, spec: FieldSpec, new: np.ndarray,
                      shape: tuple[int, ...], units: str, given) -> None:
        if new.shape != shape:
            raise GridError(
                f"{self.name}.{name}: values of shape {new.shape}, the field has {shape}; "
                "give one value per cell (face) of the component's grid"
            )
        bad = ~np.isfinite(new)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValidationError(
                f"{self.name}.{name}: {int(bad.sum())} non-finite value(s), e.g. "
                f"{np.asarray(given)[idx].item()!r} at {idx}; give finite numbers in {units!r}"
            )
        if spec.valid_min is not None and new.size and new.min() < spec.valid_min:
            idx = tuple(int(i) for i in np.unravel_index(np.argmin(new), new.shape))
            raise ValidationError(
                f"{self.name}.{name}: value {np.asarray(given)[idx].item()!r} {units} at {idx} is below "
                f"{spec.valid_min} {spec.units}, the smallest valid value"
            )

    def step(self, dt: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def require_positive(value: float, name: str) -> float:
    """``value`` as float if > 0, else a ValidationError naming ``name`` and the value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} must be a positive number") from None
    if not v > 0 or not math.isfinite(v):
        raise ValidationError(f"{name}={value!r} must be a positive finite number")
    return v


def require_range(value: float, name: str, lo: float, hi: float) -> float:
    """``value`` as float if lo <= value <= hi, else a ValidationError naming it."""
    v = float(value)
    if not lo <= v <= hi:
        raise ValidationError(f"{name}={value!r} must lie in [{lo}, {hi}]")
    return v
