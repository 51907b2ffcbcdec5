"""Headless Chromium driven over the DevTools protocol on loopback (harness tests only).

Debian's ``chromium`` with the flags that keep it off the network; the protocol is spoken
with ``websocket-client`` (installed with the ``kubernetes`` client). Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def chromium() -> str | None:
    return shutil.which("chromium")


class Browser:
    """One page of a fresh Chromium profile under ``folder``."""

    def __init__(self, folder: Path, size: tuple[int, int] = (1400, 1000)) -> None:
        profile = folder / "chromium-profile"
        profile.mkdir(parents=True)
        self.proc = subprocess.Popen(
            [chromium() or "chromium", *FLAGS, f"--user-data-dir={profile}",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.next_id = 0
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError(f"chromium wrote no DevToolsActivePort in 30 s "
                                   f"(exit {self.proc.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)

    def send(self, method: str, **params: Any) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        found = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float = 30, what: str = "") -> Any:
        """Poll the JavaScript ``expression`` until it is truthy; say what it last was."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        text = (self.evaluate("document.body ? document.body.innerText : ''") or "")[:500]
        raise AssertionError(f"{what or expression}: not true within {timeout:.0f}s "
                             f"(last value {value!r}); the page shows: {text!r}")

    def click_text(self, text: str, timeout: float = 30) -> None:
        """Click (with the mouse, as a person would) the innermost visible element whose
        own text is ``text``."""
        finder = (
            "(() => { const all = [...document.querySelectorAll('body *')]"
            f".filter(e => e.childElementCount === 0 && e.textContent.trim() === {json.dumps(text)}"
            " && e.getClientRects().length);"
            " if (!all.length) return null; all[0].scrollIntoView({block: 'center'});"
            " const r = all[0].getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        x, y = self.wait_for(finder, timeout, what=f"an element reading {text!r} to click")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
