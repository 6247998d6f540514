"""Two-word command names group run kinds into a family: ``twin <family> <member>``.

Throwaway kinds are registered here (and unregistered after): ``toyfam a``
made from its request schema, ``toyfam b`` with its own command called
otherwise, and colliding names (a module command, a one-word kind).
"""

from __future__ import annotations

import json

import click
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field

from twin import runkinds
from twin.cli import KindFamily, main
from twin.runkinds import RunKind, RunOutputs


class CountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: int = Field(default=3, ge=1, le=100, description="Number of steps")


def _run(req, ctx):
    for k in range(req.steps):
        ctx.report(k + 1, req.steps)
    return xr.Dataset({"count": ("step", np.arange(1, req.steps + 1))})


def _write(ds, out_dir, req, ctx):
    path = out_dir / "count.nc"
    ds.to_netcdf(path)
    return RunOutputs(paths={"netcdf": path}, summary={"total": int(ds["count"].sum())})


def _layers(ds, *, warp=None, max_px=None):
    return []


def _own_command() -> click.Command:
    @click.command("anything", help="Count with its own command.")
    @click.option("--steps", type=int, default=2)
    def cmd(steps: int) -> None:
        click.echo(f"own command counted {steps}")

    return cmd


def _kind(name: str, title: str, cli_name: str, command=None) -> RunKind:
    return RunKind(name=name, title=title, request=CountRequest, run=_run, write=_write, layers=_layers,
                   output="count.nc", cli_name=cli_name, command=command)


@pytest.fixture
def family():
    """``toyfam a`` (schema-made) and ``toyfam b`` (own command); unregistered afterwards."""
    names = ["toyfam_a", "toyfam_b"]
    runkinds.register_kind(_kind("toyfam_a", "Toy count A", "toyfam a"))
    runkinds.register_kind(_kind("toyfam_b", "Toy count B", "toyfam b", command=_own_command))
    yield names
    for n in names:
        runkinds.unregister_kind(n)


def test_twin_help_lists_the_family_with_its_members_titles(family):
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.strip().startswith("toyfam"))
    assert "Toy count A" in line and "Toy count B" in line
    assert "toyfam a" not in res.output  # members are not top-level commands


def test_family_help_lists_members_and_titles(family):
    res = CliRunner().invoke(main, ["toyfam", "--help"])
    assert res.exit_code == 0, res.output
    rows = [ln.split() for ln in res.output.splitlines()]
    assert ["twin", "toyfam", "a", "Toy", "count", "A"] in rows and ["twin", "toyfam", "b", "Toy", "count", "B"] in rows
    commands = res.output.split("Commands:")[1].split()
    assert commands[0] == "a" and "b" in commands
    assert isinstance(main.get_command(click.Context(main), "toyfam"), KindFamily)


def test_member_made_from_the_schema_is_the_run_command(family, tmp_path):
    res = CliRunner().invoke(main, ["toyfam", "a", "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage: main toyfam a [OPTIONS]" in res.output or "toyfam a [OPTIONS]" in res.output
    assert "--steps" in res.output and "--out" in res.output
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["toyfam", "a", "--out", str(out), "--steps", "4",
                                    "--no-report", "--no-map", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["total"] == 1 + 2 + 3 + 4
    assert (out / "count.nc").exists() and (out / "summary.json").exists()
    bad = CliRunner().invoke(main, ["toyfam", "a", "--out", str(tmp_path / "bad"), "--steps", "0"])
    assert bad.exit_code != 0 and "steps=0" in bad.output and not (tmp_path / "bad" / "count.nc").exists()


def test_member_with_its_own_command_is_renamed_to_the_second_word(family):
    res = CliRunner().invoke(main, ["toyfam", "b", "--steps", "5"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == "own command counted 5"
    assert _own_command().name == "anything"  # the kind's own object is copied, not renamed
    res = CliRunner().invoke(main, ["toyfam", "b", "--help"])
    assert "Count with its own command." in res.output and "toyfam b [OPTIONS]" in res.output
    unknown = CliRunner().invoke(main, ["toyfam", "c"])
    assert unknown.exit_code == 2 and "No such command 'c'" in unknown.output


def test_a_family_named_like_a_module_command_warns_and_the_module_wins():
    runkinds.register_kind(_kind("toy_city_x", "Toy city X", "city x"))
    try:
        with pytest.warns(RuntimeWarning, match=r"twin city: .*'toy_city_x'.*module command 'twin city'"):
            res = CliRunner().invoke(main, ["--help"])
        assert res.exit_code == 0 and "Toy city X" not in res.output
        res = CliRunner().invoke(main, ["city", "--help"])
        assert res.exit_code == 0 and "Toy city X" not in res.output
        assert not isinstance(main.get_command(click.Context(main), "city"), KindFamily)
    finally:
        runkinds.unregister_kind("toy_city_x")


def test_a_family_named_like_a_one_word_kind_warns_and_the_kind_wins():
    runkinds.register_kind(_kind("toysolo", "Toy solo", "toysolo"))
    runkinds.register_kind(_kind("toysolo_z", "Toy solo Z", "toysolo z"))
    try:
        with pytest.warns(RuntimeWarning, match=r"twin toysolo: .*'toysolo_z'.*run kind 'toysolo'"):
            res = CliRunner().invoke(main, ["toysolo", "--help"])
        assert res.exit_code == 0, res.output
        assert "run" in res.output.split("Commands:")[1] and "Toy solo Z" not in res.output
    finally:
        runkinds.unregister_kind("toysolo")
        runkinds.unregister_kind("toysolo_z")


def test_one_word_kinds_keep_their_run_group(family):
    runkinds.register_kind(_kind("toyone", "Toy one", "toyone"))
    try:
        res = CliRunner().invoke(main, ["toyone", "run", "--help"])
        assert res.exit_code == 0 and "--steps" in res.output
    finally:
        runkinds.unregister_kind("toyone")


def test_get_kind_finds_a_member_by_its_two_word_command_name(family):
    assert runkinds.get_kind("toyfam a").name == "toyfam_a"
    with pytest.raises(Exception, match="command name 'toyfam b' is taken"):
        runkinds.register_kind(_kind("toyfam_b2", "Toy count B2", "toyfam b"))
