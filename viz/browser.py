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
import re
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

#: JavaScript expression that is true once every TwinMap on a page drew its first frame.
TWINMAP_READY_JS = "window.twinReady === true"

_TWO_FRAMES = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def _as_url(url_or_path) -> str:
    """A URL as given (it has a scheme), else the ``file://`` URL of an existing file."""
    if isinstance(url_or_path, str) and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url_or_path) \
            and not re.match(r"^[a-zA-Z]:[\\/]", url_or_path):
        return url_or_path
    path = Path(url_or_path).resolve()
    if not path.is_file():
        raise ValidationError(f"url_or_path={str(path)!r} is not a file: write the page first")
    return path.as_uri()


class BrowserSession:
    """One headless Chromium with one page tab, driven over the DevTools pipe.

    Use it as a context manager; the browser is stopped on exit::

        with BrowserSession(width=1200, height=800) as b:
            b.goto(path_or_url, ready_js=TWINMAP_READY_JS)
            n = b.evaluate("map.frameCount")
            b.screenshot(tmp / "shot.png")
            assert b.network_requests == [] and b.console_errors == []

    Parameters
    ----------
    width, height : int
        Viewport size in CSS pixels (device scale 1).
    timeout : float
        Seconds allowed for Chromium to start and answer the first commands.

    Attributes
    ----------
    requests : list[str]
        Every URL the page requested since the session began (pages included).
    network_requests : list[str]
        The subset with a network scheme (http, https, ws, wss, ftp).  A page
        served from 127.0.0.1 lands here too: filter by host if needed.
    console_errors : list[str]
        ``console.error`` calls and uncaught exceptions (with their text).
    log_errors : list[str]
        Browser-side errors reported through the Log domain (e.g. a failed load).
    """

    def __init__(self, width: int = 1200, height: int = 800, timeout: float = 60) -> None:
        if width <= 0 or height <= 0:
            raise ValidationError(f"width={width}, height={height}: both must be positive pixel counts")
        self.width, self.height, self.timeout = width, height, timeout
        self.requests: list[str] = []
        self.network_requests: list[str] = []
        self.console_errors: list[str] = []
        self.log_errors: list[str] = []
        self._pipe: _Pipe | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._sid: str | None = None
        self._loads = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> BrowserSession:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Launch Chromium and attach to its page (called by ``with``)."""
        chromium = find_chromium()
        self._tmp = tempfile.TemporaryDirectory(prefix="twin-chromium-")
        tmp = self._tmp.name
        argv = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile",
                f"--window-size={self.width},{self.height}", "--remote-debugging-pipe", "about:blank"]
        self._log = Path(tmp) / "chromium.log"
        try:
            self._pipe = _Pipe(argv, self._log)
        except OSError as exc:
            self._tmp.cleanup()
            raise BrowserError(f"could not start {chromium}: {exc}") from exc
        try:
            deadline = time.monotonic() + self.timeout
            pipe = self._pipe
            targets = pipe.send("Target.getTargets", deadline=deadline)["targetInfos"]
            page = next((t for t in targets if t.get("type") == "page"), None)
            if page is None:
                target_id = pipe.send("Target.createTarget", {"url": "about:blank"},
                                      deadline=deadline)["targetId"]
            else:
                target_id = page["targetId"]
            self._sid = pipe.send("Target.attachToTarget", {"targetId": target_id, "flatten": True},
                                  deadline=deadline)["sessionId"]
            for method in ("Page.enable", "Network.enable", "Runtime.enable", "Log.enable"):
                self.cdp(method, deadline=deadline)
            self.cdp("Emulation.setDeviceMetricsOverride",
                     {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
                     deadline=deadline)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop Chromium and remove its profile (safe to call twice)."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _log_tail(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-2000:]
        except (OSError, AttributeError):
            return ""

    # ------------------------------------------------------------------ protocol

    def cdp(self, method: str, params: dict | None = None, deadline: float | None = None) -> dict:
        """Send one raw DevTools command to the page and return its result."""
        if self._pipe is None:
            raise BrowserError("the browser session is not started: use `with BrowserSession() as b:`")
        result = self._pipe.send(method, params, session=self._sid, deadline=deadline)
        self._digest()
        return result

    def _digest(self) -> None:
        """Move pending protocol events into the request / error lists."""
        events, self._pipe.events = self._pipe.events, []
        for ev in events:
            method, params = ev.get("method"), ev.get("params", {})
            if method == "Page.loadEventFired":
                self._loads += 1
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                self.requests.append(url)
                if url.lower().startswith(_NETWORK_SCHEMES):
                    self.network_requests.append(url)
            elif method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                self.console_errors.append(
                    d.get("exception", {}).get("description") or d.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                self.console_errors.append(" ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                e = params["entry"]
                self.log_errors.append(f"{e.get('text', '')} {e.get('url', '')}".strip())

    def pump(self, seconds: float) -> None:
        """Let the page run for ``seconds`` while collecting its events."""
        self._pipe.pump(seconds)
        self._digest()

    # ------------------------------------------------------------------ page

    def goto(self, url_or_path, ready_js: str | None = None, timeout: float = 60,
             strict: bool = True) -> bool:
        """Load a page, wait for its load event, then until ``ready_js`` is true.

        Parameters
        ----------
        url_or_path : str or path
            ``http://127.0.0.1:port/...``, ``file://...`` or a local file path.
        ready_js : str or None
            Expression polled every 0.2 s after the load event (e.g.
            :data:`TWINMAP_READY_JS`, :data:`DECK_READY_JS`); None: the load event suffices.
        timeout : float
            Seconds for load and readiness together.
        strict : bool
            Raise when the page does not become ready (else return False).

        Returns
        -------
        bool
            True when the page became ready in time.

        Raises
        ------
        BrowserError
            On timeout (load always; readiness when ``strict``), with the
            console errors seen so far.
        """
        url = _as_url(url_or_path)
        t_end = time.monotonic() + timeout
        loads = self._loads
        self.cdp("Page.navigate", {"url": url}, deadline=t_end)
        while self._loads == loads:
            if time.monotonic() > t_end:
                raise BrowserError(f"page {url} did not finish loading within {timeout} s; "
                                   f"console errors: {self.console_errors[-5:]}")
            self.pump(0.1)
        if ready_js is None:
            return True
        while time.monotonic() < t_end:
            r = self.cdp("Runtime.evaluate", {"expression": ready_js, "returnByValue": True},
                         deadline=t_end + 10)
            if r.get("result", {}).get("value") is True:
                return True
            self.pump(0.2)
        if strict:
            raise BrowserError(f"page {url}: {ready_js!r} was not true within {timeout} s; "
                               f"console errors: {self.console_errors[-5:]}")
        return False

    def evaluate(self, js: str, timeout: float = 30):
        """Evaluate a JavaScript expression in the page; promises are awaited.

        Returns the value (JSON-like) it produced.

        Raises
        ------
        BrowserError
            When the expression throws or its promise rejects.
        """
        r = self.cdp("Runtime.evaluate",
                     {"expression": js, "awaitPromise": True, "returnByValue": True,
                      "timeout": int(timeout * 1000)},
                     deadline=time.monotonic() + timeout + 5)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "exception")
            raise BrowserError(f"JavaScript failed: {text}\n  in: {js[:300]}")
        return r.get("result", {}).get("value")

    def wait_for(self, js: str, timeout: float = 30, interval: float = 0.1) -> None:
        """Poll ``js`` until it is true; raise :class:`BrowserError` after ``timeout`` s."""
        t_end = time.monotonic() + timeout
        while True:
            if self.evaluate(js, timeout=max(1.0, t_end - time.monotonic())) is True:
                return
            if time.monotonic() > t_end:
                raise BrowserError(f"{js!r} was not true within {timeout} s; "
                                   f"console errors: {self.console_errors[-5:]}")
            self.pump(interval)

    def press(self, key: str, code: str | None = None, key_code: int | None = None) -> None:
        """Send a key press (down and up) to the focused element, as a user would."""
        common = {"key": key, "code": code or key}
        if key_code is not None:
            common["windowsVirtualKeyCode"] = key_code
        self.cdp("Input.dispatchKeyEvent", {"type": "rawKeyDown", **common})
        self.cdp("Input.dispatchKeyEvent", {"type": "keyUp", **common})

    def click(self, x: float, y: float) -> None:
        """Click with the left mouse button at viewport coordinates (CSS pixels)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.cdp("Input.dispatchMouseEvent",
                     {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, png_path: str | os.PathLike) -> Path:
        """Wait two animation frames, then save the viewport as a PNG; returns its path."""
        self.evaluate(_TWO_FRAMES)
        shot = self.cdp("Page.captureScreenshot", {"format": "png", "fromSurface": True},
                        deadline=time.monotonic() + 30)
        png = Path(png_path)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(shot["data"]))
        return png


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

    A one-shot wrapper around :class:`BrowserSession`.

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
    png = Path(png_path)
    t0 = time.monotonic()
    result = ScreenshotResult(png_path=png)
    with BrowserSession(width=width, height=height, timeout=timeout) as b:
        try:
            left = max(1.0, timeout - (time.monotonic() - t0) - 2)
            result.ready = b.goto(html, ready_js=ready_js, timeout=left, strict=False)
            left = timeout - (time.monotonic() - t0) - 2
            b.pump(max(0.0, min(settle_ms / 1000, left)))
            b.screenshot(png)
        except BrowserError as exc:
            raise BrowserError(f"{exc}\nChromium log (tail):\n{b._log_tail()}") from exc
        result.requests = list(b.requests)
        result.network_requests = list(b.network_requests)
        result.console_errors = list(b.console_errors)
    return result


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
