"""A built site in a real headless Chromium, for tests, benchmarks and screenshots (Playwright driving the
system's ``chromium``; Playwright's own browser download is not needed).

``with headless_page(site, camera=write_y4m(path)) as page:`` serves ``site`` on a free loopback port, opens it
with a fake camera that plays the ``.y4m`` video, and yields the Playwright page; ``page.pocketgan_requests``
lists every URL the page fetched. The page's test hook is ``window.pocketgan`` (see ``site-template/app.js``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pocketgan.core.errors import PocketganError
from pocketgan.core.optional import require
from pocketgan.runtime.web.server import serve_site

CHROMIUM_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
)  # fmt: skip
"""Headless, no GPU (so WebGPU has no adapter and the page runs on wasm), no network of its own, and a fake
camera that is granted without a prompt."""


def find_chromium() -> str | None:
    """The system's Chromium (Debian's ``chromium``, else ``chromium-browser`` / ``google-chrome``), if any."""
    found = (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))
    return next((path for path in found if path), None)


def write_y4m(path: str | os.PathLike[str], width: int = 160, height: int = 120, frames: int = 30) -> Path:
    """A short YUV 4:2:0 video at 30 fps (moving diagonal stripes and a ring) for Chromium's fake camera."""
    path = Path(path)
    yy, xx = np.mgrid[0:height, 0:width]
    chroma = (height // 2) * (width // 2)
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            stripes = (xx + yy + 6 * i) % 32 < 16
            ring = np.abs(np.hypot(xx - width / 2, yy - height / 2) - height / 3) < 4
            luma = np.where(stripes ^ ring, 235, 16).astype(np.uint8)
            handle.write(b"FRAME\n" + luma.tobytes() + bytes([110]) * chroma + bytes([150]) * chroma)
    return path


@contextlib.contextmanager
def headless_page(
    site: str | os.PathLike[str],
    *,
    camera: str | os.PathLike[str] | None = None,
    query: str = "",
    viewport: tuple[int, int] = (1000, 1000),
    chromium: str | None = None,
) -> Iterator[Any]:
    """Serve ``site`` on ``127.0.0.1`` (a free port) and open it in headless Chromium; yields the Playwright page
    once loaded (``page.pocketgan_url``: the site's URL). ``camera``: a ``.y4m``/``.mjpeg`` file for the fake
    camera to play."""
    playwright_api = require("playwright.sync_api", "dev", "driving Chromium")
    executable = chromium or find_chromium()
    if executable is None:
        raise PocketganError("no chromium found: install it (Debian: apt-get install chromium; .ci/install-browser)")
    args = [*CHROMIUM_ARGS, *([f"--use-file-for-fake-video-capture={camera}"] if camera else [])]
    server = serve_site(site, "127.0.0.1", 0)
    server.start()
    try:
        with playwright_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=args)
            try:
                page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
                page.pocketgan_requests = []
                page.on("request", lambda request: page.pocketgan_requests.append(request.url))
                page.pocketgan_url = server.url
                page.goto(server.url + query)
                yield page
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def run_camera(page: Any, frames: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """Start the page's camera, wait until it ran ``frames`` frames, and return its ``stats()``."""
    page.evaluate("window.pocketgan.ready")
    page.evaluate("window.pocketgan.startCamera('user')")
    page.wait_for_function(f"window.pocketgan.stats().frames >= {int(frames)}", timeout=timeout_s * 1000)
    return page.evaluate("window.pocketgan.stats()")
