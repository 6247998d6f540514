"""``twin compare RUN_A RUN_B --out DIR``: difference maps, a KPI table and the A | B map of two runs of one kind."""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import echo_json, status, user_errors


def _thresholds(values: tuple[str, ...]) -> dict[str, float]:
    """``VAR=VALUE`` options as a dict (a malformed one is a usage error naming it)."""
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{item!r}: give VAR=VALUE, e.g. max_depth=0.1",
                                     param_hint="--threshold") from None
    return out


@click.command("compare")
@click.argument("run_a", metavar="RUN_A", type=click.Path(exists=True, path_type=Path))
@click.argument("run_b", metavar="RUN_B", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: compare.nc (runs on a grid), compare.csv, compare.json, map.html, compare.html.")
@click.option("--city", "city_name", default="auto", show_default=True, metavar="NAME",
              help="City whose districts, coast and metro the maps draw; 'none' for none; 'auto': shenzhen "
                   "unless run A is on a plain DEM.")
@click.option("--variable", "variables", multiple=True, metavar="VAR",
              help="Grid variable to difference (repeatable) instead of the kind's compare variable and the "
                   "other result grids both runs have.")
@click.option("--threshold", "thresholds", multiple=True, metavar="VAR=VALUE",
              help="Threshold of 'B exceeds A' for a variable (repeatable); default by units: "
                   "0.05 m, 60 s, 0.05 for a ratio.")
@click.option("--map/--no-map", "write_map", default=True, show_default=True,
              help="Also write map.html (split view A | B, difference toggle).")
@click.option("--report/--no-report", default=True, show_default=True, help="Also write compare.html.")
@click.option("--json", "as_json", is_flag=True, help="Print compare.json to stdout.")
def compare(run_a, run_b, out_dir, city_name, variables, thresholds, write_map, report, as_json) -> None:
    """Compare two finished runs of one kind: B − A difference maps, a KPI table, the A | B map.

    RUN_A and RUN_B are --out folders of `twin <kind> run` (or their main .nc file); both of one
    kind (flood, slope, evacuate district/building/room, dispatch). A is the reference: differences
    are B − A on A's grid (B resampled onto it, nearest cell, when the grids differ).

    Example: twin compare runs/futian runs/futian_drain60 --out runs/compare_drain
    """
    from scenarios.compare import compare_runs

    city = None if city_name.lower() == "none" else city_name
    with user_errors():
        with status("comparing the runs"):
            cmp = compare_runs(run_a, run_b, out_dir, city=city, thresholds=_thresholds(thresholds),
                               variables=list(variables) or None, map=write_map, report=report)
    if as_json:
        echo_json(cmp.to_json())
        return
    _print(cmp)


def _print(cmp) -> None:
    from rich.console import Console
    from rich.table import Table

    from scenarios.compare import number_text as _num

    console = Console()
    console.print(cmp.title)
    for r in cmp.requests:
        console.print(f"  request {r['field']}: A {r['a']!r}, B {r['b']!r}")
    t = Table("KPI", "A", "B", "B − A", "change")
    for r in cmp.kpis:
        rel = r["relative_change"]
        t.add_row(r["label"], _num(r["a"]), _num(r["b"]), _num(r["b_minus_a"]),
                  "–" if rel is None else f"{100 * rel:+.1f} %")
    console.print(t)
    if cmp.grid.get("resampled"):
        console.print(cmp.grid["resampled"])
    for name, st in cmp.stats.items():
        units = cmp.differences[name].attrs.get("units", "")
        area = "" if st["area_b_above_km2"] is None else (
            f" ({st['area_b_above_km2']:.3g} km² / {st['area_b_below_km2']:.3g} km²)")
        console.print(f"{name} B − A: min {_num(st['min'])}, max {_num(st['max'])} {units}; "
                      f"B above / below A by > {st['threshold']:g} {units} on {st['cells_b_above']} / "
                      f"{st['cells_b_below']} cells{area}")
    if not cmp.differences:
        console.print("no result grid to difference: no difference map; map.html shows A | B side by side")
    files = ", ".join(p.name for p in cmp.paths.values())
    console.print(f"wrote {cmp.paths['json'].parent}/ ({files})")


COMMAND = compare
