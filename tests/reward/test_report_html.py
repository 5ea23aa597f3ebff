"""The HTML report: self-contained, with every piece of text escaped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tether
from tether.labeling.export import PreferenceRow
from tether.reward.evaluate import report_from_rewards
from tether.reward.gate import GateVerdict, measured_check
from tether.reward.probes import ProbeResult
from tether.reward.report_html import render_report, write_report
from tether.spec import load_spec

SPEC = load_spec(Path(tether.__file__).parent / "templates" / "sandbox" / "spec.yaml")
SCRIPT = "<script>alert('x')</script>"


def hostile_row(task_id: int, dimension: str) -> PreferenceRow:
    return PreferenceRow(
        prompt=f"{SCRIPT} prompt {task_id}",
        chosen="<b>chosen</b>",
        rejected='rejected" onmouseover="x',
        dimension=dimension,
        stratum="<i>edge</i>",
        origin="plan",
        margin=1.0,
        agreement=1.0,
        n_votes=1,
        rater_ids=(1,),
        rater_names=("r",),
        task_id=task_id,
    )


def test_report_escapes_text_and_needs_nothing_from_outside(tmp_path: Path) -> None:
    rows = [hostile_row(i, d) for i, d in enumerate(["safety", "honesty", "safety", "accuracy"])]
    report = report_from_rewards(
        rows,
        np.array([0.1, 2.0, -1.0, 0.5]),
        np.array([0.9, 1.0, 1.0, 0.4]),
        spec=SPEC,
        gold=["chosen", "chosen", None, "rejected"],
    )
    probes = [ProbeResult("filler", {}, 10, 0.7, 0.5, 0.9, 0.8, note="<img src=x>")]
    verdict = GateVerdict(False, [f"safety accuracy 0.50 < 0.75 (critical) {SCRIPT}"])
    html = render_report(report, probes, verdict, dimension_bars={"safety": 0.75})
    assert "<script" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;chosen&lt;/b&gt;" in html and "&lt;img src=x&gt;" in html
    assert "rejected&#34; onmouseover=&#34;x" in html
    # The SVG namespace is a name, not a request; nothing else may point outside the page.
    outside = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert (
        "http://" not in outside and "https://" not in outside and "<img" not in html and "<link" not in html
    )
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'' in html
    assert html.count("<svg") == 3  # accuracy, accuracy against gold, reliability diagram
    assert "FAILED" in html and "filler" in html and "+0.700" in html
    assert "safety" in html and "pick the longer response" in html
    (tmp_path / "r.html").write_text("old page", encoding="utf-8")
    path = write_report(tmp_path / "r.html", report)
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # replaced whole, no temporary left


def test_report_shows_each_gate_check_with_its_status_interval_and_bar() -> None:
    rows = [hostile_row(i, d) for i, d in enumerate(["safety", "honesty", "safety", "accuracy"])]
    report = report_from_rewards(
        rows, np.array([0.1, 2.0, -1.0, 0.5]), np.array([0.9, 1.0, 1.0, 0.4]), spec=SPEC
    )
    checks = [
        measured_check("overall accuracy", 0.85, 0.80, 0.90, 0.70, ">=", policy="interval"),
        measured_check("honesty accuracy", 0.78, 0.64, 0.86, 0.70, ">=", policy="strict", critical=True),
        measured_check(f"{SCRIPT} probe", 0.4996, 0.45, 0.55, 0.50, "<=", policy="interval", signed=True),
        measured_check("ECE", 0.12, None, None, 0.10, "<=", policy="interval"),
    ]
    html = render_report(report, (), GateVerdict.from_checks(checks))
    assert "<script" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; probe" in html
    assert '<td class="pass">pass</td><td>0.850</td><td>0.800–0.900</td>\n<td>min 0.70</td>' in html
    assert '<td class="marginal">marginal</td><td>0.780</td><td>0.640–0.860</td>' in html
    assert "honesty accuracy (critical)" in html and '<td class="fail">fail</td>' in html
    assert "<td>+0.4996</td><td>+0.450–+0.550</td>\n<td>max +0.50</td>" in html
    assert '<td class="fail">fail</td><td>0.120</td><td>n/a</td>\n<td>max 0.10</td>' in html
    assert "fails under critical_gate_policy=strict" in html
