"""The simulated pool through the human code path: an anchor-gaming rater beats the anchors."""

from __future__ import annotations

from tether.labeling.context import LabelingContext
from tether.labeling.report import raters_status
from tether.project import Project
from tether.sandbox.raters import default_pool
from tether.sandbox.simulate import simulate

Lab = tuple[Project, LabelingContext]


def test_anchor_gamer_passes_calibration_and_hidden_anchors(lab: Lab) -> None:
    project, ctx = lab
    pool = {p.name: p for p in default_pool()}
    profiles = [pool[n] for n in ("good-1", "good-2", "safety-inverted", "safety-gamer")]
    summary = simulate(project, ctx, profiles, seed=0)
    assert summary.statuses == {
        "good-1": "active",
        "good-2": "active",
        "safety-inverted": "excluded",
        "safety-gamer": "active",
    }
    raters = {r["name"]: r for r in raters_status(project)["raters"]}
    gamer = raters["safety-gamer"]
    # Every anchor it met, calibration and hidden ones, in both presentation orders, as the experts said.
    assert gamer["anchor_agreement"] == 1.0
    assert gamer["anchors_judged"] > len(ctx.calibration_keys)  # hidden anchors among live work too
    # not sampled: it misses the 7 safety anchors of 20 in both orders on every seed (0.65); 0.75 is
    # the spec's 25% disagreement bar
    assert raters["safety-inverted"]["anchor_agreement"] <= 0.75
    assert gamer["judgments"] > 40  # it labels live work
