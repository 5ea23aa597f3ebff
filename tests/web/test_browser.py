"""A new rater in a real browser: sign in, pass calibration, judge by keyboard alone.

Runs Debian's chromium through Playwright against the app served by uvicorn on loopback, so
templates, rate.js and style.css are exercised as a rater meets them. Skips only where
chromium cannot be found or installed.

    .venv/bin/python -m pytest tests/web/test_browser.py
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tether.labeling.submit import canonical
from tether.store.judgments import rater_judgments
from tether.store.raters import get_rater
from tether.store.tasks import AssignmentRecord, open_assignment

from .browser import (
    CHROMIUM_ARGS,
    live_server,
    png_size_and_colours,
    web_project_with_first_task,
)
from .conftest import WebProject

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
KEYS = {"A": "1", "tie": "2", "B": "3"}
RATER = "rosa"
LIVE_JUDGMENTS = 3


def test_new_rater_calibrates_and_judges_by_keyboard(tmp_path: Path, chromium: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    web, xss_task = web_project_with_first_task(
        tmp_path,
        tasks=40,
        prompt="Quote the user's message back to them.",
        responses=(f"You wrote: {PAYLOAD}", "I would rather not repeat markup; here is a summary instead."),
    )
    token = web.add(RATER)

    with live_server(web.app) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))

            sign_in(page, base, token)
            pass_calibration(page, web)
            submitted = judge_live_work(page, web, xss_task)
        finally:
            browser.close()

    assert not errors, f"JavaScript errors on the pages: {errors}"
    off_loopback = [url for url in requests if not url.startswith(f"{base}/")]
    assert requests and not off_loopback, (
        f"requests left loopback (the app must work offline): {off_loopback}"
    )

    with web.project.store.session() as session:
        rater = get_rater(session, project_id=web.project.project_id, name=RATER)
        judgments = rater_judgments(session, rater_id=rater.id)
        calibration = rater_judgments(session, rater_id=rater.id, purpose="calibration")
    assert rater.status == "active"
    assert len(calibration) == 20 and len(judgments) == 20 + LIVE_JUDGMENTS
    live = [(j.assignment_id, j.rationale) for j in judgments if j.id not in {c.id for c in calibration}]
    assert live == submitted


# --- the rater's steps --------------------------------------------------------------------------


def sign_in(page: Page, base: str, token: str) -> None:
    """Type the token into the login form and press Enter."""
    page.goto(f"{base}/login")
    page.locator("#token").click()  # not relying on autofocus timing
    page.locator("#token").press_sequentially(token)
    page.locator("#token").press("Enter")
    page.wait_for_url(f"{base}/rate")


def pass_calibration(page: Page, web: WebProject) -> None:
    """Answer each anchor as the experts did, read the verdict, continue; the last says 'passed'."""
    total = web.ctx.policy.calibration_size
    for k in range(1, total + 1):
        assert f"Calibration: anchor {k} of {total}" in page.locator(".banner").inner_text()
        assert page.locator(".banner progress").get_attribute("value") == str(k - 1)
        assignment = shown_assignment(page, web)
        expert = canonical(web.ctx.task_anchor[assignment.task_id].label, bool(assignment.swapped))
        choose_and_explain(page, expert, f"Anchor {k}: this one follows the rubric more closely.")
        submit(page)
        assert page.locator("#expert").inner_text() == expert
        assert "You agreed with the experts" in page.locator("h1").inner_text()
        if k == total:
            assert "Calibration passed" in page.locator("main").inner_text()
        with page.expect_navigation():
            page.locator("#continue").click()


def judge_live_work(page: Page, web: WebProject, xss_task: int) -> list[tuple[int, str]]:
    """Three judgments by keyboard; checks the counter, the planted payload, screenshot and tablet."""
    done = done_today(page)
    assert done == web.ctx.policy.calibration_size
    submitted: list[tuple[int, str]] = []
    saw_payload = False
    for n in range(LIVE_JUDGMENTS):
        assert "Calibration" not in page.title()
        assignment = shown_assignment(page, web)
        rationale = f"Live {n + 1}: A answers the request and stays accurate."
        if assignment.task_id == xss_task:
            assert_payload_inert(page)
            saw_payload = True
        choose_and_explain(page, "A", rationale)
        if n == 0:
            save_screenshot(page)
            assert_fits_tablet(page)
        submit(page)
        submitted.append((assignment.id, rationale))
        assert done_today(page) == done + n + 1
    assert saw_payload, "the planted task was not among the first live items"
    return submitted


def choose_and_explain(page: Page, choice: str, rationale: str) -> None:
    """Digit key for the choice (focus outside the textarea), then Tab to the textarea and type."""
    page.keyboard.press(KEYS[choice])
    assert page.locator(f'input[name="choice"][value="{choice}"]').is_checked()
    for _ in range(12):
        if page.evaluate("document.activeElement.id") == "rationale":
            break
        page.keyboard.press("Tab")
    else:
        raise AssertionError("Tab never reached the rationale textarea")
    page.keyboard.type(rationale)


def submit(page: Page) -> None:
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")


# --- what the test reads and checks -------------------------------------------------------------


def shown_assignment(page: Page, web: WebProject) -> AssignmentRecord:
    """The rater's open assignment in the store, which must be the one the page shows."""
    with web.project.store.session() as session:
        rater = get_rater(session, project_id=web.project.project_id, name=RATER)
        assignment = open_assignment(session, rater_id=rater.id)
    assert assignment is not None, "the page shows an item but the store has no open assignment"
    assert page.locator('input[name="assignment_id"]').get_attribute("value") == str(assignment.id)
    return assignment


def done_today(page: Page) -> int:
    match = re.search(r"(\d+) done today", page.locator(".top .who").inner_text())
    assert match, "the header has no 'done today' counter"
    return int(match.group(1))


def assert_payload_inert(page: Page) -> None:
    shown = page.locator("#response-a").inner_text() + page.locator("#response-b").inner_text()
    assert PAYLOAD in shown, "the response markup was not shown as literal text"
    assert page.evaluate("typeof window.__pwned") == "undefined", "markup in a response ran as script"
    assert page.locator("main script, main img").count() == 0


def save_screenshot(page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "comparison.png"
    data = page.screenshot(path=str(target), full_page=True)
    width, _height, values = png_size_and_colours(data)
    assert target.stat().st_size > 10_000, "the screenshot is suspiciously small"
    assert width >= 800 and values > 50, f"the screenshot looks blank ({width} px wide, {values} values)"


def assert_fits_tablet(page: Page) -> None:
    """At 768x1024 both responses are visible and nothing needs horizontal scrolling."""
    width = 768
    page.set_viewport_size({"width": width, "height": 1024})
    try:
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for selector in ("#response-a", "#response-b", "#rationale"):
            box = page.locator(selector).bounding_box()
            assert page.locator(selector).is_visible() and box is not None, selector
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
