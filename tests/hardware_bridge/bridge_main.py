"""``python tests/hardware_bridge/bridge_main.py <runner args>``: the bridge process with a store URL.

Until ``--store`` of ``python -m hardware_bridge.runner`` takes a ``postgresql://`` URL (its click type folds the
``//`` of a URL into ``/``), the tests start the bridge through this: the runner's own options are parsed by its
own click command, then the raw ``--store`` text is put back when it is a URL and the runner's
:func:`~hardware_bridge.runner.run_bridge` runs (same READY/stopped lines, same signals). A directory is passed
to the runner's command unchanged.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from hardware_bridge import runner
    from twin.cli._util import user_errors
    from twin.store import is_store_url

    raw = argv[argv.index("--store") + 1] if "--store" in argv else ""
    if not is_store_url(raw):
        runner.cli.main(argv, prog_name="bridge_main", standalone_mode=True)
        return
    ctx = runner.cli.make_context("bridge_main", list(argv))
    kw = {**ctx.params, "store": raw}
    with user_errors():
        runner.run_bridge(runner._options(kw))


if __name__ == "__main__":
    main(sys.argv[1:])
