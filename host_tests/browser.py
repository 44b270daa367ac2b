"""Headless Chromium (Debian's package), driven over the Chrome DevTools protocol: open a page,
read and fill it as a person would, take a screenshot. No browser is downloaded: `make setup`
installs Debian's chromium when it runs as root; elsewhere the tests that need it skip.

    with Browser() as b:
        b.open("http://127.0.0.1:8080/")
        b.text("#nets")
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tools.started import Started

CANDIDATES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    # Nothing but loopback: a page's outside resources (Home Assistant's brand icons) go to a
    # proxy that is not there, and no host name resolves.
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=420,1000",  # a phone's width
)
START_S = 30


def chromium() -> str | None:
    """The Chromium executable on PATH, or None."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


# What Chromium answers an evaluation whose page navigated away under it.
NAVIGATING = ("Inspected target navigated or closed", "Cannot find context with specified id")


class BrowserError(Exception):
    pass


class Browser(Started):
    def __init__(self, executable: str | None = None) -> None:
        exe = executable or chromium()
        if exe is None:
            raise BrowserError("no chromium on PATH (Debian: apt-get install chromium)")
        self.exe = exe
        # Chromium's helper processes may still write to the profile for a moment after it has
        # gone: what is left then is not worth a failed test.
        self._dir = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: Any = None
        self._ids = itertools.count(1)

    def start(self) -> None:
        profile = Path(self._dir.name)
        self._proc = subprocess.Popen(
            [self.exe, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0"]
            + ["about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        port = self._devtools_port(profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        from websockets.sync.client import connect

        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _devtools_port(self, path: Path) -> int:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited at start (code {self._proc.returncode})")
            try:
                return int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        raise BrowserError(f"chromium did not open its DevTools port within {START_S} s")

    def stop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self._proc is not None:
            # Chromium and its helpers (renderer, zygote, crash handler) are one process group,
            # the session it was started in: all of them go.
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._proc.wait()
            self._signal(signal.SIGKILL)  # helpers that outlived it
            self._proc = None
        self._dir.cleanup()

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    # -- the protocol ------------------------------------------------------------------------

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events that arrive meanwhile are passed over)."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = json.loads(self._ws.recv(timeout=left))
            if msg.get("id") == ident:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise TimeoutError(f"{method}: no answer within {timeout} s")

    def eval(self, script: str) -> Any:
        """A JavaScript expression's value in the page."""
        result = self.call("Runtime.evaluate", expression=script, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{script}: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- what a person does ------------------------------------------------------------------

    def open(self, url: str, timeout: float = 30) -> None:
        self.call("Page.navigate", url=url)
        self.wait_loaded(url, timeout)

    def wait_loaded(self, url_part: str, timeout: float = 30) -> None:
        """Until the page's address contains url_part and it has loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self._page_state()
            if state is not None and url_part in state[0] and state[1] == "complete":
                return
            time.sleep(0.1)
        raise TimeoutError(f"page {url_part!r} not loaded within {timeout} s")

    def _page_state(self) -> list[str] | None:
        # [address, readyState], or None while the page is between documents: an evaluation
        # that meets a navigation (a redirect, a frontend that loads itself again) has its
        # context destroyed under it, and Chromium answers with one of these errors.
        try:
            return self.eval("[location.href, document.readyState]")
        except BrowserError as e:
            if any(t in str(e) for t in NAVIGATING):
                return None
            raise

    def text(self, selector: str) -> str:
        """The visible text of the first element matching the CSS selector ('' if none)."""
        return self.eval(
            f"(document.querySelector({json.dumps(selector)}) || {{innerText: ''}}).innerText"
        )

    def type(self, selector: str, value: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")

    def click(self, selector: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).click()")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
