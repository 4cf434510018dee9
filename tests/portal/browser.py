"""Shared helpers of the browser tests: Debian's Chromium driven by Playwright for Python.

Chromium is Debian's (/usr/bin/chromium, installed by scripts/test); Playwright's own browser
download is never used. MapLibre draws with WebGL on SwiftShader. A test module imports the
fixtures it uses (``from tests.portal.browser import browser, visit  # noqa: F401``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
BACKGROUND = (0xF5, 0xF5, 0xF2)  # map.js's background colour
VIEWPORT = {"width": 1000, "height": 700}
#: Resolves once the map has drawn everything it has asked for (MapLibre's "idle"); rejects
#: after 60 s (Playwright's evaluate has no timeout: a promise that never settles would hang).
IDLE = """() => new Promise((done, fail) => {
  setTimeout(() => fail(new Error("the map never became idle")), 60000);
  const wait = () => {
    const map = window.geoportalMap;
    if (!map) { setTimeout(wait, 50); return; }
    map.once("idle", () => done(true));
    map.triggerRepaint();
  };
  wait();
})"""

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Headless Debian Chromium (the test skips when it is not installed)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it with apt)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield b
        b.close()


class Visit:
    """A page in a fresh browser context, recording console errors and every request."""

    def __init__(self, browser, locale: str = "zh-TW", viewport: dict | None = None) -> None:
        self.context = browser.new_context(
            viewport=viewport or VIEWPORT, locale=locale, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.failed.append(f"{r.url}: {r.status}")
        )

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def open(self, url: str, map_idle: bool = True) -> Visit:
        """Go to ``url``; wait for the map to finish drawing unless ``map_idle`` is False."""
        self.page.goto(url)
        if map_idle:
            self.idle()
        else:
            self.page.wait_for_load_state("networkidle")
        return self

    def idle(self) -> None:
        """Wait until the page's map has drawn everything it asked for."""
        self.page.evaluate(IDLE)

    def project(self, lon: float, lat: float) -> tuple[int, int]:
        """Where the map draws a lon/lat, in CSS pixels of the map element."""
        x, y = self.page.evaluate(
            "([lon, lat]) => { const p = window.geoportalMap.project([lon, lat]);"
            " return [p.x, p.y]; }",
            [lon, lat],
        )
        return round(x), round(y)

    def map_image(self) -> Image.Image:
        """A screenshot of the map element."""
        return Image.open(io.BytesIO(self.page.locator("#map").screenshot())).convert("RGB")

    def outside(self, base: str) -> list[str]:
        """Requests made to any host but ``base``'s."""
        host = urlsplit(base).netloc
        web = [u for u in self.requests if urlsplit(u).scheme in ("http", "https")]
        return [u for u in web if urlsplit(u).netloc != host]

    def close(self) -> None:
        """Close the browser context."""
        self.context.close()


@pytest.fixture
def visit(browser) -> Iterator:
    """``visit(locale=...)`` opens a fresh :class:`Visit`; all are closed after the test."""
    opened: list[Visit] = []

    def make(locale: str = "zh-TW", viewport: dict | None = None) -> Visit:
        opened.append(Visit(browser, locale, viewport))
        return opened[-1]

    yield make
    for v in opened:
        v.close()


def close_colour(a: tuple[int, ...], b: tuple[int, ...], tolerance: int) -> bool:
    """Whether two colours differ by at most ``tolerance`` in every channel."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))
