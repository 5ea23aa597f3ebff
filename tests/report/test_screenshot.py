"""The report in a real browser: Debian's chromium through Playwright, with the network blocked.

Every request other than the report file is refused and recorded by `offline_page`; the test
asserts there were none, that nothing reached the console as an error, that each section is
visible, and saves a screenshot. Skips only where chromium or Playwright is missing.

    .venv/bin/python -m pytest tests/report/test_screenshot.py
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tether.report import collect, write_report
from tether.report.screenshot import CHROMIUM, main, offline_page, screenshot

from .conftest import build_loop_project

SECTIONS = ("spec", "labeling", "raters", "reward", "rl", "evals", "diagnosis")


@pytest.fixture
def browser_ready() -> None:
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install it with `apt-get install -y chromium` (as root)")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.usefixtures("browser_ready")
def test_report_renders_offline_in_chromium(tmp_path: Path) -> None:
    loop = build_loop_project(tmp_path / "p")
    html = write_report(collect(loop.project), tmp_path / "report.html")
    png = tmp_path / "report.png"

    with offline_page(html) as (page, log):
        assert page.title() == "Tether report: p"
        assert page.locator("#summary").is_visible()
        for number in (1, 2):
            for section in SECTIONS:
                assert page.locator(f"#iteration-{number} section.{section}").is_visible(), (number, section)
        charts = page.locator("#iteration-1 section.rl svg")
        assert charts.count() >= 5
        box = charts.first.bounding_box()
        assert box is not None and box["width"] > 400 and box["height"] > 150
        # The payload shows as text, and never ran.
        assert "mallory<script>" in page.locator("#iteration-1 table.exclusions").inner_text()
        assert page.evaluate("window.__pwned") is None
        assert "within budget" in page.locator("#iteration-1 p.kl").inner_text()
        page.screenshot(path=str(png), full_page=True)

    assert log.blocked == [], f"the report tried to reach the network: {log.blocked}"
    assert log.errors == [], f"console errors: {log.errors}"
    width, height = png_size(png)
    assert width == 1200 and height > 2000


@pytest.mark.usefixtures("browser_ready")
def test_the_guard_records_and_refuses_outside_requests(tmp_path: Path) -> None:
    """The check above can fail: a page that asks for an image by URL is caught."""
    html = tmp_path / "leaky.html"
    html.write_text(
        '<!doctype html><title>x</title><img src="http://example.invalid/a.png">', encoding="utf-8"
    )
    log = screenshot(html, tmp_path / "leaky.png")
    assert log.blocked == ["http://example.invalid/a.png"]


def test_screenshot_command_usage() -> None:
    assert main([]) == 2
