"""A rater with the red-team role in a real browser: grade by rubric, then submit a finding.

Debian's chromium through Playwright against the app served by uvicorn on loopback, like
test_browser.py. Skips only where chromium cannot be found or installed.

    .venv/bin/python -m pytest tests/web/test_browser_grading.py
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tether.labeling import raters as rater_ops
from tether.store.findings import list_findings
from tether.store.grading import NewGradingTask, add_grading_tasks, grades_for

from .browser import CHROMIUM_ARGS, live_server, png_size_and_colours
from .conftest import WebProject, make_web_project

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

PAYLOAD = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">'
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
RATIONALE = "Gives the right capital and nothing else."
NOTE = "Echoes markup back to the user instead of answering."


def planted(tmp_path: Path) -> tuple[WebProject, str]:
    """A project with one accuracy grading task whose response carries markup, and a red-teamer."""
    web = make_web_project(tmp_path, tasks=4)
    task = NewGradingTask(
        source_key="browser/1",
        origin="eval",
        dimension="accuracy",
        prompt="What is the capital of Veloria?",
        response=f"Port Amsel. {PAYLOAD}",
    )
    with web.project.store.session() as session:
        add_grading_tasks(
            session, project_id=web.project.project_id, tasks=[task], spec_hash=web.project.spec_hash
        )
    _, token = rater_ops.add_person(web.project, name="rita", roles=["redteam"])
    rater_ops.readmit(web.project, name="rita", reason="test: calibrated elsewhere")
    return web, token


def test_a_red_teamer_grades_by_rubric_and_submits_a_finding(tmp_path: Path, chromium: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    web, token = planted(tmp_path)
    with live_server(web.app) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            sign_in(page, base, token)
            grade_by_rubric(page, base)
            submit_finding(page, base)
        finally:
            browser.close()

    assert not errors, f"JavaScript errors on the pages: {errors}"
    assert requests and all(url.startswith(f"{base}/") for url in requests), "requests left loopback"
    pid = web.project.project_id
    with web.project.store.session() as session:
        grades = grades_for(session, project_id=pid, source_keys=["browser/1"])["browser/1"]
        findings = list_findings(session, project_id=pid)
    assert [(g.score, g.max_score, g.rationale) for g in grades] == [(2, 2, RATIONALE)]
    assert [(f.source, f.dimension, f.response, f.note) for f in findings] == [
        ("web", "safety", PAYLOAD, NOTE)
    ]


def sign_in(page: Page, base: str, token: str) -> None:
    page.goto(f"{base}/login")
    page.locator("#token").fill(token)
    page.locator("#token").press("Enter")
    page.wait_for_url(f"{base}/rate")


def grade_by_rubric(page: Page, base: str) -> None:
    """Follow the header link, check the rubric form, try an empty rationale, then grade."""
    assert page.locator("#grading-link").inner_text() == "Rubric grading (1 open)"
    with page.expect_navigation():
        page.locator("#grading-link").click()
    assert PAYLOAD in page.locator("#response").inner_text(), "markup was not shown as literal text"
    assert page.evaluate("typeof window.__pwned") == "undefined", "markup in a response ran as script"
    assert page.locator('input[name="score"]').count() == 3
    page.get_by_text("States the correct answer.").click()  # the level's label checks its radio
    assert page.locator('input[name="score"][value="2"]').is_checked()
    page.get_by_role("button", name="Submit grade").click()  # the empty rationale is refused in place
    assert page.url == f"{base}/grade" and page.locator("#rationale").evaluate("e => !e.validity.valid")
    page.locator("#rationale").fill(RATIONALE)
    save_screenshot(page)
    with page.expect_navigation():
        page.get_by_role("button", name="Submit grade").click()
    assert "Nothing to grade right now" in page.locator("main").inner_text()


def submit_finding(page: Page, base: str) -> None:
    with page.expect_navigation():
        page.get_by_role("link", name="Red team").first.click()
    page.locator("#prompt").fill("Repeat my message back to me.")
    page.locator("#response").fill(PAYLOAD)
    page.locator("#dimension").select_option("safety")
    page.locator("#note").fill(NOTE)
    with page.expect_navigation():
        page.get_by_role("button", name="Submit finding").click()
    assert page.url == f"{base}/redteam?saved=1"
    assert page.locator("#saved").is_visible()
    assert page.locator("tr.finding").count() == 1
    assert PAYLOAD in page.locator("tr.finding").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"


def save_screenshot(page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "grading.png"
    data = page.screenshot(path=str(target), full_page=True)
    width, _height, values = png_size_and_colours(data)
    assert width >= 800 and values > 50, f"the screenshot looks blank ({width} px wide, {values} values)"
