"""The ``twin`` command line: one group, one module per command family, found by registration.

Command families are found, not listed here:

* every public module of this package that defines ``COMMAND`` (a click
  command or group) — ``twin/cli/city.py``, ``bridge.py``, ...;
* the entry-point group ``twin.commands`` (another distribution's family);
* every registered model run kind (:mod:`twin.runkinds`): its own family
  (``RunKind.command``) or one made from its request schema
  (:func:`twin.cli.kinds.kind_command`), named ``RunKind.command_name``.

Heavy libraries are imported inside the commands, and the model packages
only when a model's command or the full list (``twin --help``) is needed.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import warnings
from importlib.metadata import entry_points

import click

from twin import __version__

COMMANDS_GROUP = "twin.commands"


def _module_commands() -> dict[str, click.Command]:
    out = {}
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("_"):
            continue
        cmd = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "COMMAND", None)
        if isinstance(cmd, click.Command):
            out[cmd.name] = cmd
    for ep in entry_points(group=COMMANDS_GROUP):
        try:
            cmd = ep.load()
        except Exception as exc:  # a broken plug-in must not take the CLI down
            warnings.warn(f"twin command {ep.name!r} failed to load: {exc}", RuntimeWarning, stacklevel=2)
            continue
        if isinstance(cmd, click.Command):
            out.setdefault(cmd.name, cmd)
    return out


def _kind_commands() -> dict[str, click.Command]:
    from twin.cli.kinds import kind_command
    from twin.runkinds import kinds

    out = {}
    for k in kinds():
        try:
            out[k.command_name] = k.command() if k.command is not None else kind_command(k)
        except Exception as exc:  # noqa: BLE001 - one model's broken command must not hide the others
            warnings.warn(f"run kind {k.name!r}: its command failed to load: {exc}", RuntimeWarning,
                          stacklevel=2)
    return out


class TwinGroup(click.Group):
    """A click group whose sub-commands come from the registries (see the module docstring)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_module_commands(), *_kind_commands(), *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        cmd = _module_commands().get(name)
        return cmd if cmd is not None else _kind_commands().get(name)


@click.group(cls=TwinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twin")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for more).")
def main(verbose: int) -> None:
    """Shenzhen Twin: digital-twin simulation and GIS for city emergency management."""
    logging.basicConfig(level=max(10, 30 - 10 * verbose), format="%(levelname)s %(name)s: %(message)s")
