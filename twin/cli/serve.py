"""``twin serve``: the command console — the live twin in a browser, for command staff."""

from __future__ import annotations

from pathlib import Path

import click

from twin.cli._util import user_errors
from twin.cli.store_target import StoreTarget, password_to_env


@click.command("serve")
@click.option("--store", "store_dir", type=StoreTarget("store_dir"), required=True,
              help="The twin's store: a directory or a postgresql:// URL (the one `twin bridge run --store` "
                   "writes).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="TCP port (0: any free port).")
@click.option("--token", envvar="TWIN_CONSOLE_TOKEN", default=None, metavar="T",
              help="Token for actions (acknowledge alerts, start runs); also read from "
                   "TWIN_CONSOLE_TOKEN. Without it the console is read-only.")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the forecast runs started from the console (default: STORE/runs).")
@click.option("--city", "city_name", default="shenzhen", show_default=True, metavar="NAME",
              help="City of the basemap and of the forecast runs.")
@click.option("--base-resolution", type=click.FloatRange(30.0, 1000.0), default=90.0, show_default=True,
              help="Grid (m) of the basemap's hillshade.")
@click.option("--stale-after", "stale_after_s", type=click.FloatRange(1.0), default=900.0,
              show_default=True, help="A datastream silent for longer shows as stale (s).")
@click.option("--forwarded-allow-ips", default=None, metavar="IPS",
              help="Behind a reverse proxy: the proxy's addresses (comma-separated, or '*'), whose "
                   "X-Forwarded-For / X-Forwarded-Proto are trusted for the client's address. "
                   "Default: trust no proxy headers (uvicorn would trust 127.0.0.1's).")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="Also accept this Host header (the public name a reverse proxy passes on); "
                   "repeatable. A loopback console otherwise accepts loopback names only.")
def serve(store_dir, host, port, token, runs_dir, city_name, base_resolution, stale_after_s,
          forwarded_allow_ips, allowed_hosts) -> None:
    """Serve the command console: live sensors, alerts with acknowledge, forecast runs and overlays.

    Example: TWIN_CONSOLE_TOKEN=... twin serve --store state/ --port 8765, then open
    http://127.0.0.1:8765/ and type the token into the page to act. Behind a reverse proxy on
    this machine: twin serve --store state/ --forwarded-allow-ips 127.0.0.1 --allowed-host
    twin.example.org (the page uses relative URLs, so a path prefix the proxy strips works too).
    """
    import uvicorn

    from viz.console.app import create_app, loopback_hosts
    from viz.console.auth import check_bind, check_token, is_loopback

    with user_errors():
        store_dir = password_to_env(store_dir)  # the live view opens the store again from its masked URL
        token = check_token(token)
        check_bind(host, token)
        hosts = None
        if is_loopback(host):
            hosts = sorted(set(loopback_hosts(host)) | set(allowed_hosts))
        elif allowed_hosts:
            hosts = sorted(set(allowed_hosts) | {host})
        app = create_app(store_dir, token=token, runs_dir=runs_dir, city=city_name,
                         base_resolution=base_resolution, stale_after_s=stale_after_s, allowed_hosts=hosts)
    mode = "actions need the token" if token else "read-only (no --token)"
    proxy = f"; proxy headers trusted from {forwarded_allow_ips}" if forwarded_allow_ips else ""
    click.echo(f"twin console on http://{host}:{port}/ — {mode}{proxy}; Ctrl-C stops", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2,
                proxy_headers=bool(forwarded_allow_ips), forwarded_allow_ips=forwarded_allow_ips or "")


COMMAND = serve
