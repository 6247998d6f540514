"""The command console (``twin serve``): a web app showing the live twin to command staff.

Modules: :mod:`~viz.console.app` (the Starlette app and a background server),
:mod:`~viz.console.api` (route handlers), :mod:`~viz.console.auth` (token gate,
bind check), :mod:`~viz.console.models` (validated request bodies),
:mod:`~viz.console.live` (sensors and alerts read from the store),
:mod:`~viz.console.feed` (live change feed: SSE and polling),
:mod:`~viz.console.runs` (forecast runs), :mod:`~viz.console.scenes` (map scenes),
:mod:`~viz.console.files` (whitelisted static files); the page is in ``static/``.
"""

from viz.console.app import ConsoleServer, create_app

__all__ = ["ConsoleServer", "create_app"]
