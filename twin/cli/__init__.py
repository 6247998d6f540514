"""The ``twin`` command line: one group, one module per command family.

Heavy libraries are imported inside the commands, so ``twin --help`` is quick.
"""

from __future__ import annotations

import logging

import click

from twin import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twin")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for more).")
def main(verbose: int) -> None:
    """Shenzhen Twin: digital-twin simulation and GIS for city emergency management."""
    logging.basicConfig(level=max(10, 30 - 10 * verbose), format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from twin.cli.bridge import bridge
    from twin.cli.city import city
    from twin.cli.data import data
    from twin.cli.flood import flood
    from twin.cli.info import info
    from twin.cli.serve import serve

    main.add_command(info)
    main.add_command(city)
    main.add_command(data)
    main.add_command(flood)
    main.add_command(bridge)
    main.add_command(serve)


_register()
