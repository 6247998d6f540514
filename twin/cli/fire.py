"""``twin fire``: a fire in a tower — smoke, tenability and ASET per storey (the ``fire`` run kind).

Commands: ``run`` (:mod:`physics.fire_run` through the run pipeline; ``--evacuate`` runs the
``fire_evacuation`` kind of :mod:`scenarios.fire_evacuation` instead), ``check`` (a building
file's summary), ``examples`` (the example buildings), ``ensemble`` (:mod:`twin.cli.fire_ensemble`). The live commands ``watch`` and ``drill``
of :mod:`twin.cli.fire_live` join the group when that module imports.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from twin.cli._util import PhaseBar, echo_json, run_output_options, run_store, user_errors

FILES = ("fire.nc, events.jsonl, aset.csv, layers.png, tenability.png, hrr.png, summary.json, report.html, "
         "map.html (with --evacuate also the evacuation's files)")
EVACUATION_KIND = "fire_evacuation"


def _describe(p: dict) -> str | None:
    """The fire run's progress: simulated time after ignition and storeys untenable so far."""
    if "sim_s" not in p or p.get("phase", "") != "running":
        return None
    what = f"{p['sim_s']:.0f} / {p['duration_s']:.0f} s after ignition"
    if "untenable_storeys" in p:
        what += f", {p['untenable_storeys']} storey(s) untenable"
    return what


@click.group("fire")
def fire() -> None:
    """High-rise fire: smoke up stairs and shafts, tenability and ASET per storey (two-zone model).

    \b
      twin fire examples
      twin fire check ping_an_finance_centre
      twin fire run tower_30_residential --floor 10 --growth fast --sprinklers off --duration 1800 --out runs/t30
      twin fire ensemble tower_30_residential --duration 600 --workers 2 --out runs/t30_ens
    """


def _hint(field: str) -> str:
    return {"building": "BUILDING", "duration_s": "--duration", "dt_s": "--dt", "record_every_s": "--record-every",
            "t_outside_c": "--t-outside"}.get(field, "--" + field.replace("_", "-"))


def _evacuation_kind():
    """The ``fire_evacuation`` run kind (``scenarios/fire_evacuation.py``), or a usage error saying it is not there."""
    from twin.errors import ValidationError
    from twin.runkinds import get_kind

    try:
        return get_kind(EVACUATION_KIND)
    except ValidationError as exc:
        raise click.UsageError(f"--evacuate needs the run kind {EVACUATION_KIND!r} (scenarios/fire_evacuation.py), "
                               f"which is not available: {exc}") from None


@fire.command("run")
@click.argument("building", metavar="BUILDING")
@click.option("--floor", type=int, required=True, help="Storey of the origin, 0 = ground (L1).")
@click.option("--compartment", default=None, metavar="NAME",
              help="Room of origin on that floor, e.g. 'flat A' (default: the floor's first room).")
@click.option("--growth", default="fast", show_default=True, metavar="RATE",
              help="t² growth: slow, medium, fast, ultrafast, or alpha in kW/s² (0.001-1).")
@click.option("--sprinklers", type=click.Choice(["on", "off", "building"]), default="building", show_default=True,
              help="Sprinklers operate, fail/absent, or as the building file says.")
@click.option("--season", type=click.Choice(["summer", "winter"]), default=None,
              help="Outside air: summer 33 °C (Shenzhen July mean max) or winter 10 °C [default: summer].")
@click.option("--t-outside", "t_outside_c", type=float, default=None, metavar="C",
              help="Outside air temperature (°C, -20-50) instead of --season.")
@click.option("--duration", "duration_s", type=float, default=3600.0, show_default=True,
              help="Simulated time after ignition (s), 10 s to 6 h.")
@click.option("--dt", "dt_s", type=float, default=1.0, show_default=True, help="Zone-model time step (s), 0.05-5.")
@click.option("--record-every", "record_every_s", type=float, default=10.0, show_default=True,
              help="Interval of the time series and map frames (s), a whole number of steps.")
@click.option("--threads", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Threads of the zone model's kernel: the same results; faster only on idle cores (on busy "
                   "ones each parallel region of a step waits for a descheduled thread, so it is opt-in).")
@click.option("--evacuate", is_flag=True,
              help="Evacuate the building in the same run: smoke slows people, untenable stairs close, doors "
                   "held open change the smoke (run kind fire_evacuation); gives RSET - ASET per floor.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="With --evacuate: seed of the evacuation's random draws.")
@click.option("--door-hold", type=click.Choice(["passing", "closed", "open"]), default="passing",
              show_default=True, help="With --evacuate: stair doors held open by people passing, always closed "
                                      "or always open.")
@click.option("--city", "city_name", default=None, metavar="NAME",
              help="City whose districts, coast and metro the map draws around the tower (e.g. shenzhen).")
@run_output_options(FILES, map_help="Also write map.html (offline; the storeys coloured by tenability on the "
                                    "time slider, 3-D).")
def run(building, floor, compartment, growth, sprinklers, season, t_outside_c, duration_s, dt_s, record_every_s,
        threads, evacuate, seed, door_hold, city_name, out_dir, with_report, with_map, as_json, store_dir) -> None:
    """Simulate a fire on one storey of a tower and write ASET per storey, events, plots and maps.

    BUILDING is an example name (twin fire examples) or a fire building file (.toml/.json; see
    physics/fire_building.py). The building is checked before anything runs.

    \b
    Example:
      twin fire run ping_an_finance_centre --floor 44 --growth fast --sprinklers off --duration 1800 --out runs/pafc
    """
    from twin import pipeline
    from twin.errors import RequestError
    from twin.runkinds import get_kind

    params = {"building": building, "floor": floor, "compartment": compartment, "growth": growth,
              "sprinklers": sprinklers, "season": season, "t_outside_c": t_outside_c, "duration_s": duration_s,
              "dt_s": dt_s, "record_every_s": record_every_s}
    kind = get_kind("fire")
    if evacuate:
        if threads != 1:  # the fire_evacuation kind steps its fire on one thread
            raise click.UsageError(f"--threads {threads}: not with --evacuate (its run kind steps the fire on one "
                                   "thread)")
        kind = _evacuation_kind()
        fields = kind.request.model_fields
        params.update({k: v for k, v in (("seed", seed), ("door_hold", door_hold)) if k in fields})
    else:
        params["threads"] = threads
    with user_errors():
        try:  # the building, floor and compartment are checked here, before anything runs
            req = pipeline.check(kind, params)
        except RequestError as exc:
            raise click.BadParameter(" ".join(str(exc).split()), param_hint=_hint(exc.field)) from None
        if with_map:
            from physics.fire_run import map_available

            if not map_available():
                click.echo("note: the fire map layer (viz/layers/fire_building.py) is not installed: no map.html",
                           err=True)
                with_map = False
        city = None
        if with_map and city_name:
            from twin.city import City

            city = City(city_name)
        with PhaseBar(kind.title, _describe) as bar, run_store(store_dir) as store:
            res = pipeline.run(kind, req, out_dir, store=store, city=city, progress=bar.update, report=with_report,
                               map=with_map)
    s = res.summary
    if as_json:
        echo_json(pipeline.clean_json(s))
        return
    _echo_summary(s)
    click.echo(f"done in {res.wall_s:.1f} s; wrote {out_dir}/ ({', '.join(Path(p).name for p in res.paths.values())})")


def _t(v) -> str:
    return "never" if v is None else f"{v:.0f} s ({v / 60.0:.1f} min)"


def _echo_summary(s: dict) -> None:
    """The headline of a fire run's summary (the keys of :func:`physics.fire_io.summarise` it has)."""
    fire_s = s.get("fire", s)  # a fire-evacuation summary may nest the fire's
    o = fire_s.get("origin")
    if o:
        click.echo(f"{fire_s.get('building')}: fire in {o.get('compartment')} on {o.get('floor_label')} "
                   f"(storey {o.get('storey')}), {fire_s.get('growth')} growth, sprinklers {fire_s.get('sprinklers')}")
    for key, what in (("first_detector_s", "first detector"), ("first_sprinkler_s", "first sprinkler"),
                      ("flashover_s", "flashover"), ("first_untenable_s", "first storey untenable")):
        if key in fire_s:
            click.echo(f"  {what}: {_t(fire_s[key])}")
    by_min = {k: v for k, v in (fire_s.get("storeys_untenable_by_min") or {}).items() if v is not None}
    if by_min:
        click.echo("  storeys untenable by " + ", ".join(f"{m} min: {v}" for m, v in by_min.items()))
    rows = fire_s.get("aset_first_storeys") or []
    if rows:
        click.echo("  ASET: " + ", ".join(f"{r['floor_label']} {r['aset_s']:.0f} s" for r in rows))
    if fire_s.get("run_time_s") is not None:
        click.echo(f"  simulation: {fire_s['run_time_s']:.1f} s wall time"
                   + (f" ({fire_s['faster_than_real_time']:.0f}x real time)" if fire_s.get("faster_than_real_time")
                      else ""))
    _echo_evacuation(s)


def _echo_evacuation(s: dict) -> None:
    """The evacuation's headline of a fire-evacuation summary (the keys it has)."""
    if "rset_s" in s:
        r = s["rset_s"]
        line = f"  RSET with smoke: {_t(r) if r is not None else 'not reached (people still inside at the end)'}"
        if "rset_uncoupled_s" in s:
            ru = s["rset_uncoupled_s"]
            line += f"; without smoke effects: {_t(ru) if ru is not None else 'not reached'}"
        click.echo(line)
    if "people_caught" in s:
        more = (f" (without smoke effects {s['people_caught_uncoupled']})" if "people_caught_uncoupled" in s else "")
        click.echo(f"  people caught on their floor at its ASET: {s['people_caught']}{more}")
    if s.get("floors_rset_after_aset"):
        click.echo("  floors still occupied after their ASET: " + ", ".join(f"L{f + 1}"
                                                                         for f in s["floors_rset_after_aset"]))
    m = s.get("smallest_margin")
    if isinstance(m, dict) and m.get("margin_s") is not None:
        bound = "at most " if m.get("is_bound") else ""
        click.echo(f"  smallest margin ASET - RSET: {bound}{m['margin_s']:.0f} s on {m.get('level', m.get('floor'))}")


# ----------------------------------------------------------------------------- check, examples
def building_summary(spec, network) -> dict:
    """What ``twin fire check`` prints: storeys, refuge floors, compartments, vents, shafts, systems."""
    import numpy as np

    from physics.fire_network import COMPARTMENT_KINDS, VENT_KINDS

    kinds = [COMPARTMENT_KINDS[k] for k in network.kind]
    vent_kinds = [VENT_KINDS[k] for k in network.vent_kind]
    top = spec.storey_base_m()[-1] + spec.storey_heights_m()[-1]
    f = spec.fire
    shafts: dict[str, tuple[str, int, int]] = {}
    for i, name in enumerate(network.names):
        if kinds[i] in ("stair", "lift", "smoke_shaft"):
            key, s = name.split("/", 1)[1], int(network.storey[i])
            kind, lo, hi = shafts.get(key, (kinds[i], s, s))
            shafts[key] = (kind, min(lo, s), max(hi, s))
    rooms_by_floor = {}
    for s in range(spec.n_storeys):
        rooms_by_floor[s] = [network.names[i].split("/", 1)[1] for i in network.on_storey(s) if kinds[i] == "room"]
    typical = max(rooms_by_floor.values(), key=len) if rooms_by_floor else []
    return {
        "name": spec.name, "storeys": spec.n_storeys, "top_of_storeys_m": round(float(top), 1),
        "architectural_height_m": f.architectural_height_m,
        "storey_height_m": [round(float(np.min(spec.storey_heights_m())), 2),
                            round(float(np.max(spec.storey_heights_m())), 2)],
        "refuge_floors": spec.refuge_floors(), "occupancy": f.occupancy,
        "compartments": network.n_compartments,
        "compartments_by_kind": {k: kinds.count(k) for k in COMPARTMENT_KINDS if kinds.count(k)},
        "rooms_on_a_typical_floor": typical,
        "wall_vents": network.n_vents, "wall_vents_by_kind": {k: vent_kinds.count(k) for k in VENT_KINDS
                                                              if vent_kinds.count(k)},
        "ceiling_vents": network.n_vvents,
        "shafts": {k: {"kind": v[0], "storeys": [v[1], v[2]]} for k, v in shafts.items()},
        "sprinklers": f.sprinklers.installed, "detectors": f.detectors.kind if f.detectors.installed else None,
        "location": None if spec.location is None else {"lon": spec.location.lon, "lat": spec.location.lat,
                                                        "label": spec.location.label},
        "sources": len(f.sources), "assumptions": len(f.assumptions),
    }


@fire.command("check")
@click.argument("building", metavar="BUILDING")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def check(building, as_json) -> None:
    """Check a fire building file (or example) and print its summary; nothing runs.

    Every problem of a bad file is listed at once, each with its place in the file.
    """
    from physics.fire_building import build_network
    from physics.fire_run import load_building
    from twin.errors import RequestError

    with user_errors():
        try:
            spec = load_building(building)
        except RequestError as exc:
            raise click.ClickException(" ".join(str(exc).split())) from None
        s = building_summary(spec, build_network(spec))
    if as_json:
        echo_json(s)
        return
    click.echo(f"{s['name']}: {s['storeys']} storeys (L1-L{s['storeys']}, index 0-{s['storeys'] - 1}), top of the "
               f"storeys {s['top_of_storeys_m']} m, storey heights {s['storey_height_m'][0]}-{s['storey_height_m'][1]} m")
    click.echo("  refuge floors: " + (", ".join(f"L{r + 1}" for r in s["refuge_floors"]) or "none"))
    click.echo(f"  compartments: {s['compartments']} ("
               + ", ".join(f"{v} {k}" for k, v in s["compartments_by_kind"].items()) + ")")
    click.echo(f"  rooms on a typical floor: {', '.join(s['rooms_on_a_typical_floor'])}")
    click.echo(f"  wall vents: {s['wall_vents']} (" + ", ".join(f"{v} {k}" for k, v in
                                                             s["wall_vents_by_kind"].items()) + f"); ceiling vents: "
               f"{s['ceiling_vents']}")
    click.echo("  shafts: " + "; ".join(f"{k} ({v['kind']}, L{v['storeys'][0] + 1}-L{v['storeys'][1] + 1})"
                                        for k, v in s["shafts"].items()))
    click.echo(f"  sprinklers: {'installed' if s['sprinklers'] else 'none'}; detectors: {s['detectors'] or 'none'}; "
               f"occupancy {s['occupancy']}")
    click.echo(f"  {s['sources']} source(s), {s['assumptions']} stated assumption(s) in the file")


@fire.command("examples")
def examples() -> None:
    """List the example buildings (use the name as BUILDING)."""
    from physics.fire_building import EXAMPLES, build_network, load_fire_building

    with user_errors():
        for name, path in sorted(EXAMPLES.items()):
            spec = load_fire_building(path)
            net = build_network(spec)
            top = spec.storey_base_m()[-1] + spec.storey_heights_m()[-1]
            refuge = ", ".join(f"L{r + 1}" for r in spec.refuge_floors()) or "none"
            click.echo(f"{name}: {spec.name}; {spec.n_storeys} storeys, {top:.1f} m, {net.n_compartments} "
                       f"compartments, refuge floors {refuge}")
            click.echo(f"    {path}")


def _attach_live_commands() -> None:
    """Add ``watch`` and ``drill`` of :mod:`twin.cli.fire_live` when that module imports."""
    try:
        from twin.cli import fire_live
    except ImportError:
        return
    except Exception as exc:  # noqa: BLE001 - a broken module must not take ``twin fire`` down
        warnings.warn(f"twin fire: twin/cli/fire_live.py failed to load: {exc}", RuntimeWarning, stacklevel=2)
        return
    for name in ("watch", "drill"):
        cmd = getattr(fire_live, name, None)
        if isinstance(cmd, click.Command):
            fire.add_command(cmd, name)


_attach_live_commands()


def _attach_ensemble_command() -> None:
    """Add ``ensemble`` (:mod:`twin.cli.fire_ensemble`)."""
    from twin.cli.fire_ensemble import ensemble

    fire.add_command(ensemble, "ensemble")


_attach_ensemble_command()

__all__ = ["building_summary", "fire"]
