"""The fire model's building network: compartments, wall vents and ceiling/floor vents as arrays.

The zone model (two layers per compartment) runs on this network and knows
nothing of building files; the building description (storeys, floor plates,
cores, shafts, glazing) is turned into it by the building module. A shaft
(stair, lift, smoke-control shaft) is a column of compartments, one per storey,
joined by ceiling/floor vents of the shaft's cross-section; a floor's rooms,
lobby and corridor are compartments of that storey joined by wall vents (doors,
leakage); windows and outside doors are wall vents to the outside (index -1).

Elevations are absolute (m above grade), so the stack effect follows from the
compartments' and the outside's hydrostatic pressures without any per-vent
special case.

Units: m, m², W/(m·K), kg/m³, J/(kg·K); temperatures in °C where named ``_c``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from twin.errors import ValidationError

#: Compartment kinds (``FireNetwork.kind`` holds the index).
COMPARTMENT_KINDS = ("room", "corridor", "lobby", "stair", "lift", "smoke_shaft", "refuge")
#: Wall-vent kinds (``FireNetwork.vent_kind`` holds the index).
VENT_KINDS = ("door", "window", "leak", "shaft_door", "outside_door")
#: Ceiling/floor-vent kinds (``FireNetwork.vvent_kind``).
VVENT_KINDS = ("shaft", "opening", "roof_vent")
OUTSIDE = -1


def kind_codes(names, table: tuple[str, ...], what: str) -> np.ndarray:
    """Codes of ``names`` in ``table`` (int8), naming an unknown one."""
    out = np.empty(len(names), np.int8)
    for i, n in enumerate(names):
        if n not in table:
            raise ValidationError(f"{what}[{i}]={n!r}: give one of {list(table)}")
        out[i] = table.index(n)
    return out


@dataclass(frozen=True)
class FireNetwork:
    """Compartments (N), wall vents (M), ceiling/floor vents (K) and storeys (S) of a building.

    Compartments
        ``names`` (N,), ``kind`` (int8 codes of :data:`COMPARTMENT_KINDS`),
        ``storey`` (storey index, 0 = ground), ``base_m`` (floor elevation above
        grade), ``height_m`` (floor to ceiling), ``area_m2`` (floor area),
        linings ``wall_k`` (W/mK), ``wall_rho`` (kg/m³), ``wall_c`` (J/kgK),
        ``wall_thickness_m``; ``sprinklered`` and ``detector`` (bool).
    Wall vents (flow through a vertical opening)
        ``vent_a``, ``vent_b`` (compartment indices; ``vent_b`` may be
        :data:`OUTSIDE`), ``vent_bottom_m``, ``vent_top_m`` (absolute elevations
        of sill and soffit), ``vent_width_m``, ``vent_kind`` (codes of
        :data:`VENT_KINDS`), ``vent_open`` (initial open fraction 0..1),
        ``vent_break_c`` (upper-layer temperature at which glazing falls out and
        the vent opens fully; NaN for a vent that is not glazing),
        ``vent_cd`` (flow coefficient, 0.7 for doors and windows).
    Ceiling/floor vents (flow through a horizontal opening)
        ``vvent_lower``, ``vvent_upper`` (compartments below and above;
        ``vvent_upper`` may be :data:`OUTSIDE` for a roof vent),
        ``vvent_area_m2``, ``vvent_kind`` (codes of :data:`VVENT_KINDS`).
    Storeys
        ``storey_base_m`` (S,), ``storey_height_m`` (S,), ``refuge`` (S,) bool.
    """

    names: tuple[str, ...]
    kind: np.ndarray
    storey: np.ndarray
    base_m: np.ndarray
    height_m: np.ndarray
    area_m2: np.ndarray
    wall_k: np.ndarray
    wall_rho: np.ndarray
    wall_c: np.ndarray
    wall_thickness_m: np.ndarray
    sprinklered: np.ndarray
    detector: np.ndarray
    vent_a: np.ndarray
    vent_b: np.ndarray
    vent_bottom_m: np.ndarray
    vent_top_m: np.ndarray
    vent_width_m: np.ndarray
    vent_kind: np.ndarray
    vent_open: np.ndarray
    vent_break_c: np.ndarray
    vent_cd: np.ndarray
    vvent_lower: np.ndarray
    vvent_upper: np.ndarray
    vvent_area_m2: np.ndarray
    vvent_kind: np.ndarray
    storey_base_m: np.ndarray
    storey_height_m: np.ndarray
    refuge: np.ndarray
    name: str = "building"
    attrs: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ sizes
    @property
    def n_compartments(self) -> int:
        return len(self.names)

    @property
    def n_vents(self) -> int:
        return len(self.vent_a)

    @property
    def n_vvents(self) -> int:
        return len(self.vvent_lower)

    @property
    def n_storeys(self) -> int:
        return len(self.storey_base_m)

    @property
    def volume_m3(self) -> np.ndarray:
        return self.area_m2 * self.height_m

    def index(self, name: str) -> int:
        """The compartment called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValidationError(f"compartment {name!r} is not in building {self.name!r}; "
                                  f"e.g. {list(self.names[:5])}") from None

    def on_storey(self, storey: int) -> np.ndarray:
        """Indices of the compartments of ``storey``."""
        return np.flatnonzero(self.storey == storey)

    # ------------------------------------------------------------------ checks
    def validate(self) -> FireNetwork:
        """Check shapes, ranges and references; every problem is listed at once."""
        n, m, k, s = self.n_compartments, self.n_vents, self.n_vvents, self.n_storeys
        problems: list[str] = []
        sizes = {"kind": n, "storey": n, "base_m": n, "height_m": n, "area_m2": n, "wall_k": n, "wall_rho": n,
                 "wall_c": n, "wall_thickness_m": n, "sprinklered": n, "detector": n, "vent_b": m,
                 "vent_bottom_m": m, "vent_top_m": m, "vent_width_m": m, "vent_kind": m, "vent_open": m,
                 "vent_break_c": m, "vent_cd": m, "vvent_upper": k, "vvent_area_m2": k, "vvent_kind": k,
                 "storey_height_m": s, "refuge": s}
        for name, size in sizes.items():
            a = np.asarray(getattr(self, name))
            if a.shape != (size,):
                problems.append(f"{name}: shape {a.shape}, expected ({size},)")
        if problems:
            raise ValidationError(f"fire network {self.name!r}: " + "; ".join(problems))
        positive = ("height_m", "area_m2", "wall_k", "wall_rho", "wall_c", "wall_thickness_m", "vent_width_m",
                    "vvent_area_m2", "storey_height_m", "vent_cd")
        for name in positive:
            a = np.asarray(getattr(self, name), float)
            bad = np.flatnonzero(~(np.isfinite(a) & (a > 0)))
            if len(bad):
                problems.append(f"{name}[{bad[0]}]={float(a[bad[0]])!r}: must be a finite number > 0"
                                + (f" ({len(bad)} such)" if len(bad) > 1 else ""))
        for name, hi in (("vent_open", 1.0), ("vent_cd", 1.0)):
            a = np.asarray(getattr(self, name), float)
            bad = np.flatnonzero(~((a >= 0) & (a <= hi)))
            if len(bad):
                problems.append(f"{name}[{bad[0]}]={float(a[bad[0]])!r}: must lie in 0..{hi:g}")
        for name, refs, outside_ok in (("vent_a", self.vent_a, False), ("vent_b", self.vent_b, True),
                                       ("vvent_lower", self.vvent_lower, False),
                                       ("vvent_upper", self.vvent_upper, True)):
            r = np.asarray(refs)
            ok = (r >= 0) & (r < n) | ((r == OUTSIDE) if outside_ok else False)
            bad = np.flatnonzero(~ok)
            if len(bad):
                problems.append(f"{name}[{bad[0]}]={int(r[bad[0]])}: not a compartment index (0..{n - 1}"
                                + (", or -1 for outside)" if outside_ok else ")"))
        same = np.flatnonzero(np.asarray(self.vent_a) == np.asarray(self.vent_b))
        if len(same):
            problems.append(f"vent {same[0]} joins compartment {int(self.vent_a[same[0]])} to itself")
        if not problems:
            problems += self._vent_geometry()
        if problems:
            raise ValidationError(f"fire network {self.name!r}: " + "; ".join(problems))
        return self

    def _vent_geometry(self) -> list[str]:
        """Wall vents lie within both compartments' heights; ceiling vents join a ceiling to a floor."""
        out = []
        bottom, top = np.asarray(self.vent_bottom_m, float), np.asarray(self.vent_top_m, float)
        bad = np.flatnonzero(~(top > bottom))
        if len(bad):
            v = bad[0]
            out.append(f"vent_top_m[{v}]={float(top[v])!r} must be above vent_bottom_m={float(bottom[v])!r}")
        for side in (self.vent_a, self.vent_b):
            idx = np.asarray(side)
            inside = idx >= 0
            lo = np.where(inside, self.base_m[np.maximum(idx, 0)], -np.inf)
            hi = np.where(inside, self.base_m[np.maximum(idx, 0)] + self.height_m[np.maximum(idx, 0)], np.inf)
            bad = np.flatnonzero((bottom < lo - 1e-6) | (top > hi + 1e-6))
            if len(bad):
                v = bad[0]
                out.append(f"vent {v} ({bottom[v]:g}..{top[v]:g} m) is not within compartment "
                           f"{self.names[idx[v]]!r} ({lo[v]:g}..{hi[v]:g} m)")
        lower, upper = np.asarray(self.vvent_lower), np.asarray(self.vvent_upper)
        ceiling = self.base_m[lower] + self.height_m[lower]
        inner = upper >= 0
        gap = np.abs(np.where(inner, self.base_m[np.maximum(upper, 0)], ceiling) - ceiling)
        bad = np.flatnonzero(gap > 1e-3)
        if len(bad):
            v = bad[0]
            out.append(f"ceiling vent {v}: the ceiling of {self.names[lower[v]]!r} ({ceiling[v]:g} m) is not the "
                       f"floor of {self.names[upper[v]]!r}")
        return out

    def summary(self) -> dict:
        """Counts by kind: what a report or a log line says about the network."""
        ck = np.bincount(self.kind, minlength=len(COMPARTMENT_KINDS))
        vk = np.bincount(self.vent_kind, minlength=len(VENT_KINDS))
        return {"name": self.name, "storeys": self.n_storeys, "compartments": self.n_compartments,
                "by_kind": {k: int(c) for k, c in zip(COMPARTMENT_KINDS, ck, strict=True) if c},
                "wall_vents": {k: int(c) for k, c in zip(VENT_KINDS, vk, strict=True) if c},
                "ceiling_vents": self.n_vvents, "volume_m3": float(self.volume_m3.sum())}

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array field (for a kernel call or a NetCDF/npz round trip)."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)
                if f.name not in ("names", "name", "attrs")}


#: Gypsum board lining (NUREG-1805 ch. 2 table 2-3): k 0.17 W/mK, ρ 960 kg/m³, c 1100 J/kgK, 16 mm.
GYPSUM = {"k": 0.17, "rho": 960.0, "c": 1100.0, "thickness_m": 0.016}
#: Normal-weight concrete (NUREG-1805 table 2-3): k 1.6 W/mK, ρ 2400 kg/m³, c 750 J/kgK; 0.2 m slab.
CONCRETE = {"k": 1.6, "rho": 2400.0, "c": 750.0, "thickness_m": 0.2}


class NetworkBuilder:
    """Build a :class:`FireNetwork` compartment by compartment and vent by vent.

    >>> b = NetworkBuilder("one room", storey_heights_m=[2.4])
    >>> room = b.compartment("room", kind="room", storey=0, area_m2=16.0, height_m=2.4)
    >>> _ = b.vent(room, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="door")
    >>> b.build().n_compartments
    1
    """

    def __init__(self, name: str, *, storey_heights_m, refuge=None):
        self.name = name
        h = np.asarray(storey_heights_m, float)
        self.storey_height_m = h
        self.storey_base_m = np.concatenate([[0.0], np.cumsum(h)[:-1]])
        self.refuge = np.zeros(len(h), bool) if refuge is None else np.asarray(refuge, bool)
        self._c: list[dict] = []
        self._v: list[dict] = []
        self._vv: list[dict] = []

    def compartment(self, name: str, *, kind: str, storey: int, area_m2: float, height_m: float | None = None,
                    base_m: float | None = None, lining: dict | None = None, sprinklered: bool = False,
                    detector: bool = False) -> int:
        """Add a compartment (its floor at the storey's base unless ``base_m``); returns its index."""
        lin = lining or GYPSUM
        self._c.append({"name": name, "kind": kind, "storey": storey, "area_m2": area_m2,
                        "height_m": self.storey_height_m[storey] if height_m is None else height_m,
                        "base_m": self.storey_base_m[storey] if base_m is None else base_m,
                        "wall_k": lin["k"], "wall_rho": lin["rho"], "wall_c": lin["c"],
                        "wall_thickness_m": lin["thickness_m"], "sprinklered": sprinklered, "detector": detector})
        return len(self._c) - 1

    def vent(self, a: int, b: int, *, bottom_m: float, top_m: float, width_m: float, kind: str = "door",
             open_fraction: float = 1.0, break_c: float = float("nan"), cd: float = 0.7,
             relative: bool = True) -> int:
        """Add a wall vent between ``a`` and ``b`` (or :data:`OUTSIDE`); sill and soffit relative to
        ``a``'s floor unless ``relative=False``."""
        base = self._c[a]["base_m"] if relative else 0.0
        self._v.append({"a": a, "b": b, "bottom": base + bottom_m, "top": base + top_m, "width": width_m,
                        "kind": kind, "open": open_fraction, "break": break_c, "cd": cd})
        return len(self._v) - 1

    def ceiling_vent(self, lower: int, upper: int, *, area_m2: float, kind: str = "shaft") -> int:
        """Add a ceiling/floor vent from ``lower``'s ceiling into ``upper`` (or :data:`OUTSIDE`)."""
        self._vv.append({"lower": lower, "upper": upper, "area": area_m2, "kind": kind})
        return len(self._vv) - 1

    def build(self, **attrs) -> FireNetwork:
        """The checked network."""
        c, v, vv = self._c, self._v, self._vv

        def col(rows, key, dtype=float):
            return np.asarray([r[key] for r in rows], dtype=dtype)

        return FireNetwork(
            names=tuple(r["name"] for r in c), kind=kind_codes([r["kind"] for r in c], COMPARTMENT_KINDS, "kind"),
            storey=col(c, "storey", np.int32), base_m=col(c, "base_m"), height_m=col(c, "height_m"),
            area_m2=col(c, "area_m2"), wall_k=col(c, "wall_k"), wall_rho=col(c, "wall_rho"),
            wall_c=col(c, "wall_c"), wall_thickness_m=col(c, "wall_thickness_m"),
            sprinklered=col(c, "sprinklered", bool), detector=col(c, "detector", bool),
            vent_a=col(v, "a", np.int32), vent_b=col(v, "b", np.int32), vent_bottom_m=col(v, "bottom"),
            vent_top_m=col(v, "top"), vent_width_m=col(v, "width"),
            vent_kind=kind_codes([r["kind"] for r in v], VENT_KINDS, "vent_kind"), vent_open=col(v, "open"),
            vent_break_c=col(v, "break"), vent_cd=col(v, "cd"),
            vvent_lower=col(vv, "lower", np.int32), vvent_upper=col(vv, "upper", np.int32),
            vvent_area_m2=col(vv, "area"),
            vvent_kind=kind_codes([r["kind"] for r in vv], VVENT_KINDS, "vvent_kind"),
            storey_base_m=self.storey_base_m.copy(), storey_height_m=self.storey_height_m.copy(),
            refuge=self.refuge.copy(), name=self.name, attrs=dict(attrs)).validate()


def subnetwork(net: FireNetwork, keep: np.ndarray, *, boundary: np.ndarray | None = None,
               volume_factor: float = 1.0, name: str | None = None) -> FireNetwork:
    """The network of compartments ``keep`` (sorted indices of ``net``) and the vents between them (and the
    outside), storeys renumbered from the lowest kept one (elevations unchanged, names unchanged).

    ``boundary`` (bool per kept compartment) marks compartments that stand for the rest of the building: only
    their vents to non-boundary kept compartments are kept (not those to the outside or to each other), their
    floor area is ``volume_factor`` times theirs, and they carry no detector, sprinkler or fuel. Per-compartment
    arrays in ``attrs`` (length N) are cut the same way.
    """
    keep = np.asarray(keep, np.int64)
    if keep.ndim != 1 or keep.size == 0 or np.any(np.diff(keep) <= 0) or keep[0] < 0 \
            or keep[-1] >= net.n_compartments:
        raise ValidationError(f"keep: give sorted, distinct compartment indices 0..{net.n_compartments - 1}")
    bnd = np.zeros(keep.size, bool) if boundary is None else np.asarray(boundary, bool)
    if bnd.shape != keep.shape:
        raise ValidationError(f"boundary: {bnd.shape} flags for {keep.size} kept compartments")
    if not (np.isfinite(volume_factor) and volume_factor >= 1.0):
        raise ValidationError(f"volume_factor={volume_factor!r}: give a number >= 1")
    new = np.full(net.n_compartments + 1, -2, np.int64)  # old index -> new (-2: dropped); the last slot: OUTSIDE
    new[keep] = np.arange(keep.size)
    new[OUTSIDE] = OUTSIDE
    is_b = np.zeros(net.n_compartments + 1, bool)
    is_b[keep[bnd]] = True

    def kept(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        na, nb = new[a], new[b]
        ok = (na != -2) & (nb != -2)
        # a boundary compartment keeps only its vents to the interior
        return ok & ~(is_b[a] & ((b == OUTSIDE) | is_b[b])) & ~(is_b[b] & is_b[a])

    v = np.flatnonzero(kept(np.asarray(net.vent_a), np.asarray(net.vent_b)))
    vv = np.flatnonzero(kept(np.asarray(net.vvent_lower), np.asarray(net.vvent_upper)))
    s0, s1 = int(net.storey[keep].min()), int(net.storey[keep].max())
    n = net.n_compartments
    attrs = {k: (np.asarray(x)[keep] if isinstance(x, np.ndarray) and x.shape == (n,) else
                 tuple(x[i] for i in keep) if isinstance(x, tuple) and len(x) == n else x)
             for k, x in net.attrs.items()}
    if "fuel_load_mj_m2" in attrs:
        attrs["fuel_load_mj_m2"] = np.where(bnd, 0.0, attrs["fuel_load_mj_m2"])
    return FireNetwork(
        names=tuple(net.names[i] for i in keep), kind=net.kind[keep].copy(),
        storey=(net.storey[keep] - s0).astype(net.storey.dtype), base_m=net.base_m[keep].copy(),
        height_m=net.height_m[keep].copy(), area_m2=np.where(bnd, volume_factor, 1.0) * net.area_m2[keep],
        wall_k=net.wall_k[keep].copy(), wall_rho=net.wall_rho[keep].copy(), wall_c=net.wall_c[keep].copy(),
        wall_thickness_m=net.wall_thickness_m[keep].copy(), sprinklered=net.sprinklered[keep] & ~bnd,
        detector=net.detector[keep] & ~bnd,
        vent_a=new[net.vent_a[v]].astype(np.int32), vent_b=new[net.vent_b[v]].astype(np.int32),
        vent_bottom_m=net.vent_bottom_m[v].copy(), vent_top_m=net.vent_top_m[v].copy(),
        vent_width_m=net.vent_width_m[v].copy(), vent_kind=net.vent_kind[v].copy(), vent_open=net.vent_open[v].copy(),
        vent_break_c=net.vent_break_c[v].copy(), vent_cd=net.vent_cd[v].copy(),
        vvent_lower=new[net.vvent_lower[vv]].astype(np.int32), vvent_upper=new[net.vvent_upper[vv]].astype(np.int32),
        vvent_area_m2=net.vvent_area_m2[vv].copy(), vvent_kind=net.vvent_kind[vv].copy(),
        storey_base_m=net.storey_base_m[s0:s1 + 1].copy(), storey_height_m=net.storey_height_m[s0:s1 + 1].copy(),
        refuge=net.refuge[s0:s1 + 1].copy(), name=name or f"{net.name} (part)", attrs=attrs).validate()
