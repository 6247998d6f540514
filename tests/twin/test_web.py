"""twin.web.ThreadedServer: a real uvicorn on 127.0.0.1 at a free port."""

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from twin.errors import ConfigError
from twin.web import ThreadedServer


def _app():
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])


def test_serves_on_a_free_port_and_stops():
    with ThreadedServer(_app(), name="t") as srv:
        assert srv.port > 0 and srv.url == f"http://127.0.0.1:{srv.port}"
        assert httpx.get(srv.url + "/").text == "ok"
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/", timeout=2)


def test_busy_port_is_a_config_error_naming_the_server():
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        srv = ThreadedServer(_app(), port=busy.getsockname()[1], name="probe")
        with pytest.raises(ConfigError, match="probe.*uvicorn exited"):
            srv.start(timeout=5)
        assert srv.exit_code is not None  # uvicorn's start-up failure, kept instead of a thread crash
        srv.stop()
    finally:
        busy.close()
