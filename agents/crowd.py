"""Pedestrian crowd model: the collision-free speed model on a floor field, as a mesa Model.

:class:`CrowdModel` keeps positions, speeds and states in numpy arrays that
the numba kernels of :mod:`agents._kernels.pedestrians` update (cell lists,
``prange`` over agents; model and formulas in that module's docstring);
each agent is also visible as a light :class:`Pedestrian` (``mesa.Agent``)
whose ``pos`` reads the arrays, created once and never touched by the inner
loop. A ``mesa.DataCollector`` records, at every trajectory sample, the
number evacuated, the number still inside and the mean speed of those inside
(agent-level x, y and speed with ``collect_agents=True``).

One step advances ``dt`` (default 0.05 s: 1/20 of the time gap T = 1 s, so
an agent at 1.34 m/s moves 6.7 cm, a sixth of a body diameter). An agent
waits out its pre-movement time (free speed 0, still an obstacle), then walks
down the floor field; it leaves when its step crosses an open exit segment
(exit time and exit recorded) and its mesa view is removed from the model.
:meth:`CrowdModel.close_exit` closes an exit: the exit becomes a wall and
the floor field is recomputed, so the next step routes to the others.

Parameters of the speed model (:data:`DEFAULT_PARAMS`): time gap T = 1 s,
body diameter l = 0.3 m, repulsion a = 5, D = 0.1 m - the values of the
simulations of Tordeux, Chraibi & Seyfried 2016 as we read them (check the
paper before quoting them as its calibration); with them the fundamental
diagram comes out within 0.2 m/s of Weidmann's (tests). Wall repulsion
a_w = 5, D_w = 0.02 m (JuPedSim's defaults for this model); an agent's
centre never comes closer than 0.1 m to a wall.

Entry point: :func:`simulate` (geometry, agents, seed -> trajectories as an
``xarray.Dataset``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mesa
import numba
import numpy as np
import shapely

from agents import demographics
from agents._kernels import pedestrians as K
from agents.floor_field import FloorField
from agents.geometry import Geometry
from twin.errors import ValidationError
from twin.events import Event, EventLog

#: Collision-free speed model parameters (see the module docstring for the sources).
DEFAULT_PARAMS = {
    "time_gap": 1.0,
    "length": 0.3,
    "a": 5.0,
    "d": 0.1,
    "a_wall": 5.0,
    "d_wall": 0.02,
    "clearance": 0.1,
}
DEFAULT_DT_S = 0.05
#: Below this many agents inside, a step runs on one thread: waking a second
#: thread costs more than the work, and on a busy machine it may wait a time slice.
PARALLEL_MIN_AGENTS = 2000
#: ``run()`` without ``until_s`` stops when nobody has moved for this long (a gridlock), s.
STALL_S = 60.0


def model_params(v0_max: float, **overrides: float) -> K.Params:
    """Kernel parameters: cut-off r_c = l + T v0_max + 0.1 m, repulsion cut-off l + 12 D
    (see the kernel docstring)."""
    p = dict(DEFAULT_PARAMS)
    for key, value in overrides.items():
        if key not in p:
            raise ValidationError(f"{key}: not a speed-model parameter ({', '.join(p)})")
        if not (math.isfinite(value) and value > 0):
            raise ValidationError(f"{key}: must be finite and > 0, got {value!r}")
        p[key] = float(value)
    cutoff = p["length"] + p["time_gap"] * float(v0_max) + 0.1
    rep_cutoff = min(cutoff, p["length"] + 12.0 * p["d"])
    return K.Params(cutoff=cutoff, rep_cutoff=rep_cutoff, **p)


@dataclass
class AgentsSpec:
    """Who is in the area at the start.

    Parameters
    ----------
    positions : array (n, 2), optional
        Start positions in the geometry's input CRS (metres without a CRS).
    n : int, optional
        Number of agents placed at random (no two closer than
        ``min_spacing_m``, none within ``0.5 * min_spacing_m`` + clearance of a
        wall) when ``positions`` is not given.
    region : shapely Polygon, optional
        Where to place them (default: the walkable area), input CRS.
    speeds : array (n,), optional
        Free walking speeds, m/s; drawn from ``speed_profile`` otherwise
        (:func:`agents.demographics.speed_sample`).
    speed_profile : str
        ``"weidmann_adult"`` or ``"rimea_age"``.
    ages : array (n,), optional
        Ages for ``"rimea_age"``.
    premovement : dict, optional
        ``{"dist": "lognormal", **params}`` for
        :func:`agents.demographics.premovement_sample`; None = everyone
        starts at once.
    min_spacing_m : float
        Smallest centre distance of random placement, m.
    """

    positions: np.ndarray | None = None
    n: int | None = None
    region: object | None = None
    speeds: np.ndarray | None = None
    speed_profile: str = "weidmann_adult"
    ages: np.ndarray | None = None
    premovement: dict | None = None
    min_spacing_m: float = 0.4


def place_random(
    area, n: int, rng: np.random.Generator, min_spacing: float, wall_gap: float, walls: np.ndarray
) -> np.ndarray:
    """Random sequential placement of ``n`` points in ``area`` (metric), pairwise >= ``min_spacing``
    apart and >= ``wall_gap`` from every wall segment.

    Raises
    ------
    ValidationError
        The area cannot hold ``n`` agents at that spacing (after 200 n tries).
    """
    xmin, ymin, xmax, ymax = area.bounds
    lines = shapely.STRtree(shapely.linestrings(walls.reshape(-1, 2, 2))) if walls.size else None
    cs = min_spacing if min_spacing > 0 else 1.0
    grid: dict[tuple[int, int], list[int]] = {}
    out = np.empty((n, 2))
    k = tries = 0
    while k < n:
        if tries > 200 * max(n, 10):
            raise ValidationError(
                f"agents: could place only {k} of {n} agents {min_spacing} m apart in the area"
            )
        m = max(64, 2 * (n - k))
        cand = np.column_stack([rng.uniform(xmin, xmax, m), rng.uniform(ymin, ymax, m)])
        ok = shapely.contains_xy(area, cand[:, 0], cand[:, 1])
        if lines is not None and wall_gap > 0:
            hit, _ = lines.query(shapely.points(cand), predicate="dwithin", distance=wall_gap)
            ok[hit] = False
        for x, y in cand[ok]:
            tries += 1
            cx, cy = int(x // cs), int(y // cs)
            clash = False
            for gx in (cx - 1, cx, cx + 1):
                for gy in (cy - 1, cy, cy + 1):
                    for j in grid.get((gx, gy), ()):
                        if (out[j, 0] - x) ** 2 + (out[j, 1] - y) ** 2 < min_spacing**2:
                            clash = True
                            break
            if clash:
                continue
            out[k] = x, y
            grid.setdefault((cx, cy), []).append(k)
            k += 1
            if k == n:
                break
        tries += int((~ok).sum())
    return out


class Pedestrian(mesa.Agent):
    """A read-only mesa view of one agent of a :class:`CrowdModel` (index ``idx`` in its arrays)."""

    def __init__(self, model: CrowdModel, idx: int) -> None:
        super().__init__(model)
        self.idx = idx

    @property
    def pos(self):  # noqa: D102 - mesa's attribute, read from the model's arrays
        m = self.model
        return (float(m.position[self.idx, 0]), float(m.position[self.idx, 1]))

    @pos.setter
    def pos(self, value) -> None:
        if value is not None:  # mesa.Agent.__init__ sets None
            raise AttributeError("a Pedestrian's position is set by the model's kernel")

    @property
    def x(self) -> float:
        return self.pos[0]

    @property
    def y(self) -> float:
        return self.pos[1]

    @property
    def speed(self) -> float:
        """Speed over the last step, m/s."""
        return float(self.model.speed[self.idx])

    @property
    def free_speed(self) -> float:
        return float(self.model.v0[self.idx])

    @property
    def exit_time(self) -> float:
        """Time the agent left, s (NaN while inside)."""
        return float(self.model.exit_time[self.idx])

    @property
    def exit_id(self) -> str | None:
        k = int(self.model.exit_index[self.idx])
        return None if k < 0 else self.model.geometry.exit_ids[k]


class CrowdModel(mesa.Model):
    """Evacuation of one walkable area by the collision-free speed model.

    Parameters
    ----------
    geometry : Geometry or str or Path
        The area (a GeoJSON path is read with :meth:`Geometry.from_geojson`).
    agents : AgentsSpec
        Who is where at the start.
    seed : int, optional
        Seed of ``self.rng`` (placement, speeds, pre-movement); or give ``rng``.
    dt : float
        Time step, s (0.01-0.2).
    record_every : int
        Trajectory sample every this many steps.
    cell_m : float
        Floor-field cell size, m.
    collect_agents : bool
        Also collect agent-level x, y, speed in the DataCollector.
    agent_views : bool
        Create the :class:`Pedestrian` views (off only for benchmarks).
    **params
        Speed-model overrides (keys of :data:`DEFAULT_PARAMS`).
    """

    def __init__(
        self,
        geometry: Geometry | str | Path,
        agents: AgentsSpec,
        *,
        seed: int | None = None,
        rng=None,
        dt: float = DEFAULT_DT_S,
        record_every: int = 10,
        cell_m: float = 0.2,
        collect_agents: bool = False,
        agent_views: bool = True,
        **params: float,
    ) -> None:
        if seed is None and rng is None:
            raise ValidationError("seed: a crowd run needs a seed (or rng) to be reproducible")
        super().__init__(seed=seed, rng=rng)
        if isinstance(geometry, str | Path):
            geometry = Geometry.from_geojson(geometry)
        if not (0.01 <= dt <= 0.2):
            raise ValidationError(f"dt: {dt!r} s is outside 0.01-0.2 s")
        if int(record_every) < 1:
            raise ValidationError(f"record_every: must be >= 1, got {record_every!r}")
        self.geometry = geometry
        self.dt = float(dt)
        self.record_every = int(record_every)
        self.time_s = 0.0
        self.events = EventLog()
        self.field = FloorField(geometry, cell_m=cell_m)
        self._init_agents(agents, params)
        self._init_kernels()
        self.views = [Pedestrian(self, i) for i in range(self.n)] if agent_views else []
        reporters = {
            "evacuated": lambda m: int(m.n_evacuated),
            "in_area": lambda m: int(m.n_inside),
            "mean_speed": lambda m: m.mean_speed,
        }
        agent_rep = {"x": "x", "y": "y", "speed": "speed"} if collect_agents else None
        self.datacollector = mesa.DataCollector(model_reporters=reporters, agent_reporters=agent_rep)
        self._samples: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []
        self._record()

    # -- set-up ----------------------------------------------------------------
    def _init_agents(self, spec: AgentsSpec, params: dict) -> None:
        g = self.geometry
        rng = self.rng
        if spec.positions is not None:
            xy = np.asarray(spec.positions, dtype=np.float64).reshape(-1, 2)
            x, y = g.project(xy[:, 0], xy[:, 1])
            xy = np.column_stack([x, y])
        elif spec.n is not None:
            area = g.walkable
            if spec.region is not None:
                area = area.intersection(g.project_geometry(spec.region))
            gap = 0.5 * spec.min_spacing_m + DEFAULT_PARAMS["clearance"]
            xy = place_random(area, int(spec.n), rng, spec.min_spacing_m, gap, g.wall_segments())
        else:
            raise ValidationError("agents: give positions or n")
        n = xy.shape[0]
        if spec.speeds is not None:
            v0 = np.asarray(spec.speeds, dtype=np.float64).reshape(-1)
            if v0.shape != (n,) or not np.all(np.isfinite(v0) & (v0 > 0)):
                raise ValidationError(f"speeds: need {n} finite speeds > 0 m/s")
        else:
            v0 = demographics.speed_sample(rng, n, spec.speed_profile, spec.ages)
        if spec.premovement is not None:
            pm = dict(spec.premovement)
            premove = demographics.premovement_sample(rng, n, pm.pop("dist", "lognormal"), **pm)
        else:
            premove = np.zeros(n)
        self.prm = model_params(float(v0.max()) if n else 1.34, **params)
        g.check_positions(xy, clearance=self.prm.clearance)
        cut_off = ~np.isfinite(self.field.distance_near(xy))
        if cut_off.any():
            k = int(np.flatnonzero(cut_off)[0])
            raise ValidationError(
                f"agents: agent {k} at ({xy[k, 0]:.3f}, {xy[k, 1]:.3f}) m has no way to an open exit"
            )
        self.n = n
        self.position = np.ascontiguousarray(xy)
        self.v0 = v0
        self.premovement = premove
        self.speed = np.zeros(n)
        self.active = np.ones(n, dtype=np.uint8)
        self.exit_time = np.full(n, np.nan)
        self.exit_index = np.full(n, K.NO_EXIT, dtype=np.int64)

    def _init_kernels(self) -> None:
        xmin, ymin, xmax, ymax = self.geometry.bounds
        pad = self.prm.cutoff
        self._bounds = (xmin - pad, ymin - pad, xmax + pad, ymax + pad)
        self._cells = K.make_cells(self._bounds, self.prm.cutoff, self.n)
        self._walls = K.make_wall_grid(self.geometry.wall_segments(), self._bounds, self.prm.cutoff)
        self._e0 = np.zeros((self.n, 2))
        self._new = np.empty((self.n, 2))
        self._v0_now = np.empty(self.n)
        self._out_exit = np.empty(self.n, dtype=np.int64)

    # -- state -------------------------------------------------------------------
    @property
    def n_evacuated(self) -> int:
        return int(np.count_nonzero(self.exit_index >= 0))

    @property
    def n_inside(self) -> int:
        return int(np.count_nonzero(self.active))

    @property
    def mean_speed(self) -> float:
        inside = self.active.astype(bool)
        return float(self.speed[inside].mean()) if inside.any() else 0.0

    # -- dynamics ------------------------------------------------------------------
    def close_exit(self, exit_id: str) -> None:
        """Close an exit: it becomes a wall and the floor field routes to the others."""
        k = self.geometry.exit_index(exit_id)
        if not self.geometry.exit_open[k]:
            return
        self.geometry.exit_open[k] = False
        try:
            self.field.recompute()
        except ValidationError:
            self.geometry.exit_open[k] = True
            raise
        self._walls = K.make_wall_grid(self.geometry.wall_segments(), self._bounds, self.prm.cutoff)
        self.events.append(
            Event(time_s=self.time_s, kind="exit_closed", source="crowd",
                  message=f"exit {exit_id} closed", data={"exit": str(exit_id)})
        )  # fmt: skip

    def open_exit(self, exit_id: str) -> None:
        """Open a closed exit again (walls and floor field follow)."""
        k = self.geometry.exit_index(exit_id)
        if self.geometry.exit_open[k]:
            return
        self.geometry.exit_open[k] = True
        self.field.recompute()
        self._walls = K.make_wall_grid(self.geometry.wall_segments(), self._bounds, self.prm.cutoff)
        self.events.append(
            Event(time_s=self.time_s, kind="exit_opened", source="crowd",
                  message=f"exit {exit_id} opened", data={"exit": str(exit_id)})
        )  # fmt: skip

    def step(self) -> None:
        """Advance every agent by ``dt``; remove those that crossed an open exit."""
        c = self._cells
        threads = numba.get_num_threads()
        if self.n_inside < PARALLEL_MIN_AGENTS:
            numba.set_num_threads(1)  # a parallel region costs more than a small crowd's step
        try:
            np.copyto(self._v0_now, np.where(self.premovement <= self.time_s, self.v0, 0.0))
            K.fill_cells(self.position, self.active, c)
            K.step(
                self.position, self._e0, self.field.kernel_field, self._v0_now, self.active,
                self.prm, c, self._walls,
                self.geometry.exit_segments, self.geometry.exit_open, self.dt,
                self._new, self.speed, self._out_exit,
            )  # fmt: skip
        finally:
            numba.set_num_threads(threads)
        self.position, self._new = self._new, self.position
        t_next = (self.steps) * self.dt  # mesa counted this step already
        left = np.flatnonzero(self._out_exit >= 0)
        if left.size:
            self.active[left] = 0
            self.exit_time[left] = t_next
            self.exit_index[left] = self._out_exit[left]
            for i in left:
                if self.views:
                    self.views[i].remove()
        self.time_s = t_next
        if self.steps % self.record_every == 0 or not self.active.any():
            self._record()
        if not self.active.any():
            self.running = False

    def _stalled(self) -> bool:
        """Nobody inside has moved faster than 1 cm/s for :data:`STALL_S` s after pre-movement."""
        if self.time_s < float(self.premovement.max(initial=0.0)) or self.speed.max(initial=0.0) > 0.01:
            self._still_since = self.time_s
            return False
        return self.time_s - getattr(self, "_still_since", 0.0) >= STALL_S

    def _record(self) -> None:
        inside = self.active.astype(bool)
        x = np.where(inside, self.position[:, 0], np.nan)
        y = np.where(inside, self.position[:, 1], np.nan)
        v = np.where(inside, self.speed, np.nan)
        if self._samples and self._samples[-1][0] == self.time_s:
            return
        self._samples.append((self.time_s, x, y, v))
        self.datacollector.collect(self)

    def run(self, until_s: float | None = None, progress: Callable[[float], None] | None = None):
        """Step until everyone has left or ``until_s`` (s) is reached; returns :meth:`trajectories`.

        Without ``until_s`` a gridlock (nobody moving for :data:`STALL_S` s)
        also ends the run, with a ``crowd_stalled`` event.

        ``progress``, when given, is called with the fraction done (0-1; by
        evacuated share without ``until_s``) about once per simulated second.
        """
        if until_s is not None and not (math.isfinite(until_s) and until_s > 0):
            raise ValidationError(f"until_s: must be finite and > 0, got {until_s!r}")
        every = max(1, int(round(1.0 / self.dt)))
        limit = math.inf if until_s is None else until_s - 1e-9
        while self.running and self.time_s < limit:
            self.step()
            if until_s is None and self._stalled():
                self.running = False
                self.events.append(
                    Event(time_s=self.time_s, kind="crowd_stalled", source="crowd",
                          severity="warning", data={"inside": self.n_inside},
                          message=f"{self.n_inside} people have not moved for {STALL_S:g} s")
                )  # fmt: skip
            if progress is not None and self.steps % every == 0:
                frac = self.time_s / until_s if until_s else self.n_evacuated / max(self.n, 1)
                progress(min(1.0, frac))
        if progress is not None:
            progress(1.0)
        return self.trajectories()

    # -- output ------------------------------------------------------------------
    def trajectories(self):
        """Sampled trajectories and exits as an ``xarray.Dataset``.

        Variables: ``x``, ``y`` (m, metric frame), ``speed`` (m/s) on
        (time, agent), NaN once the agent has left; ``lon``, ``lat`` (degrees)
        when the geometry has a CRS; per agent ``exit_time`` (s, NaN = still
        inside), ``exit_index`` (-1 = still inside), ``free_speed`` (m/s),
        ``premovement`` (s). Coordinates ``exit`` carry the exit ids.
        """
        import xarray as xr

        t = np.array([s[0] for s in self._samples])
        x = np.stack([s[1] for s in self._samples])
        y = np.stack([s[2] for s in self._samples])
        v = np.stack([s[3] for s in self._samples])
        g = self.geometry
        data = {
            "x": (("time", "agent"), x, {"units": "m", "long_name": "easting in the metric frame"}),
            "y": (("time", "agent"), y, {"units": "m", "long_name": "northing in the metric frame"}),
            "speed": (("time", "agent"), v, {"units": "m/s", "long_name": "speed over the last step"}),
            "exit_time": ("agent", self.exit_time, {"units": "s", "long_name": "time of leaving"}),
            "exit_index": ("agent", self.exit_index, {"long_name": "index into exit (-1: inside)"}),
            "exit_id": ("agent", np.array([g.exit_ids[k] if k >= 0 else "" for k in self.exit_index],
                                          dtype=object), {"long_name": "exit taken ('' = inside)"}),
            "free_speed": ("agent", self.v0, {"units": "m/s", "long_name": "desired speed"}),
            "premovement": ("agent", self.premovement, {"units": "s", "long_name": "pre-movement time"}),
        }
        if g.has_crs:
            lon, lat = g.to_lonlat(x, y)
            data["lon"] = (("time", "agent"), lon, {"units": "degrees_east", "crs": "EPSG:4326"})
            data["lat"] = (("time", "agent"), lat, {"units": "degrees_north", "crs": "EPSG:4326"})
        counts = np.bincount(self.exit_index[self.exit_index >= 0], minlength=len(g.exit_ids))
        data["exit_count"] = ("exit", counts, {"long_name": "agents out through each exit"})
        data["exit_open"] = ("exit", g.exit_open.astype(np.int8), {"long_name": "1 = open at the end"})
        ds = xr.Dataset(
            data,
            coords={
                "time": ("time", t, {"units": "s"}),
                "agent": np.arange(self.n),
                "exit": ("exit", np.array(g.exit_ids, dtype=object)),
            },
        )
        ds.attrs.update(
            model="collision-free speed model (Tordeux, Chraibi & Seyfried 2016)",
            crs=g.metric_crs or "local metres",
            dt_s=self.dt,
            seed=str(self._seed) if getattr(self, "_seed", None) is not None else "rng",
            n_agents=self.n,
            evacuated=self.n_evacuated,
            time_gap_s=self.prm.time_gap,
            body_diameter_m=self.prm.length,
        )
        return ds


def simulate(
    geometry: Geometry | str | Path,
    agents_spec: AgentsSpec,
    *,
    seed: int,
    dt: float = DEFAULT_DT_S,
    until_s: float | None = None,
    progress: Callable[[float], None] | None = None,
    **kw,
):
    """Run a crowd evacuation and return its trajectories (:meth:`CrowdModel.trajectories`).

    Parameters
    ----------
    geometry : Geometry or path to a GeoJSON file (see :mod:`agents.geometry`)
    agents_spec : AgentsSpec
    seed : int
        Same seed, same trajectories.
    dt : float
        Time step, s.
    until_s : float, optional
        Stop at this time, s (default: when everyone has left).
    progress : callable, optional
        Called with the fraction done.
    **kw
        Passed to :class:`CrowdModel` (``record_every``, ``cell_m``, speed-model parameters).

    Examples
    --------
    >>> from shapely.geometry import box
    >>> g = Geometry(box(0, 0, 10, 4), {"door": ((10, 1.5), (10, 2.5))})
    >>> ds = simulate(g, AgentsSpec(n=20), seed=1, until_s=60)
    >>> int(ds.attrs["evacuated"])
    20
    """
    model = CrowdModel(geometry, agents_spec, seed=seed, dt=dt, **kw)
    return model.run(until_s=until_s, progress=progress)


def movers_layer(ds, *, layer_id: str = "crowd", label: str = "People", radius_m: float = 0.3,
                 times_s=None, by_exit: bool = True):  # fmt: skip
    """The trajectories of :meth:`CrowdModel.trajectories` as a moving-dots map layer.

    Needs ``lon``/``lat`` (a geometry given with a CRS). With ``by_exit``,
    agents are coloured by the exit they take (those still inside at the end
    form their own group). ``times_s`` resamples to the page's shared slider
    times (the sample at or before each time; NaN before the first).

    Returns
    -------
    viz.scene.LayerSet
        From ``viz.layers.build("movers", ...)``.
    """
    from viz.layers import build

    if "lon" not in ds:
        raise ValidationError("trajectories: no lon/lat (the geometry was given in local metres)")
    t = ds["time"].values
    lon, lat = ds["lon"].values, ds["lat"].values
    if times_s is not None:
        times_s = np.asarray(times_s, dtype=np.float64)
        k = np.searchsorted(t, times_s + 1e-9, side="right") - 1
        lon = np.where((k >= 0)[:, None], lon[np.clip(k, 0, None)], np.nan)
        lat = np.where((k >= 0)[:, None], lat[np.clip(k, 0, None)], np.nan)
        t = times_s
    group = labels = None
    if by_exit:
        idx = ds["exit_index"].values
        n_exit = ds.sizes["exit"]
        group = np.where(idx >= 0, idx, n_exit)
        labels = {k: f"out via {e}" for k, e in enumerate(ds["exit"].values)}
        labels[n_exit] = "still inside"
    return build("movers", t, lon, lat, layer_id=layer_id, label=label, radius_m=radius_m,
                 group=group, group_labels=labels)  # fmt: skip
