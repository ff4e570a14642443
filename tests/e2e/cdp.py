"""A minimal Chrome DevTools Protocol driver for headless Debian ``chromium`` (selenium is not installed):
start the browser on loopback, open a page, evaluate JavaScript, wait for conditions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import httpx
import websockets

from sandbox.procs import free_port

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1"]


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.contextmanager
def chromium() -> Iterator[str]:
    """Run headless chromium; yield its DevTools HTTP base (``http://127.0.0.1:<port>``)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kaiops-chromium-") as profile:
        proc = subprocess.Popen([chromium_path(), *CHROMIUM_FLAGS, f"--remote-debugging-port={port}",
                                 f"--user-data-dir={profile}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/json/version", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("chromium did not start") from None
                    time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


class Page:
    """One tab, driven over its DevTools websocket (synchronous facade over asyncio)."""

    def __init__(self, base: str) -> None:
        target = httpx.put(f"{base}/json/new?about:blank", timeout=10).json()
        self._loop = asyncio.new_event_loop()
        self._ws = self._loop.run_until_complete(websockets.connect(target["webSocketDebuggerUrl"], max_size=2**26))
        self._id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            self._id += 1
            my = self._id
            await self._ws.send(json.dumps({"id": my, "method": method, "params": params}))
            while True:
                msg = json.loads(await self._ws.recv())
                if msg.get("id") == my:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})
        return self._loop.run_until_complete(run())

    def eval(self, expression: str) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error: {res['exceptionDetails'].get('exception', {}).get('description')}")
        return res.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def wait(self, expression: str, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):
                value = self.eval(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen within {timeout:.0f}s")
            time.sleep(0.5)

    def screenshot(self, path: str) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))

    def close(self) -> None:
        self._loop.run_until_complete(self._ws.close())
        self._loop.close()
