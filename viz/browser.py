"""Screenshot a local HTML page with headless Chromium, and measure what it drew.

Chromium is driven through the DevTools protocol over a pipe
(``--remote-debugging-pipe``: JSON messages, NUL-terminated, on file
descriptors 3 and 4), so no port is opened.  Plain ``--screenshot`` proved
unreliable for deck.gl pages: the shot can be taken while the canvas and its
CSS box disagree in size, which stretches the map.  Through the protocol the
helper fixes the viewport (``Emulation.setDeviceMetricsOverride``), loads the
page, waits until a readiness expression is true (by default: deck.gl is
initialised and every layer is loaded), waits two animation frames and then
captures the viewport.  Every network request the page makes is recorded, so
a caller can assert that an "offline" page fetched nothing.

Chromium is found through ``$TWIN_CHROMIUM`` or ``shutil.which("chromium")``
(also ``chromium-browser``, ``google-chrome``); on Debian: ``apt-get install chromium``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.errors import BrowserError, ConfigError, ValidationError

ENV_VAR = "TWIN_CHROMIUM"

#: Flags that make headless Chromium render WebGL in software and stay quiet on the network.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-gpu-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    # A file:// page may not read sibling files by default; the offline pages need none.
)

#: JavaScript expression that is true once a pydeck page has drawn all its layers.
DECK_READY_JS = (
    "(() => { try {"
    " const d = (typeof deckInstance !== 'undefined') ? deckInstance : null;"
    " if (!d || !d.isInitialized) return false;"
    " const lm = d.layerManager; if (!lm) return false;"
    " if (lm.needsUpdate && lm.needsUpdate()) return false;"
    " return lm.getLayers().every(l => l.isLoaded);"
    " } catch (e) { return false; } })()"
)


@dataclass
class ScreenshotResult:
    """What :func:`screenshot` saw.

    Attributes
    ----------
    png_path : Path
        The screenshot written.
    requests : list[str]
        Every URL the page requested (the page itself included).
    network_requests : list[str]
        The subset with a network scheme (http, https, ws, wss, ftp):
        empty for a truly offline page.
    console_errors : list[str]
        Console errors and uncaught exceptions.
    ready : bool
        True when the readiness expression became true before the timeout.
    """

    png_path: Path
    requests: list[str] = field(default_factory=list)
    network_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    ready: bool = False


def find_chromium() -> str:
    """Return the Chromium executable: ``$TWIN_CHROMIUM``, else the first on PATH.

    Raises
    ------
    ConfigError
        When ``$TWIN_CHROMIUM`` names no executable, or none is on PATH.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        path = shutil.which(env) or (env if os.access(env, os.X_OK) else None)
        if not path:
            raise ConfigError(
                f"{ENV_VAR}={env!r} is not an executable: point it at a Chromium binary "
                "(e.g. /usr/bin/chromium) or unset it to search PATH."
            )
        return path
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError(
        "headless Chromium not found: no 'chromium' on PATH and TWIN_CHROMIUM is not set. "
        "Install it (Debian/Ubuntu: `apt-get install chromium`) or set TWIN_CHROMIUM to its path."
    )


class _Pipe:
    """A DevTools-protocol session over ``--remote-debugging-pipe``."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Move the child's ends above 3/4 so the dup2 actions below cannot clobber them.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_child_r)
        os.close(from_child_w)
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            self.pid = os.posix_spawn(
                argv[0],
                argv,
                os.environ.copy(),
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                    (os.POSIX_SPAWN_DUP2, hi_r, 3),
                    (os.POSIX_SPAWN_DUP2, hi_w, 4),
                ],
                setpgroup=0,
            )
        finally:
            for fd in (hi_r, hi_w, log_fd, devnull):
                os.close(fd)
        self._w = to_child_w
        self._r = from_child_r
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time (DevTools pipe)")
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the DevTools pipe (it exited or crashed)")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             deadline: float | None = None) -> dict:
        """Send one command and return its result (events met meanwhile go to ``events``)."""
        self._next_id += 1
        msg: dict = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        deadline = deadline if deadline is not None else time.monotonic() + 30
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for up to ``seconds``."""
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                self.events.append(self._read_message(deadline))
        except BrowserError:
            pass

    def close(self) -> None:
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        for _ in range(50):
            pid, _status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return
            time.sleep(0.1)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


_NETWORK_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")


def screenshot(
    html_path: str | os.PathLike,
    png_path: str | os.PathLike,
    width: int = 1200,
    height: int = 800,
    timeout: float = 60,
    ready_js: str | None = DECK_READY_JS,
    settle_ms: int = 500,
) -> ScreenshotResult:
    """Render a local HTML file in headless Chromium and save a PNG of the viewport.

    Parameters
    ----------
    html_path : path
        The page; it is opened as a ``file://`` URL.
    png_path : path
        Where to write the PNG (``width`` × ``height`` pixels, device scale 1).
    width, height : int
        Viewport size in CSS pixels.
    timeout : float
        Seconds allowed for the whole run (start, load, readiness, capture).
    ready_js : str or None
        JavaScript expression polled until it is true before the capture
        (default :data:`DECK_READY_JS`, for pydeck pages).  ``None`` captures
        right after the load event.  If it never becomes true the page is
        captured anyway at the deadline and ``result.ready`` is False.
    settle_ms : int
        Extra milliseconds waited after readiness (then two animation frames)
        so the last frame is on screen.

    Returns
    -------
    ScreenshotResult
        The PNG path, the URLs requested (with the network ones apart),
        console errors, and whether the page became ready.

    Raises
    ------
    ValidationError
        When ``html_path`` does not exist or the size is not positive.
    ConfigError
        When Chromium is not installed.
    BrowserError
        When Chromium fails to start, answer or capture within ``timeout``.
    """
    html = Path(html_path).resolve()
    if not html.is_file():
        raise ValidationError(f"html_path={str(html)!r} is not a file: write the page first")
    if width <= 0 or height <= 0:
        raise ValidationError(f"width={width}, height={height}: both must be positive pixel counts")
    png = Path(png_path)
    chromium = find_chromium()
    t_end = time.monotonic() + timeout
    result = ScreenshotResult(png_path=png)
    with tempfile.TemporaryDirectory(prefix="twin-chromium-") as tmp:
        argv = [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp}/profile",
            f"--window-size={width},{height}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        log = Path(tmp) / "chromium.log"
        try:
            pipe = _Pipe(argv, log)
        except OSError as exc:
            raise BrowserError(f"could not start {chromium}: {exc}") from exc
        try:
            _drive(pipe, html, png, width, height, t_end, ready_js, settle_ms, result)
        except BrowserError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise BrowserError(f"{exc}\nChromium log (tail):\n{tail}") from exc
        finally:
            pipe.close()
    return result


def _drive(pipe: _Pipe, html: Path, png: Path, width: int, height: int, t_end: float,
           ready_js: str | None, settle_ms: int, result: ScreenshotResult) -> None:
    targets = pipe.send("Target.getTargets", deadline=t_end)["targetInfos"]
    page = next((t for t in targets if t.get("type") == "page"), None)
    if page is None:
        target_id = pipe.send("Target.createTarget", {"url": "about:blank"}, deadline=t_end)["targetId"]
    else:
        target_id = page["targetId"]
    sid = pipe.send("Target.attachToTarget", {"targetId": target_id, "flatten": True},
                    deadline=t_end)["sessionId"]
    for method in ("Page.enable", "Network.enable", "Runtime.enable"):
        pipe.send(method, session=sid, deadline=t_end)
    pipe.send("Emulation.setDeviceMetricsOverride",
              {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
              session=sid, deadline=t_end)
    pipe.send("Page.navigate", {"url": html.as_uri()}, session=sid, deadline=t_end)
    # Wait for the load event.
    while not any(e.get("method") == "Page.loadEventFired" for e in pipe.events):
        if time.monotonic() > t_end:
            raise BrowserError(f"page {html} did not finish loading in time")
        pipe.pump(0.2)
    if ready_js is None:
        result.ready = True
    else:
        while time.monotonic() < t_end - 2:
            r = pipe.send("Runtime.evaluate", {"expression": ready_js, "returnByValue": True},
                          session=sid, deadline=t_end)
            if r.get("result", {}).get("value") is True:
                result.ready = True
                break
            pipe.pump(0.25)
    pipe.pump(min(settle_ms / 1000, max(0.0, t_end - time.monotonic() - 2)))
    frames = ("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))")
    pipe.send("Runtime.evaluate", {"expression": frames, "awaitPromise": True},
              session=sid, deadline=t_end)
    shot = pipe.send("Page.captureScreenshot", {"format": "png", "fromSurface": True},
                     session=sid, deadline=max(t_end, time.monotonic() + 10))
    png.parent.mkdir(parents=True, exist_ok=True)
    png.write_bytes(base64.b64decode(shot["data"]))
    for ev in pipe.events:
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            result.requests.append(url)
            if url.lower().startswith(_NETWORK_SCHEMES):
                result.network_requests.append(url)
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            result.console_errors.append(
                d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            result.console_errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))


def count_non_background(png_path: str | os.PathLike, background=None, tolerance: int = 16) -> int:
    """Count pixels that differ from the background colour.

    A pixel counts when ``max_c |pixel_c - background_c| > tolerance`` over the
    RGB channels (alpha is composited on white first).

    Parameters
    ----------
    png_path : path
        The image.
    background : (r, g, b) or None
        The background colour; ``None`` takes the dominant one: the median
        colour of the most populated colour bin (bins ``tolerance + 1`` wide).
    tolerance : int
        Largest per-channel difference (0–255) still counted as background.

    Returns
    -------
    int
        Number of non-background pixels.
    """
    from PIL import Image

    with Image.open(png_path) as im:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.int16)
    if background is None:
        # Mode over colour bins as wide as the tolerance (so a noisy or dithered
        # background still wins over a small flat-coloured feature), then the
        # median colour of the pixels in that bin.
        flat = rgb.reshape(-1, 3)
        q = (flat // (tolerance + 1)).astype(np.int32)
        packed = (q[:, 0] << 16) | (q[:, 1] << 8) | q[:, 2]
        values, counts = np.unique(packed, return_counts=True)
        in_bin = packed == values[np.argmax(counts)]
        background = tuple(int(c) for c in np.median(flat[in_bin], axis=0))
    bg = np.asarray(background[:3], dtype=np.int16)
    diff = np.abs(rgb - bg).max(axis=-1)
    return int((diff > tolerance).sum())
