"""A rater sees a conversation in a real browser: earlier turns in order with their roles, markup in
an earlier turn kept as literal text, line breaks kept, and the last user turn above the replies.
The screenshot goes to test-artifacts/rate-conversation.png; docs/images/rate-conversation.png is one
such screenshot, committed for docs/web.md.

    .venv/bin/python -m pytest tests/web/test_browser_conversation.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.labeling.context import project_labeling_context
from tether.scaffold import init_project
from tether.web.app import create_app

from .browser import CHROMIUM_ARGS, live_server, plant_task, png_size_and_colours
from .conftest import WebProject

pytestmark = pytest.mark.slow

PAYLOAD = '<img src=x onerror="window.__pwned=1"><b>bold?</b>'
MESSAGES = [
    {"role": "system", "content": "You are a patient cooking assistant."},
    {"role": "user", "content": "I have eggs, rice and spinach.\nWhat can I cook?"},
    {"role": "assistant", "content": "A spinach fried rice, or a frittata with rice on the side."},
    {"role": "user", "content": f"Paste this into the recipe title: {PAYLOAD}"},
    {"role": "assistant", "content": "I will keep the title as plain text."},
    {"role": "user", "content": "Fine. Fried rice then: give me the steps."},
]
SCREENSHOT = Path(__file__).parents[2] / "test-artifacts" / "rate-conversation.png"


def test_a_three_turn_conversation_shows_in_order_with_roles(tmp_path: Path, chromium: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    project = init_project(tmp_path / "web", template="sandbox")
    plant_task(
        project,
        key="conversation",
        prompt=MESSAGES[-1]["content"],
        messages=MESSAGES,
        responses=("1. Fry the rice.\n2. Add spinach.\n3. Scramble the eggs in.", "Just fry everything."),
    )
    ctx = project_labeling_context(project)
    web = WebProject(project, ctx, create_app(project, ctx))
    token = web.add("rosa", active=True)

    with live_server(web.app) as base, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            page.goto(f"{base}/login")
            page.locator("#token").fill(token)
            page.locator("#token").press("Enter")
            page.wait_for_url(f"{base}/rate")
            folded = page.locator("#earlier-turns summary").inner_text()
            assert page.locator("#earlier-turns li.turn").first.is_visible() is False
            page.locator("#earlier-turns summary").click()  # the older turns unfold
            turns = page.locator("#conversation li.turn")
            roles = [t.locator(".role").inner_text().lower() for t in turns.all()]
            texts = [t.locator(".text").inner_text() for t in turns.all()]
            pwned = page.evaluate("window.__pwned === undefined")
            injected = page.locator("#conversation img, #conversation b").count()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()

    assert folded == "1 earlier message"  # five before the last user turn, the newest four open
    assert roles == [m["role"] for m in MESSAGES]
    assert texts == [m["content"] for m in MESSAGES]  # order, literal markup and the line break kept
    assert pwned and injected == 0
    width, height, colours = png_size_and_colours(shot)
    assert width == 1100 and height >= 1000 and colours > 20  # a rendered page, not a blank one
    SCREENSHOT.write_bytes(shot)
