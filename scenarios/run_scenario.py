"""Run a scenario file: check it, translate it, run it coupled, write its outputs (``twin scenario run``).

:func:`run_scenario` = :func:`scenarios.files.load_scenario` (every problem
listed, nothing runs on a bad file) -> :func:`scenarios.translate.translate`
-> :func:`scenarios.runner.run_coupled` with the scenario's files and hash in
the manifest -> :func:`scenarios.outputs.write_outputs`. :func:`resume_scenario`
finishes a run that stopped, from its last checkpoint, with the same outputs.

The manifest gains ``scenario_hash`` (:func:`scenarios.files.scenario_hash`)
and ``scenario`` (name, title, file, why each coupling runs, output options);
its ``inputs`` list the scenario file and every file it names, with sha256.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import SnapshotError

Progress = Callable[[dict[str, Any]], None]


def default_out_dir(name: str, root: str | Path = "runs") -> Path:
    """``runs/<scenario>_<UTC time>`` (a fresh directory name per run)."""
    return Path(root) / f"{name}_{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def run_scenario(scenario: Any, out_dir: str | Path, *, duration_s: float | None = None,
                 resolution_m: float | None = None, checkpoint_every_s: float | None = None,
                 map: bool | None = None, report: bool | None = None,
                 progress: Progress | None = None):
    """Run a scenario (a built-in name, a file, or a :class:`~scenarios.files.LoadedScenario`).

    Parameters
    ----------
    duration_s, resolution_m : float, optional
        Run only the start of the scenario / on another cell size (:func:`~scenarios.translate.translate`).
    checkpoint_every_s : float, optional
        Checkpoints for :func:`resume_scenario` (every enabled coupling needs save/restore).
    map, report : bool, optional
        Write ``map.html`` / ``report.html`` (default: the scenario's ``outputs``).

    Returns
    -------
    (scenarios.runner.CoupledRun, scenarios.translate.Translation)

    Raises
    ------
    scenarios.files.ScenarioError
        A bad scenario file (every problem listed; nothing ran).
    twin.errors.ValidationError
        A model no coupling runs, a name two couplings write, a bad config.
    """
    from scenarios.files import load_scenario
    from scenarios.outputs import scenario_outputs
    from scenarios.runner import run_coupled
    from scenarios.translate import translate

    loaded = scenario if hasattr(scenario, "requests") else load_scenario(scenario)
    tr = translate(loaded, duration_s=duration_s, resolution_m=resolution_m)
    sc = loaded.scenario
    opts = {"map": sc.outputs.map if map is None else bool(map),
            "report": sc.outputs.report if report is None else bool(report)}
    extra = {"scenario_hash": loaded.hash,
             "scenario": {"name": sc.name, "title": sc.title, "file": str(Path(loaded.path).resolve()),
                          "enabled": tr.reasons, "outputs": opts,
                          "scenario_duration_s": float(sc.time.duration)}}
    inputs = {"scenario": Path(loaded.path)} | tr.inputs
    run = run_coupled(tr.config, out_dir, progress=progress, checkpoint_every_s=checkpoint_every_s,
                      manifest_extra=extra, extra_inputs=inputs,
                      outputs=scenario_outputs(tr, progress=progress, **opts))
    return run, tr


def resume_scenario(out_dir: str | Path, *, progress: Progress | None = None):
    """Finish a scenario run that stopped, from its last checkpoint (the same files as a whole run).

    The scenario is read again from the file the manifest names; a file whose
    hash changed since is refused.

    Raises
    ------
    twin.errors.SnapshotError
        No manifest, not a scenario run, a changed scenario file, or no checkpoint.
    """
    from scenarios.files import load_scenario
    from scenarios.outputs import scenario_outputs
    from scenarios.runner import MANIFEST_NAME, resume_coupled
    from scenarios.translate import Translation, scenario_inputs

    out = Path(out_dir)
    path = out / MANIFEST_NAME
    if not path.is_file():
        raise SnapshotError(f"{out}: no {MANIFEST_NAME}; not a run directory (give the --out of a run)")
    man = json.loads(path.read_text(encoding="utf-8"))
    meta = man.get("scenario")
    if not isinstance(meta, dict):
        raise SnapshotError(f"{out}: not a scenario run (its manifest names no scenario); "
                            "resume it with scenarios.runner.resume_coupled")
    loaded = load_scenario(meta["file"])
    if loaded.hash != man.get("scenario_hash"):
        raise SnapshotError(f"{out}: the scenario file {meta['file']} changed since the run started "
                            f"(hash {loaded.hash[:12]} != {str(man.get('scenario_hash'))[:12]}); "
                            "run it again instead of resuming")
    from scenarios.runner import RunConfig

    tr = Translation(config=RunConfig.from_mapping(man["config"]), reasons=dict(meta["enabled"]),
                     scenario=loaded.scenario, base_dir=loaded.base_dir,
                     inputs=scenario_inputs(loaded.scenario, loaded.base_dir))
    run = resume_coupled(out, progress=progress,
                         outputs=scenario_outputs(tr, progress=progress, **meta.get("outputs", {})))
    return run, tr


__all__ = ["default_out_dir", "resume_scenario", "run_scenario"]
