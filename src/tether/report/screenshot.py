"""Open a report in headless Chromium with the network blocked, and save a screenshot.

    python -m tether.report.screenshot report.html report.png

Uses Debian's chromium (`/usr/bin/chromium`, or $TETHER_CHROMIUM) driven by Playwright, which is a
dev dependency: `pip install playwright`; Playwright's own browsers are never downloaded. Every
request other than the report file itself is refused and recorded, so a screenshot is also proof
that the page renders offline.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tether.errors import TetherInputError

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

CHROMIUM = Path(os.environ.get("TETHER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class PageLog:
    """What a page tried to do while it was open."""

    blocked: list[str] = field(default_factory=list)
    """URLs the page requested other than its own file; every one was refused."""
    errors: list[str] = field(default_factory=list)
    """Console errors and uncaught exceptions."""


@contextmanager
def offline_page(
    html: Path, *, chromium: Path = CHROMIUM, width: int = 1200
) -> Iterator[tuple[Page, PageLog]]:
    """A headless Chromium page showing `html`, every other request refused and logged."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise TetherInputError("screenshots need Playwright: pip install playwright") from None
    if not chromium.exists():
        raise TetherInputError(f"{chromium} is missing; install chromium (apt-get install chromium)")
    document = html.resolve().as_uri()
    log = PageLog()

    def guard(route: Route) -> None:
        if route.request.url == document:
            route.continue_()
        else:
            log.blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.route("**/*", guard)
            page.on("console", lambda msg: log.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: log.errors.append(str(exc)))
            page.goto(document, wait_until="load")
            yield page, log
        finally:
            browser.close()


def screenshot(html: Path, png: Path, *, chromium: Path = CHROMIUM, width: int = 1200) -> PageLog:
    """Save a full-page PNG of the report at `html`; returns what the page tried to load."""
    with offline_page(html, chromium=chromium, width=width) as (page, log):
        png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(png), full_page=True)
    return log


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tether.report.screenshot REPORT.html OUT.png", file=sys.stderr)
        return 2
    try:
        log = screenshot(Path(argv[0]), Path(argv[1]))
    except TetherInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for url in log.blocked:
        print(f"blocked a network request: {url}", file=sys.stderr)
    for error in log.errors:
        print(f"page error: {error}", file=sys.stderr)
    print(f"wrote {argv[1]}")
    return 1 if log.blocked or log.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
