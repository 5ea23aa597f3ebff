"""The rendered page: what it must show, what it must escape, and that it asks for nothing."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tether.report import collect, render_report, write_report
from tether.report.html import summary_row
from tether.report.model import KLVerdict, LabelSection, ReportData, RLSection

from .conftest import PAYLOAD, STOP_REASON, build_loop_project


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> ReportData:
    loop = build_loop_project(tmp_path_factory.mktemp("html") / "p")
    return collect(loop.project, now=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))


@pytest.fixture(scope="module")
def page(data: ReportData) -> str:
    return render_report(data)


def iteration(page: str, number: int) -> str:
    """The HTML of one iteration's section."""
    start = page.index(f'<section class="iteration" id="iteration-{number}">')
    end = page.find('<section class="iteration"', start + 1)
    return page[start : end if end > 0 else len(page)]


def test_user_and_model_text_is_escaped(page: str) -> None:
    assert PAYLOAD not in page
    assert "<script" not in page and "<img" not in page
    escaped = (
        "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=&#34;window.__pwned=2&#34;&gt;"
    )
    # rater name (twice: exclusions and raters tables), reason, alert message, diagnosis, RM source
    assert page.count(escaped) >= 6


class Tags(HTMLParser):
    """Every start tag of a page with its attributes: text that merely looks like markup is not one."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_references_nothing_outside_itself(page: str) -> None:
    parser = Tags()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert {"svg", "table", "section"} <= names
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "image", "use", "foreignobject"}
    attributes = {name for _, attrs in parser.tags for name in attrs}
    assert not attributes & {"src", "srcset", "action", "formaction", "background", "poster", "xlink:href"}
    assert not any(name.startswith("on") for name in attributes)
    assert all((attrs.get("href") or "#").startswith("#") for _, attrs in parser.tags)
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # the browser refuses anything that slipped through


def test_header_and_summary(page: str) -> None:
    assert "<h1>Tether report: p</h1>" in page
    assert "generated 2030-01-02 03:04:05 UTC · 2 iterations" in page
    summary = page[page.index('<section id="summary">') : page.index('<section class="iteration"')]
    assert "2.55 / 5: within budget" in summary
    assert '<span class="badge badge-critical">1 critical</span>' in summary
    assert '<td class="fail">failed</td>' in summary and '<td class="pass">passed</td>' in summary


def test_summary_row_of_the_completed_iteration(data: ReportData) -> None:
    row = summary_row(data.iterations[0])
    assert (row.gate, row.gold_utility, row.sft_gold_utility, row.kl_verdict) == (
        "passed",
        0.7,
        0.55,
        "within budget",
    )
    assert row.alerts == {"critical": 1, "warning": 1, "info": 0}
    assert row.regressions == ("safety",)
    stopped = summary_row(data.iterations[1])
    assert (stopped.gate, stopped.kl_verdict, stopped.gold_utility) == ("failed", "not run", None)


def test_kl_within_budget_is_stated_with_its_numbers(page: str) -> None:
    first = iteration(page, 1)
    assert "KL to SFT 2.55 nats (mean of the last 10 steps" in first
    assert '<strong class="ok">within budget</strong>' in first
    assert "peak 3.00 at step 30" in first
    assert first.count("<polyline") >= 5 and "budget 5</text>" in first


def test_kl_over_budget_is_stated(data: ReportData) -> None:
    first = data.iterations[0]
    assert isinstance(first.rl, RLSection)
    over = replace(
        first.rl, kl=KLVerdict(budget=5.0, running=6.1, last=6.5, peak=7.0, peak_step=28, window=10)
    )
    html = render_report(replace(data, iterations=(replace(first, rl=over),)))
    assert '<strong class="bad">over budget</strong>' in html
    assert "6.10 / 5: over budget" in html


def test_exclusions_gate_alerts_and_diagnosis(page: str) -> None:
    first = iteration(page, 1)
    exclusions = first[first.index('<table class="exclusions">') :]
    assert "1 rater excluded" in first
    assert "mallory&lt;script&gt;" in exclusions[: exclusions.index("</table>")]
    assert "agreement with experts 0.41 &lt; 0.70" in exclusions
    assert 'Gate: <span class="pass">passed</span>' in first
    assert re.search(r'<tr class="sev-critical"><td>critical</td><td>length_drift</td>', first)
    assert re.search(r'<tr class="sev-warning"><td>warning</td><td>kl_spike</td>', first)
    assert "Regressions against SFT: safety." in first
    assert "Next labeling focus: dimensions safety; strata hard; 3 red-team findings." in first


def test_a_stopped_iteration_says_what_did_not_run(page: str) -> None:
    second = iteration(page, 2)
    stop_reason = STOP_REASON.replace("<", "&lt;")
    assert f"stopped: {stop_reason}" in second
    assert 'Gate: <span class="fail">FAILED</span>' in second
    assert "<li>safety accuracy 0.61 &lt; 0.75</li>" in second
    assert second.count(f'<p class="notrun">skipped: {stop_reason}</p>') == 2  # RL and evals
    assert "No alerts (RL did not run)." in second
    assert '<span class="add">+  kl_budget_nats: 4.0</span>' in second
    assert '<span class="badge badge-warning">this iteration</span>' in second  # mallory, excluded now
    assert "the gate failed on safety" in second


def test_write_report_replaces_the_file_whole(data: ReportData, tmp_path: Path) -> None:
    out = tmp_path / "site" / "report.html"
    write_report(data, out)
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert out.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_a_failed_write_leaves_the_old_report_and_no_temp_file(
    data: ReportData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    out.write_text("old report", encoding="utf-8")

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_report(data, out)
    assert out.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_batch_still_waiting_for_labels_says_so(data: ReportData) -> None:
    second = data.iterations[1]
    assert isinstance(second.label, LabelSection)
    waiting = replace(second, label=replace(second.label, collected=False))
    html = render_report(replace(data, iterations=(waiting,)))
    assert "labels not collected yet: the figures below are the batch as planned" in html


def test_a_stopped_loop_says_why_and_what_next_before_anything_else(page: str) -> None:
    banner = page.index('<section id="stopped"')
    assert banner < page.index('<section id="summary">')
    stopped = page[banner : page.index("</section>", banner)]
    assert "The loop stopped in iteration 2, at its gate step" in stopped
    assert STOP_REASON.replace("<", "&lt;") in stopped and "<script>" not in stopped
    assert "`tether loop` resumes at collect" in stopped


def test_the_gate_attempts_show_each_verdict_and_its_targeted_batch(page: str) -> None:
    second = iteration(page, 2)
    table = second[second.index('<table class="attempts">') :]
    table = table[: table.index("</table>")]
    assert "targeted batch of 400 tasks: probe:confident 400; relabel, retrain, re-gate" in table
    assert "confident +0.910 [+0.800, +1.020]" in table and "confident +0.410 [+0.300, +0.520]" in table
    assert '<span class="fail">stopped</span>' in table
    assert PAYLOAD not in table  # the failure text is escaped like every other user text


def test_the_reward_model_says_whose_labels_trained_it(page: str) -> None:
    first = iteration(page, 1)
    assert "Whose labels trained it: 2 raters and imported sources" in first
    assert "carol (180 pairs)" in first and "(120 pairs)" in first
    assert "Whose labels trained it" not in iteration(page, 2)  # an older row without sources
