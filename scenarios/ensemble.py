"""Ensembles of any run kind on dask.distributed: perturbed requests, members, one Zarr store.

An ensemble is ``n_members`` runs of one kind (:mod:`twin.runkinds`), each a
request of the kind made from a base request and a :class:`Perturbation`:

* ``rain_scale``: a factor on the rain (``lognormal`` with a ``cv`` and mean
  1, or ``uniform`` between ``low`` and ``high``). It sets the kind's
  ``rain_scale`` request field when the kind has one (the flood and slope
  requests do: any rain, a design storm by name included, times the factor);
  otherwise it multiplies ``rain_mm_h`` (a uniform rain) of the base request,
  and a base without one is refused before anything runs.
* ``rain_timing``: a shift added to ``peak_fraction`` (``normal`` with ``sd``
  or ``uniform`` between ``low`` and ``high``), clipped to [0, 1].
* ``params``: any numeric request field: ``normal`` (base + N(0, sd)),
  ``uniform`` (U(low, high), the base value ignored) or ``lognormal``
  (base x a factor of mean 1 and coefficient of variation ``cv``).

Member ``m`` draws from child ``m`` of ``numpy.random.SeedSequence(seed)``
in a fixed order (rain scale, rain timing, params by name), so its request
does not depend on the number of workers. Every member's request is
validated by the kind's request model and pre-check before anything runs.

:func:`run_ensemble` runs the members on a ``LocalCluster`` (processes, one
thread each) or on an existing scheduler, warms each worker once (one
numba thread; optionally a small warm-up run that loads the kernels), runs
each member through :func:`twin.pipeline.run` into
``out_dir/members/m0000`` ... and, as each finishes, writes its main field
(the kind's ``compare`` variable) into ``out_dir/members.zarr`` (dims
``member, y, x``) and its summary KPIs into ``out_dir/members.csv``. A member
that fails is listed with its parameters and error (table, ``ensemble.json``),
its slice of the store stays NaN.
"""

from __future__ import annotations

import csv
import math
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import ValidationError

ZARR_NAME = "members.zarr"
TABLE_NAME = "members.csv"
MANIFEST_NAME = "ensemble.json"
MEMBERS_DIR = "members"
MAX_MEMBERS = 10_000


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Dist(_Strict):
    """One distribution of a perturbation.

    Attributes
    ----------
    dist : {"normal", "uniform", "lognormal"}
    sd : float
        Standard deviation of ``normal`` (added to the base value), > 0.
    low, high : float
        Bounds of ``uniform``, low < high.
    cv : float
        Coefficient of variation of ``lognormal`` (a factor of mean 1 on the base value), > 0.
    """

    dist: Literal["normal", "uniform", "lognormal"]
    sd: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    cv: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _params(self) -> Dist:
        need = {"normal": {"sd"}, "uniform": {"low", "high"}, "lognormal": {"cv"}}[self.dist]
        given = {k for k in ("sd", "low", "high", "cv") if getattr(self, k) is not None}
        if given != need:
            raise ValueError(f"{self.dist} takes {sorted(need)}, got {sorted(given)}")
        if self.dist == "uniform" and not self.low < self.high:
            raise ValueError(f"uniform needs low < high, got low={self.low}, high={self.high}")
        return self

    def draw(self, rng: Any, base: float | None) -> float:
        """One value: ``base`` perturbed (normal, lognormal) or drawn outright (uniform)."""
        if self.dist == "uniform":
            return float(rng.uniform(self.low, self.high))
        if self.dist == "normal":
            return float(base + rng.normal(0.0, self.sd))
        sigma = math.sqrt(math.log1p(self.cv ** 2))
        return float(base * rng.lognormal(-0.5 * sigma ** 2, sigma))


def parse_dist(text: str) -> Dist:
    """A :class:`Dist` from ``normal:SD``, ``uniform:LOW,HIGH`` or ``lognormal:CV``.

    Raises
    ------
    twin.errors.ValidationError
        Naming the text and the forms allowed.
    """
    name, _, args = text.partition(":")
    allowed = "normal:SD, uniform:LOW,HIGH or lognormal:CV"
    try:
        nums = [float(a) for a in args.split(",")] if args else []
    except ValueError:
        raise ValidationError(f"distribution {text!r}: numbers expected after ':'; use {allowed}") from None
    keys = {"normal": ("sd",), "uniform": ("low", "high"), "lognormal": ("cv",)}.get(name.strip())
    if keys is None or len(keys) != len(nums):
        raise ValidationError(f"distribution {text!r}: use {allowed}")
    return _validated(Dist, {"dist": name.strip(), **dict(zip(keys, nums, strict=True))}, f"distribution {text!r}")


class Perturbation(_Strict):
    """How the members differ from the base request (module docstring).

    Attributes
    ----------
    seed : int
        Seed of ``numpy.random.SeedSequence``; member m uses its child m.
    rain_scale : Dist, optional
        ``lognormal`` (cv) or ``uniform`` (low > 0): factor on the rain.
    rain_timing : Dist, optional
        ``normal`` (sd) or ``uniform``: shift added to ``peak_fraction``, clipped to [0, 1].
    params : dict of str to Dist
        Numeric request fields of the kind and their distributions.
    """

    seed: int = Field(default=0, ge=0)
    rain_scale: Dist | None = None
    rain_timing: Dist | None = None
    params: dict[str, Dist] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _kinds_of_dist(self) -> Perturbation:
        rs, rt = self.rain_scale, self.rain_timing
        if rs is not None and (rs.dist == "normal" or (rs.dist == "uniform" and rs.low <= 0)):
            raise ValueError(f"rain_scale={rs.model_dump(exclude_none=True)}: allowed are lognormal (cv) "
                             "or uniform with low > 0 (a positive factor)")
        if rt is not None and rt.dist == "lognormal":
            raise ValueError(f"rain_timing={rt.model_dump(exclude_none=True)}: allowed are normal (sd) or "
                             "uniform (a shift of peak_fraction)")
        clash = {"rain_scale", "rain_mm_h", "peak_fraction"} & set(self.params)
        if clash:
            raise ValueError(f"params={sorted(clash)}: perturb the rain with rain_scale and rain_timing")
        return self


def _validated(model: type, data: Any, what: str) -> Any:
    import pydantic

    from twin.runkinds import describe_errors

    if isinstance(data, model):
        return data
    try:
        return model.model_validate(dict(data))
    except pydantic.ValidationError as exc:
        raise ValidationError(f"{what}: {describe_errors(exc)}") from None


def perturbation(spec: Perturbation | Mapping[str, Any]) -> Perturbation:
    """The validated :class:`Perturbation` of ``spec`` (a mapping or one already).

    Raises
    ------
    twin.errors.ValidationError
        Naming each field, its value and what is allowed.
    """
    return _validated(Perturbation, spec, "perturbation")


# ----------------------------------------------------------------------------- members
def _numeric_field(kind: Any, name: str) -> type:
    """float or int: the type of request field ``name`` of ``kind``, else a ValidationError."""
    import typing

    fields = kind.request.model_fields
    if name not in fields:
        raise ValidationError(f"perturbation params.{name}: {kind.name} requests have no field {name!r}; "
                              f"numeric fields are {_numeric_fields(kind)}")
    args = typing.get_args(fields[name].annotation) or (fields[name].annotation,)
    types = [a for a in args if a is not type(None)]
    if types == [int] or types == [float]:
        return types[0]
    raise ValidationError(f"perturbation params.{name}: field {name!r} of {kind.name} is "
                          f"{fields[name].annotation}, not a number; numeric fields are {_numeric_fields(kind)}")


def _numeric_fields(kind: Any) -> list[str]:
    import typing

    out = []
    for n, f in kind.request.model_fields.items():
        types = [a for a in (typing.get_args(f.annotation) or (f.annotation,)) if a is not type(None)]
        if types in ([int], [float]):
            out.append(n)
    return out


def member_params(kind: Any, base_params: Mapping[str, Any], perturb: Perturbation | Mapping[str, Any],
                  n_members: int, *, city: Any = None) -> list[dict[str, Any]]:
    """The request (as a dict) of each member, every one validated and pre-checked by the kind.

    Parameters
    ----------
    kind : str or twin.runkinds.RunKind
    base_params : mapping
        The base request (validated first).
    perturb : Perturbation or mapping
    n_members : int
        1 <= n_members <= :data:`MAX_MEMBERS`.

    Raises
    ------
    twin.errors.ValidationError
        A bad spec, a field the kind does not have or cannot perturb, or a
        member the kind refuses (named with its index and parameters).
    """
    import numpy as np

    from twin import pipeline
    from twin.runkinds import RunKind, get_kind

    k = kind if isinstance(kind, RunKind) else get_kind(kind)
    p = perturbation(perturb)
    if isinstance(n_members, bool) or not isinstance(n_members, int) or not 1 <= n_members <= MAX_MEMBERS:
        raise ValidationError(f"n_members={n_members!r}: give a whole number from 1 to {MAX_MEMBERS}")
    base = pipeline.check(k, base_params, city=city).model_dump()
    fields = k.request.model_fields
    types = {name: _numeric_field(k, name) for name in sorted(p.params)}
    for name in types:
        if p.params[name].dist != "uniform" and base.get(name) is None:
            raise ValidationError(f"perturbation params.{name}: the base request has {name}=None; "
                                  f"{p.params[name].dist} perturbs a base value: set {name} or use uniform")
    scale_field = "rain_scale" if "rain_scale" in fields else "rain_mm_h"
    if p.rain_scale is not None and (scale_field not in fields or base.get(scale_field) is None):
        raise ValidationError(
            f"perturbation rain_scale: {k.name} requests have no rain_scale field and the base request has "
            f"rain_mm_h={base.get('rain_mm_h')!r}; give the base rain as rain_mm_h")
    if p.rain_timing is not None and "peak_fraction" not in fields:
        raise ValidationError(f"perturbation rain_timing: {k.name} requests have no peak_fraction field")
    children = np.random.SeedSequence(p.seed).spawn(n_members)
    members = []
    for m in range(n_members):
        rng = np.random.default_rng(children[m])
        params = dict(base)
        if p.rain_scale is not None:
            params[scale_field] = base[scale_field] * p.rain_scale.draw(rng, 1.0)
        if p.rain_timing is not None:
            params["peak_fraction"] = min(1.0, max(0.0, base["peak_fraction"] + p.rain_timing.draw(rng, 0.0)))
        for name, typ in types.items():
            v = p.params[name].draw(rng, base.get(name))
            params[name] = int(round(v)) if typ is int else float(v)
        try:
            pipeline.check(k, params, city=city)
        except ValidationError as exc:
            changed = {n: params[n] for n in params if params[n] != base.get(n)}
            raise ValidationError(f"member {m} ({changed}): {exc}") from None
        members.append(params)
    return members


# ----------------------------------------------------------------------------- worker side
def warm_worker(kind_name: str, warmup_params: Mapping[str, Any] | None = None,
                warmup_dir: str | None = None) -> dict[str, Any]:
    """Run once on each worker: one numba thread, the kind's modules imported, an optional warm-up run.

    The warm-up run (a small request of the kind) compiles or loads the
    numba kernels, so the members' timings do not include it.
    """
    import os

    import numba

    from twin.runkinds import get_kind

    numba.set_num_threads(1)
    t0 = time.perf_counter()
    k = get_kind(kind_name)
    if warmup_params is not None:
        from twin import pipeline

        pipeline.run(k, warmup_params, Path(warmup_dir) / f"pid{os.getpid()}", report=False, map=False)
    return {"pid": os.getpid(), "warm_s": time.perf_counter() - t0}


def run_member(kind_name: str, m: int, params: Mapping[str, Any], member_dir: str,
               variable: str | None) -> dict[str, Any]:
    """Run member ``m`` (on a worker): its main field, grid and KPIs, or its error."""
    import numba
    import numpy as np

    from twin import pipeline
    from twin.runkinds import get_kind

    numba.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.thread_time()
    out: dict[str, Any] = {"member": m}
    try:
        k = get_kind(kind_name)
        res = pipeline.run(k, params, member_dir, report=False, map=False)
        ds = res.dataset
        name = variable or _main_variable(ds)
        da = ds[name]
        out.update(ok=True, variable=name, values=np.asarray(da.values), dims=list(da.dims),
                   x=np.asarray(ds["x"].values), y=np.asarray(ds["y"].values),
                   attrs={"crs": ds.attrs.get("crs"),
                          "transform": [float(v) for v in np.asarray(ds.attrs.get("transform"))[:6]]
                          if ds.attrs.get("transform") is not None else None},
                   var_attrs={a: str(v) for a, v in da.attrs.items() if a != "grid_mapping"},
                   kpis=kpis(res.summary, k.summary_keys))
    except Exception as exc:  # noqa: BLE001 - a failing member is reported, not raised on the worker
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=5))
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.thread_time() - c0  # CPU time of this member's thread (one numba thread)
    return out


def _main_variable(ds: Any) -> str:
    for name, v in ds.data_vars.items():
        if v.dims == ("y", "x"):
            return name
    raise ValidationError(f"ensemble: the run's dataset has no (y, x) variable among {list(ds.data_vars)}")


def kpis(summary: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, float | None]:
    """The numeric KPIs of a summary: ``keys`` flattened (``a.b`` for nested dicts), numbers only."""
    out: dict[str, float | None] = {}

    def put(name: str, v: Any) -> None:
        if isinstance(v, Mapping):
            for kk, vv in v.items():
                put(f"{name}.{kk}", vv)
        elif isinstance(v, bool):
            out[name] = float(v)
        elif isinstance(v, int | float):
            out[name] = float(v) if math.isfinite(v) else None
        elif v is None:
            out[name] = None

    for key in keys:
        if key in summary:
            put(key, summary[key])
    return out


# ----------------------------------------------------------------------------- client side
@dataclass
class EnsembleResult:
    """A finished ensemble: where its files are, each member's row, the failures, the timings."""

    out_dir: Path
    zarr: Path
    table: Path
    manifest: Path
    rows: list[dict[str, Any]]
    failed: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    warm_s: float = 0.0
    workers: int = 0

    @property
    def members_per_hour(self) -> float:
        """Members finished per hour of wall time (warm-up excluded)."""
        done = sum(1 for r in self.rows if r["status"] == "ok")
        return 3600.0 * done / self.wall_s if self.wall_s > 0 else math.nan


class _ZarrSink:
    """``members.zarr``: the members' main field (member, y, x), created from the first member."""

    def __init__(self, path: Path, n: int) -> None:
        self.path, self.n, self.arr, self.ok = path, n, None, None

    def put(self, r: dict[str, Any]) -> None:
        import numpy as np
        import zarr

        if self.arr is None:
            root = zarr.open_group(str(self.path), mode="w")
            vals = r["values"]
            dtype = vals.dtype if np.issubdtype(vals.dtype, np.floating) else np.float64
            self.arr = root.create_array(r["variable"], shape=(self.n, *vals.shape), chunks=(1, *vals.shape),
                                         dtype=dtype, fill_value=np.nan,
                                         dimension_names=("member", *r["dims"]),
                                         attributes={**r["var_attrs"], **{k: v for k, v in r["attrs"].items()
                                                                           if v is not None}})
            self.ok = root.create_array("member_ok", shape=(self.n,), chunks=(self.n,), dtype="bool",
                                        fill_value=False, dimension_names=("member",))
            root.create_array("member", data=np.arange(self.n, dtype="int32"), dimension_names=("member",))
            root.create_array("y", data=r["y"], dimension_names=("y",))
            root.create_array("x", data=r["x"], dimension_names=("x",))
            root.attrs.update({"variable": r["variable"], **{k: v for k, v in r["attrs"].items() if v is not None}})
        if tuple(r["values"].shape) != tuple(self.arr.shape[1:]):
            raise ValidationError(f"member {r['member']}: field shape {r['values'].shape} differs from the "
                                  f"first member's {self.arr.shape[1:]} (members must share one grid)")
        self.arr[r["member"]] = r["values"]
        self.ok[r["member"]] = True

    def close(self) -> None:
        import zarr

        if self.arr is not None:
            with warnings.catch_warnings():  # zarr 3: consolidated metadata is outside the v3 spec
                warnings.simplefilter("ignore")
                zarr.consolidate_metadata(str(self.path))


def _client(scheduler: str | None, workers: int, threads_per_worker: int, processes: bool):
    """(Client, cluster or None): a LocalCluster on 127.0.0.1, or a Client of ``scheduler``."""
    import logging

    from distributed import Client, LocalCluster

    # not the default scheduler: members' own xarray/dask calls (to_netcdf) stay local and synchronous
    if scheduler is not None:
        return Client(scheduler, set_as_default=False), None
    env = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=processes,
                           host="127.0.0.1", protocol="tcp://", dashboard_address=":0", silence_logs=logging.ERROR,
                           **({"env": env} if processes else {}))
    return Client(cluster, set_as_default=False), cluster


def run_ensemble(kind: Any, base_params: Mapping[str, Any], perturb: Perturbation | Mapping[str, Any],
                 n_members: int, out_dir: str | Path, *, scheduler: str | None = None, workers: int = 2,
                 threads_per_worker: int = 1, processes: bool = True,
                 warmup_params: Mapping[str, Any] | None = None,
                 progress: Callable[[dict[str, Any]], None] | None = None, city: Any = None) -> EnsembleResult:
    """Run ``n_members`` perturbed members of ``kind`` on Dask (module docstring).

    Parameters
    ----------
    kind : str or twin.runkinds.RunKind
    base_params : mapping
        The base request of the kind.
    perturb : Perturbation or mapping
    n_members : int
    out_dir : path
        Gets ``members/``, ``members.zarr``, ``members.csv``, ``ensemble.json``.
    scheduler : str, optional
        Address of an existing scheduler (``tcp://host:8786``); its workers
        must see ``out_dir`` and the data. Default: a new LocalCluster.
    workers, threads_per_worker, processes : LocalCluster's shape (ignored with ``scheduler``).
        Keep one thread per worker process: members run the models' file I/O (netCDF4/HDF5,
        GDAL), which is not thread-safe; several threads in one process give a RuntimeWarning
        (measured: a member failed with an HDF error, others differed).
    warmup_params : mapping, optional
        A small request of the kind run once per worker before the members
        (compiles or loads the kernels); default: the worker only imports the kind.
    progress : callable(dict), optional
        ``{"phase", "done", "total", "failed", "member", "wall_s"}`` after each member.

    Returns
    -------
    EnsembleResult

    Raises
    ------
    twin.errors.ValidationError
        A bad perturbation or member, before any worker starts.
    """
    from distributed import as_completed

    from twin.runkinds import RunKind, get_kind

    k = kind if isinstance(kind, RunKind) else get_kind(kind)
    if not (isinstance(workers, int) and workers >= 1):
        raise ValidationError(f"workers={workers!r}: give a whole number >= 1")
    if not (isinstance(threads_per_worker, int) and threads_per_worker >= 1):
        raise ValidationError(f"threads_per_worker={threads_per_worker!r}: give a whole number >= 1")
    if scheduler is None and not processes and threads_per_worker > 1:
        warnings.warn("run_ensemble(processes=False, threads_per_worker>1): members share one process, and "
                      "netCDF4/HDF5 and GDAL are not thread-safe: members may fail or differ; use processes",
                      RuntimeWarning, stacklevel=2)
    p = perturbation(perturb)
    members = member_params(k, base_params, p, n_members, city=city)
    if warmup_params is not None:
        warmup_params = k.validate(warmup_params).model_dump()
    say = progress or (lambda _d: None)
    out = Path(out_dir)
    (out / MEMBERS_DIR).mkdir(parents=True, exist_ok=True)
    sink = _ZarrSink(out / ZARR_NAME, n_members)
    client, cluster = _client(scheduler, workers, threads_per_worker, processes)
    rows: list[dict[str, Any]] = [{}] * n_members
    try:
        say({"phase": "warming workers", "done": 0, "total": n_members, "failed": 0})
        t0 = time.perf_counter()
        warm = client.run(warm_worker, k.name, warmup_params, str(out / "warmup"))
        warm_s = time.perf_counter() - t0
        n_workers = len(warm)
        t0 = time.perf_counter()
        futures = {client.submit(run_member, k.name, m, members[m], str(out / MEMBERS_DIR / f"m{m:04d}"),
                                 k.compare, key=f"member-{m:04d}-{time.time_ns()}", pure=False): m
                   for m in range(n_members)}
        failed: list[dict[str, Any]] = []
        for n_done, fut in enumerate(as_completed(list(futures), loop=client.loop), start=1):
            m = futures[fut]
            try:
                r = fut.result()
                if r["ok"]:
                    sink.put(r)
            except Exception as exc:  # noqa: BLE001 - a lost worker or a member off the grid: reported
                r = {"member": m, "ok": False, "error": f"{type(exc).__name__}: {exc}", "wall_s": math.nan}
            if not r["ok"]:
                failed.append({"member": m, "params": members[m], "error": r["error"],
                               "traceback": r.get("traceback")})
            rows[m] = _row(m, members[m], p, r)
            fut.release()
            say({"phase": "members", "done": n_done, "total": n_members, "failed": len(failed), "member": m,
                 "ok": r["ok"], "wall_s": time.perf_counter() - t0, **({} if r["ok"] else {"error": r["error"]})})
        wall = time.perf_counter() - t0
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        sink.close()
    table = _write_table(rows, out / TABLE_NAME)
    res = EnsembleResult(out_dir=out, zarr=out / ZARR_NAME, table=table, manifest=out / MANIFEST_NAME,
                         rows=rows, failed=failed, wall_s=wall, warm_s=warm_s, workers=n_workers)
    _write_manifest(res, k, base_params, p, members, scheduler)
    say({"phase": "done", "done": n_members, "total": n_members, "failed": len(failed), "wall_s": wall})
    return res


def _row(m: int, params: Mapping[str, Any], p: Perturbation, r: Mapping[str, Any]) -> dict[str, Any]:
    """One line of ``members.csv``: member, status, the perturbed parameters, KPIs, wall and CPU time, error."""
    perturbed = [*(["rain_scale"] if "rain_scale" in params else ["rain_mm_h"] if p.rain_scale else []),
                 *(["peak_fraction"] if p.rain_timing else []), *sorted(p.params)]
    row: dict[str, Any] = {"member": m, "status": "ok" if r["ok"] else "failed"}
    row.update({f"param.{n}": params.get(n) for n in perturbed})
    row.update({f"kpi.{n}": v for n, v in (r.get("kpis") or {}).items()})
    row["wall_s"] = r["wall_s"]
    row["cpu_s"] = r.get("cpu_s")
    row["error"] = r.get("error", "")
    return row


def _write_table(rows: list[dict[str, Any]], path: Path) -> Path:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    front = [c for c in cols if c not in ("wall_s", "cpu_s", "error")]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*front, "wall_s", "cpu_s", "error"])
        w.writeheader()
        for r in rows:
            w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in w.fieldnames})
    return path


def _write_manifest(res: EnsembleResult, k: Any, base: Mapping[str, Any], p: Perturbation,
                    members: list[dict[str, Any]], scheduler: str | None) -> Path:
    from twin.pipeline import write_json

    return write_json({"kind": k.name, "variable": k.compare, "base": dict(base),
                       "perturbation": p.model_dump(exclude_none=True), "seed": p.seed,
                       "n_members": len(members), "scheduler": scheduler or "LocalCluster",
                       "workers": res.workers, "wall_s": res.wall_s, "warm_s": res.warm_s,
                       "members_per_hour": res.members_per_hour, "failed": res.failed,
                       "members": members}, res.manifest)


__all__ = ["Dist", "EnsembleResult", "Perturbation", "kpis", "member_params", "parse_dist", "perturbation",
           "run_ensemble", "run_member", "warm_worker"]
