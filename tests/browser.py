"""Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol, for the
tests that look at MLflow's UI as a person does: open a page, wait for it, read it, click,
take a screenshot. No browser package from PyPI: the protocol is JSON over a WebSocket."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import free_port


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one page; a context manager that ends the browser."""

    def __init__(self, width: int = 1600, height: int = 900) -> None:
        from websockets.sync.client import connect

        executable = chromium()
        assert executable, "chromium is not installed"
        self.profile = tempfile.mkdtemp(prefix="llmflow-chromium-")
        port = free_port()
        self.process = subprocess.Popen(
            [
                executable, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", f"--remote-debugging-port={port}",
                "--remote-allow-origins=*", f"--user-data-dir={self.profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.socket = connect(_page_socket(port), max_size=None)
        self.sent = 0
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(20)
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.sent += 1
        self.socket.send(json.dumps({"id": self.sent, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.sent:
                assert "error" not in message, message["error"]
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found.get("result", {}).get("value")

    def open(self, url: str, ready: str, timeout: float = 120) -> None:
        """Go to `url`, then wait until the JavaScript expression `ready` is true."""
        self.call("Page.navigate", url=url)
        deadline = time.time() + timeout
        while not self.evaluate(ready):
            assert time.time() < deadline, f"{url}: not ready after {timeout:.0f} s"
            time.sleep(0.5)

    def click_button(self, text: str) -> bool:
        """Click the first button whose text or label is `text`; False when there is none."""
        return bool(
            self.evaluate(
                "(() => { const b = Array.from(document.querySelectorAll('button')).find("
                f"b => b.innerText.trim() === {json.dumps(text)} || "
                f"b.getAttribute('aria-label') === {json.dumps(text)}); "
                "if (b) { b.click(); return true; } return false; })()"
            )
        )

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def _page_socket(port: int, timeout: float = 30) -> str:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as answer:
                targets = json.load(answer)
            return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        except (OSError, StopIteration):
            if time.time() > deadline:
                raise
            time.sleep(0.2)
