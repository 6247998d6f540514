"""The ``twin`` command line: one group, one module per command family, found by registration.

Command families are found, not listed here:

* every public module of this package that defines ``COMMAND`` (a click
  command or group) — ``twin/cli/city.py``, ``bridge.py``, ...;
* the entry-point group ``twin.commands`` (another distribution's family);
* every registered model run kind (:mod:`twin.runkinds`): its own family
  (``RunKind.command``) or one made from its request schema
  (:func:`twin.cli.kinds.kind_command`), named ``RunKind.command_name``.

Two-word families: a kind whose ``command_name`` has two words
(``cli_name="evacuate building"``) is a member of the group ``twin evacuate``
(:class:`KindFamily`, its help lists every member's title), as the
sub-command ``building``: the kind's ``command()`` (renamed to the second word
when it is called otherwise) or, without one, the ``run`` command of
:func:`~twin.cli.kinds.kind_command` renamed to the second word, so
``twin evacuate building --out DIR ...`` runs it.  A family name that a module
command or a one-word kind already uses gets a :class:`RuntimeWarning` naming
both, and the existing command wins.  Members are built only when the family
is asked for them (``twin evacuate --help``, ``twin evacuate building``).

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


def _kinds_by_words() -> tuple[dict, dict]:
    """(one-word command name → kind, family name → {member name → kind}) of the registered kinds."""
    from twin.runkinds import kinds

    singles: dict = {}
    families: dict[str, dict] = {}
    for k in kinds():
        words = k.command_name.split()
        if len(words) == 1:
            singles[words[0]] = k
        elif len(words) == 2:
            families.setdefault(words[0], {})[words[1]] = k
        else:
            warnings.warn(f"run kind {k.name!r}: command name {k.command_name!r} has {len(words)} words; "
                          "use one (twin NAME) or two (twin FAMILY NAME): it has no command",
                          RuntimeWarning, stacklevel=3)
    return singles, families


def _kind_command(k) -> click.Command | None:
    """The one-word command of kind ``k`` (None, with a warning, when it fails to load)."""
    from twin.cli.kinds import kind_command

    try:
        return k.command() if k.command is not None else kind_command(k)
    except Exception as exc:  # noqa: BLE001 - one model's broken command must not hide the others
        warnings.warn(f"run kind {k.name!r}: its command failed to load: {exc}", RuntimeWarning, stacklevel=3)
        return None


def family_member_command(k, name: str) -> click.Command | None:
    """The sub-command ``name`` of a family made for kind ``k`` (see the module docstring).

    None, with a RuntimeWarning, when the kind's command fails to load.
    """
    import copy

    from twin.cli.kinds import kind_command

    try:
        if k.command is not None:
            cmd = k.command()
            if not isinstance(cmd, click.Command):
                raise TypeError(f"command() returned {type(cmd).__name__}, not a click.Command")
        else:
            cmd = kind_command(k).commands["run"]
    except Exception as exc:  # noqa: BLE001 - one model's broken command must not hide the others
        warnings.warn(f"run kind {k.name!r}: its command failed to load: {exc}", RuntimeWarning, stacklevel=3)
        return None
    if cmd.name != name:
        cmd = copy.copy(cmd)
        cmd.name = name
    return cmd


class KindFamily(click.Group):
    """``twin <family>``: the run kinds whose command name is ``"<family> <member>"``.

    Parameters
    ----------
    name : str
        The family (first word).
    members : dict
        Member name (second word) → :class:`twin.runkinds.RunKind`.
    """

    def __init__(self, name: str, members: dict) -> None:
        width = max(len(f"twin {name} {m}") for m in members)
        rows = "\n".join(f"{f'twin {name} {m}':<{width}}  {k.title}" for m, k in sorted(members.items()))
        short = "; ".join(k.title for _, k in sorted(members.items()))
        super().__init__(name, short_help=short,
                         help=f"Run kinds of the {name!r} family (--help of each for its options):\n\n\b\n{rows}")
        self.members = dict(members)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.members, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        k = self.members.get(name)
        return None if k is None else family_member_command(k, name)


def _families(taken: dict[str, str], families: dict[str, dict]) -> dict[str, KindFamily]:
    """Family groups whose name is free; a RuntimeWarning names each collision (``taken``: name → what)."""
    out = {}
    for fam, members in families.items():
        if fam in taken:
            kinds_text = ", ".join(repr(k.name) for k in members.values())
            warnings.warn(f"twin {fam}: the family of run kind(s) {kinds_text} ({fam} "
                          f"{'/'.join(sorted(members))}) collides with {taken[fam]}; the existing "
                          f"command wins: set another cli_name", RuntimeWarning, stacklevel=3)
            continue
        out[fam] = KindFamily(fam, members)
    return out


def _kind_commands(modules: dict[str, click.Command] | None = None) -> dict[str, click.Command]:
    """Commands of the run kinds: one per one-word kind, one :class:`KindFamily` per free family name."""
    singles, families = _kinds_by_words()
    out = {}
    for name, k in singles.items():
        cmd = _kind_command(k)
        if cmd is not None:
            out[name] = cmd
    modules = _module_commands() if modules is None else modules
    taken = {name: f"the module command 'twin {name}'" for name in modules}
    taken.update({name: f"run kind {k.name!r}'s command 'twin {name}'" for name, k in singles.items()})
    out.update(_families(taken, families))
    return out


class TwinGroup(click.Group):
    """A click group whose sub-commands come from the registries (see the module docstring)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        modules = _module_commands()
        return sorted({*modules, *_kind_commands(modules), *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        modules = _module_commands()
        cmd = modules.get(name)
        return cmd if cmd is not None else _kind_commands(modules).get(name)


@click.group(cls=TwinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twin")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for more).")
def main(verbose: int) -> None:
    """Shenzhen Twin: digital-twin simulation and GIS for city emergency management."""
    logging.basicConfig(level=max(10, 30 - 10 * verbose), format="%(levelname)s %(name)s: %(message)s")
