"""``twin fire ensemble``: many fire origins × growth rates on one building → ASET percentiles per storey.

The command around :func:`physics.fire_ensemble.fire_ensemble`: the inputs are checked before any member
runs, progress shows the members done, and the outputs are standard files: ``ensemble.nc`` (the whole
Dataset, xarray/NetCDF), ``storeys.csv`` (per storey: P10/P50/P90 of ASET and the probability of being
untenable by 10/20/30 min) and ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from twin.cli._util import echo_json, user_errors

FILES = "ensemble.nc, storeys.csv, summary.json"


def _origins(text: str):
    """``all`` → every storey (its first room); else ``F[:COMPARTMENT],...`` → [(F, COMPARTMENT|None), ...]."""
    if text.strip().lower() in ("all", "all floors"):
        return "all floors"
    out = []
    for part in text.split(","):
        floor, _, comp = part.strip().partition(":")
        try:
            out.append((int(floor), comp.strip() or None))
        except ValueError:
            raise click.BadParameter(f"{part.strip()!r}: give a storey index (0 = ground), optionally "
                                     f"':' and a compartment name, e.g. 10 or 10:flat B", param_hint="--origins") from None
    return out


def _growths(text: str):
    """Names stay names; numbers are t² alphas in kW/s²."""
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            out.append(float(part))
        except ValueError:
            out.append(part)
    return out


def _window(text: str):
    """``auto`` / ``none`` / ``B,A`` (storeys below, above the origin) → the ensemble's ``window=``."""
    t = text.strip().lower()
    if t in ("auto", "none"):
        return None if t == "none" else "auto"
    try:
        below, above = (int(x) for x in t.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r}: give auto, none or the storeys below,above the origin, e.g. 2,3",
                                 param_hint="--window") from None
    return below, above


def _describe(p: dict) -> str:
    if p.get("phase") == "members":
        failed = f", {p['failed']} failed" if p.get("failed") else ""
        return f"{p['done']} / {p['total']} members{failed}"
    return str(p.get("phase", ""))


def storey_table(ds):
    """Per storey: ASET percentiles and untenable probabilities of an ensemble Dataset, as a DataFrame."""
    import pandas as pd

    table = pd.DataFrame({"storey": ds["storey"].values, "refuge": ds["refuge"].values})
    for q in ds["percentile"].values:
        table[f"aset_p{int(q)}_s"] = ds["aset_percentile_s"].sel(percentile=q).values
    for th in ds["threshold"].values:
        table[f"p_untenable_{int(th) // 60}min"] = ds["p_untenable"].sel(threshold=th).values
    return table


@click.command("ensemble")
@click.argument("building", metavar="BUILDING")
@click.option("--origins", default="all", show_default=True, metavar="all|F[:ROOM],...",
              help="Origins: every storey (its first room), or storeys 0 = ground with an optional compartment.")
@click.option("--growths", default="slow,medium,fast,ultrafast", show_default=True, metavar="G,...",
              help="t² growth classes, or alphas in kW/s².")
@click.option("--members", type=click.IntRange(1), default=None,
              help="Draw this many (origin, growth) pairs at random (--seed) instead of all of them.")
@click.option("--duration", "duration_s", type=float, default=600.0, show_default=True,
              help="Simulated time of each member (s). 600 s gives the origin storey's ASET; 1800 s the "
                   "untenable probabilities by 20 and 30 min.")
@click.option("--dt", "dt_s", type=float, default=None, help="Members' time step (s); default the ensemble's 2 s.")
@click.option("--sprinklers", type=click.Choice(["on", "off", "building"]), default="building", show_default=True)
@click.option("--season", type=click.Choice(["summer", "winter"]), default="summer", show_default=True)
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True,
              help="Worker processes (Dask LocalCluster; 1 = in this process).")
@click.option("--window", "window", default="auto", show_default=True, metavar="auto|none|B,A",
              help="Run each member on the storeys B below to A above its origin (physics.fire_window; a member "
                   "whose window edges it reaches is rerun on a wider window, then the whole building). auto: 2,3 "
                   "in summer, 1,1 in winter (the stack effect's direction) on a building of 60 storeys or more, "
                   "else none; none: the whole building.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the draw of --members.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help=f"Output folder ({FILES}).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def ensemble(building, origins, growths, members, duration_s, dt_s, sprinklers, season, workers, window, seed,
             out_dir, as_json) -> None:
    """Run fires from many origins and growth rates on one building; ASET percentiles per storey.

    BUILDING is an example name (twin fire examples) or a fire building file. Every member is a
    deterministic run of the building (by default, on a tall building, of the storeys around its origin,
    checked against its edges: --window); the spread is over where the fire starts and how fast it grows.

    \b
    Example:
      twin fire ensemble tower_30_residential --duration 600 --workers 2 --out runs/t30_ens
      twin fire ensemble ping_an_finance_centre --origins 30,44,80 --growths fast,ultrafast --out runs/pafc_ens
    """
    from physics.fire_ensemble import ENSEMBLE_DT_S, fire_ensemble
    from twin.cli._util import PhaseBar

    kw = {"origins": _origins(origins), "growths": _growths(growths), "members": members, "duration_s": duration_s,
          "dt_s": ENSEMBLE_DT_S if dt_s is None else dt_s,
          "sprinklers": None if sprinklers == "building" else sprinklers == "on", "season": season,
          "workers": workers, "seed": seed, "window": _window(window)}
    with user_errors():
        with PhaseBar("Fire ensemble", _describe) as bar:
            def progress(p: dict) -> None:
                bar.update({**p, "fraction": p["done"] / p["total"] if p.get("total") else 0.0})

            ds = fire_ensemble(building, progress=progress, **kw)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(out_dir / "ensemble.nc")
    table = storey_table(ds)
    table.to_csv(out_dir / "storeys.csv", index=False, float_format="%.1f")
    summary = {"building": ds.attrs["building"], "members": int(ds.attrs["n_members"]),
               "members_ok": int(ds.attrs["n_ok"]), "duration_s": float(ds.attrs["duration_s"]),
               "dt_s": float(ds.attrs["dt_s"]), "season": ds.attrs["season"], "sprinklers": ds.attrs["sprinklers"],
               "workers": workers, "wall_s": float(ds.attrs["wall_s"]), "window": ds.attrs["window"],
               "members_windowed": int(ds.attrs["n_windowed"]), "window_fallbacks": int(ds.attrs["window_fallbacks"]),
               "storeys_untenable_in_any_member": [int(s) for s in table["storey"][
                   ds["aset_s"].notnull().any("member").values]],
               "files": FILES.split(", ")}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if as_json:
        echo_json(summary)
        return
    click.echo(f"{summary['members_ok']} of {summary['members']} members ran in {summary['wall_s']:.1f} s; "
               f"storeys untenable in some member: {summary['storeys_untenable_in_any_member'] or 'none'}")
    click.echo(f"wrote {out_dir}/ ({FILES})")


__all__ = ["ensemble", "storey_table"]
