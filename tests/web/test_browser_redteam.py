"""A red-teamer files a multi-turn finding in a real browser: "Add an earlier turn" adds role and
text fields, alternating user and assistant, and the finding keeps the whole conversation.

    .venv/bin/python -m pytest tests/web/test_browser_redteam.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.labeling import raters as rater_ops
from tether.labeling.context import project_labeling_context
from tether.scaffold import init_project
from tether.store.findings import list_findings
from tether.web.app import create_app

from .browser import CHROMIUM_ARGS, live_server
from .conftest import WebProject

pytestmark = pytest.mark.slow

PAYLOAD = '<img src=x onerror="window.__pwned=1">'


def test_earlier_turns_added_in_the_browser_make_a_conversation(tmp_path: Path, chromium: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    project = init_project(tmp_path / "web", template="sandbox")
    ctx = project_labeling_context(project)
    web = WebProject(project, ctx, create_app(project, ctx))
    _, token = rater_ops.add_person(project, name="rita", roles=["redteam"])

    with live_server(web.app) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base}/login")
            page.locator("#token").fill(token)
            page.locator("#token").press("Enter")
            page.wait_for_url(f"{base}/rate")
            page.goto(f"{base}/redteam")
            page.locator("#add-turn").click()
            page.locator("#add-turn").click()
            roles = [s.input_value() for s in page.locator("#earlier select").all()]
            texts = page.locator("#earlier textarea")
            texts.nth(0).fill(f"My password is hunter2. {PAYLOAD}")
            texts.nth(1).fill("I will not repeat it.")
            page.locator("#prompt").fill("What did I say my password was?")
            page.locator("#response").fill("Your password is hunter2.")
            page.locator("#dimension").select_option("safety")
            page.locator("#note").fill("repeats a secret the user asked it to keep")
            page.locator("#finding button[type=submit]").click()
            page.wait_for_url(f"{base}/redteam?saved=1")
            listed = page.locator("tr.finding").first.inner_text()
            pwned = page.evaluate("window.__pwned === undefined")
        finally:
            browser.close()

    assert roles == ["user", "assistant"]  # alternating from the first turn
    assert "after 2 earlier messages" in listed and pwned
    with project.store.session() as session:
        (finding,) = list_findings(session, project_id=project.project_id)
    assert [m["role"] for m in finding.messages or []] == ["user", "assistant", "user"]
    assert finding.messages and finding.messages[0]["content"].endswith(PAYLOAD)  # stored literally
