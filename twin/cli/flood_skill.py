"""``twin flood skill``: the flood's skill at the waterlogging spots before and after terrain conditioning."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from twin.cli._util import user_errors


def _names(value: str | None) -> list[str] | None:
    return None if not value else [v.strip() for v in value.split(",") if v.strip()]


@click.command("skill")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for skill.json, skill.csv, skill.md and roc.png (created).")
@click.option("--storms", default=None, metavar="A,B",
              help="Storms of the study: 60mm_h_1h (60 mm/h for 1 h) and 2023-09-07_6h (the record storm, "
                   "6 h). Default: both.")
@click.option("--districts", default="Futian,Luohu", show_default=True, metavar="A,B",
              help="Districts of the run (English names).")
@click.option("--resolution", type=click.FloatRange(min=10.0), default=30.0, show_default=True,
              help="Cell size (m).")
@click.option("--false-alarm-rate", "far", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=0.2, show_default=True, help="Share of random land cells flagged at the hit rate's threshold.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=10), default=1000, show_default=True,
              help="Bootstrap resamples of the AUC's confidence intervals.")
def skill(out_dir, storms, districts, resolution, far, n_boot) -> None:
    """Score the flood forecast at the city's 206 waterlogging spots, once per conditioning step.

    For each storm the city flood model runs with the terrain as is, then
    +artefacts (deep small pits and one-cell spikes removed), +roads (OSM
    roads burned in, underpasses deeper, bridges and tunnels not) and
    +buildings (footprints as porosity/blocked cells, where the data reach
    the area). Each run is scored by the ROC AUC of the deepest water within
    100 m against random land cells, its Mann-Whitney p-value and bootstrap
    CI, and the hit rate at the false-alarm rate, over the run's area and
    over the part the road data cover. The spots are validation data: they
    choose nothing.

    Example: twin flood skill --out runs/skill --storms 60mm_h_1h --districts Futian --resolution 90
    """
    from physics.flood_skill_study import run_skill_study

    def say(message: str) -> None:
        click.echo(message, err=True)
        sys.stderr.flush()

    with user_errors():
        doc = run_skill_study(out_dir, storms=_names(storms), districts=_names(districts) or ["Futian", "Luohu"],
                              resolution=resolution, far=far, n_boot=n_boot, progress=say)
    from physics.flood_skill_study import skill_markdown

    click.echo(skill_markdown(doc))
    click.echo(f"wrote {out_dir}/skill.json, skill.csv, skill.md, roc.png")
