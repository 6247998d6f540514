"""The skill study: the flood's skill at the waterlogging spots before and after each conditioning step.

:func:`run_skill_study` runs the city flood model once per storm and per
cumulative conditioning (none -> +artefacts -> +roads -> +buildings; a
step whose data do not reach the run's area is reported, not run) and
scores each run with :func:`physics.flood_skill.spot_skill` twice: over the
run's area (the plain figure) and over the part of it the road data cover
(the conditioning comparison: outside it the roads step changes nothing).
It writes ``skill.json``, ``skill.csv``, ``skill.md`` (a markdown table) and
``roc.png`` (ROC curves, one panel per storm and area).

Reporting only: the spots choose nothing (see :mod:`physics.hitrate`).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from physics.flood_skill import (
    FALSE_ALARM_RATE,
    N_BOOT,
    RADIUS_M,
    paired_auc_difference,
    spot_skill,
)
from physics.flood_terrain import STEPS
from twin.errors import ValidationError

#: spots whose name says bridge, bridge opening, underpass or tunnel (桥, 桥洞, 下穿, 隧道): a subset reported apart
UNDERPASS_WORDS = "桥|下穿|隧|涵"
#: name -> (storm argument of city_flood_setup, hours)
STUDY_STORMS = {"60mm_h_1h": (60.0, 1.0), "2023-09-07_6h": ("2023-09-07", 6.0)}
STORM_TITLES = {"60mm_h_1h": "60 mm/h for 1 h", "2023-09-07_6h": "record storm of 2023-09-07, 6 h"}
AREAS = ("run_area", "roads_coverage", "run_area_underpass_named", "buildings_coverage")
AREA_TITLES = {"run_area": "spots in the run", "roads_coverage": "spots in the road data's area",
               "run_area_underpass_named": "spots named as underpasses, bridges, tunnels or culverts",
               "buildings_coverage": "spots in the buildings data's area"}
CONFIGS = (("none", ()), ("+artefacts", ("artefacts",)), ("+roads", ("artefacts", "roads")),
           ("+buildings", ("artefacts", "roads", "buildings")))


def _storms(names: Sequence[str] | None) -> dict:
    names = list(STUDY_STORMS) if not names else list(names)
    bad = [n for n in names if n not in STUDY_STORMS]
    if bad:
        raise ValidationError(f"storm {bad[0]!r}: the study's storms are {list(STUDY_STORMS)}")
    return {n: STUDY_STORMS[n] for n in names}


def _max_depth(ds):
    return ds["max_depth"].assign_attrs(crs=ds.attrs["crs"], transform=ds.attrs["transform"])


def _changed_cells(setup) -> dict:
    return {r["step"]: r["cells_changed"] for r in setup["context"]["conditioning"]["reports"]}


def run_skill_study(out_dir, *, storms: Sequence[str] | None = None,
                    districts: Sequence[str] = ("Futian", "Luohu"), resolution: float = 30.0,
                    far: float = FALSE_ALARM_RATE, radius_m: float = RADIUS_M, seed: int = 0,
                    n_boot: int = N_BOOT, progress: Callable[[str], None] | None = None) -> dict:
    """Run the study and write its table (see the module docstring); returns the JSON document.

    Parameters
    ----------
    out_dir : path
        Folder for skill.json, skill.csv, skill.md, roc.png (created).
    storms : names of :data:`STUDY_STORMS` or None (both)
    districts, resolution
        The run's area and cell size (m).
    far, radius_m, seed, n_boot
        Of :func:`physics.flood_skill.spot_skill` (``n_boot`` also of the paired AUC differences).
    progress : callable(str) or None
        Told what runs next and what it gave.
    """
    from physics.flood_city import city_flood_setup, run_city_flood
    from physics.flood_terrain import coverage, load_road_ways
    from twin.city import City

    say = progress or (lambda _m: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    city = City("shenzhen")
    points = city.vector("waterlogging")
    named = points[points["location"].astype(str).str.contains(UNDERPASS_WORDS)]
    rows, curves, base = [], {}, {}
    roads_cover = build_cover = None
    for sname, (storm, hours) in _storms(storms).items():
        prev = None
        for label, steps in CONFIGS:
            setup = city_flood_setup(city, resolution=resolution, districts=list(districts), storm=storm,
                                     hours=hours, conditioning=steps)
            ctx = setup["context"]
            if roads_cover is None:
                roads_cover = coverage(load_road_ways(city, ctx["crs"])).intersection(ctx["outline"])
                build_cover = _buildings_cover(city, ctx)
            changed = _changed_cells(setup)
            if steps and changed.get(steps[-1], 0) == 0 and prev is not None:
                say(f"{sname} {label}: the step changes no cell in {ctx['label']} (no data there): not run")
                rows.append(prev | {"conditioning": label, "steps": list(steps), "run": False,
                                    "cells_changed": changed, "note": f"{steps[-1]}: no data in the area"})
                continue
            say(f"{sname} {label}: running {ctx['label']} at {resolution:g} m, {hours:g} h")
            t0 = time.perf_counter()
            ds = run_city_flood(setup)
            wall = time.perf_counter() - t0
            md = _max_depth(ds)
            row = {"storm": sname, "conditioning": label, "steps": list(steps), "run": True,
                   "cells_changed": changed, "wall_s": wall, "max_depth_m": float(np.nanmax(md.values))}
            row.update(steps_taken=int(ds.attrs.get("steps", 0)),
                       model_wall_s=float(ds.attrs.get("model_wall_s", float("nan"))))
            md.astype("float32").to_netcdf(out / f"max_depth_{sname}_{label.strip('+')}.nc")
            areas = [("run_area", ctx["outline"], points), ("roads_coverage", roads_cover, points),
                     ("run_area_underpass_named", ctx["outline"], named)]
            if build_cover is not None:
                areas.append(("buildings_coverage", build_cover, points))
            for area, within, pts in areas:
                try:
                    sk = spot_skill(md, pts, within=within, radius_m=radius_m, far=far, seed=seed, curve=True,
                                    scores=True, n_boot=n_boot)
                except ValidationError:  # no spot of this subset in the area
                    row[area] = None
                    continue
                curves[(sname, area, label)] = (sk.pop("roc_fpr"), sk.pop("roc_tpr"))
                sc = (sk.pop("spot_scores"), sk.pop("random_scores"))
                if label == "none":
                    base[(sname, area)] = sc
                else:
                    sk["vs_none"] = paired_auc_difference(*base[(sname, area)], *sc, seed=seed,
                                                           n_boot=n_boot, allow_unpaired=True)
                row[area] = sk
            say(f"{sname} {label}: AUC {row['run_area']['auc']:.3f} (run area), "
                f"{row['roads_coverage']['auc']:.3f} (road data area), {wall:.0f} s")
            rows.append(row)
            prev = row
    doc = {"districts": list(districts), "resolution_m": float(resolution), "radius_m": float(radius_m),
           "false_alarm_rate": float(far), "seed": int(seed), "n_boot": int(n_boot), "steps_order": list(STEPS),
           "roads_coverage_bounds": [float(b) for b in roads_cover.bounds] if roads_cover is not None else None,
           "rows": rows,
           "note": "validation data (2019 waterlogging spots) used for reporting only; no parameter is tuned"}
    (out / "skill.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
    _write_csv(out / "skill.csv", rows)
    (out / "skill.md").write_text(skill_markdown(doc))
    _plot(out / "roc.png", curves, rows)
    return doc


def _buildings_cover(city, ctx):
    """The building data's bounding box inside the run's outline, or None (no data, or none in the area)."""
    from physics.flood_terrain import coverage, load_buildings
    from twin.errors import DataMissingError

    try:
        box = coverage(load_buildings(city, ctx["crs"]))
    except DataMissingError:
        return None
    area = None if box is None else box.intersection(ctx["outline"])
    return None if area is None or area.is_empty else area


def _flat(rows):
    for r in rows:
        for area in AREAS:
            s = r.get(area)
            if s is None:
                continue
            vs = s.get("vs_none") or {"delta_auc": 0.0, "delta_ci95": [0.0, 0.0], "p_not_better": float("nan")}
            yield {"storm": r["storm"], "conditioning": r["conditioning"], "area": area, "run": r["run"],
                   "auc": s["auc"], "auc_ci_lo": s["auc_ci95"][0], "auc_ci_hi": s["auc_ci95"][1],
                   "mannwhitney_p": s["mannwhitney_p"], "hit_rate": s["hit_rate"],
                   "false_alarm_rate": s["false_alarm_rate_actual"], "threshold_m": s["threshold_m"],
                   "n_spots": s["n_spots"], "n_random": s["n_random"],
                   "median_score_spots_m": s["median_score_spots_m"],
                   "median_score_random_m": s["median_score_random_m"],
                   "delta_auc_vs_none": vs["delta_auc"], "delta_ci_lo": vs["delta_ci95"][0],
                   "delta_ci_hi": vs["delta_ci95"][1], "p_not_better": vs["p_not_better"],
                   "paired": vs.get("paired", True)}


def _write_csv(path: Path, rows) -> None:
    flat = list(_flat(rows))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)


def skill_markdown(doc: dict) -> str:
    """The study's table in markdown (one row per storm, conditioning and area)."""
    far = doc["false_alarm_rate"]
    lines = [f"| storm | conditioning | area | spots | AUC (95 % CI) | Mann-Whitney p | hit rate at {far:.0%} "
             "false alarms | ΔAUC vs none (paired 95 % CI; p not better) | median score spots / random (m) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in _flat(doc["rows"]):
        delta = "—" if f["conditioning"] == "none" else (
            f"{f['delta_auc_vs_none']:+.3f} ({f['delta_ci_lo']:+.3f} to {f['delta_ci_hi']:+.3f}; "
            f"{f['p_not_better']:.2f}{'' if f['paired'] else '; unpaired'})")
        lines.append(f"| {f['storm']} | {f['conditioning']}{'' if f['run'] else ' (not run: no data)'} | "
                     f"{f['area']} | {f['n_spots']} | {f['auc']:.3f} ({f['auc_ci_lo']:.3f}-{f['auc_ci_hi']:.3f}) | "
                     f"{f['mannwhitney_p']:.2g} | {f['hit_rate']:.2f} | {delta} | "
                     f"{f['median_score_spots_m']:.2f} / {f['median_score_random_m']:.2f} |")
    return "\n".join(lines) + "\n"


def _plot(path: Path, curves: dict, rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    storms = list(dict.fromkeys(r["storm"] for r in rows))
    areas = [a for a in AREAS if any(ca == a for (_s, ca, _l) in curves)]
    fig, axes = plt.subplots(len(areas), len(storms), figsize=(5 * len(storms), 4.5 * len(areas)), squeeze=False)
    for j, s in enumerate(storms):
        for i, a in enumerate(areas):
            ax = axes[i][j]
            for (cs, ca, label), (fpr, tpr) in curves.items():
                if cs == s and ca == a:
                    row = next(r for r in rows if r["storm"] == s and r["conditioning"] == label)
                    ax.plot(fpr, tpr, label=f"{label} (AUC {row[a]['auc']:.3f})")
            ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
            ax.set(title=f"{STORM_TITLES.get(s, s)}: {AREA_TITLES.get(a, a.replace('_', ' '))}", xlabel="false-alarm rate (random land cells)",
                   ylabel="hit rate (waterlogging spots)", xlim=(0, 1), ylim=(0, 1))
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
