"""What the web app shows of a queue item: never the expert label of an unanswered anchor."""

from __future__ import annotations

from typing import Any

from tether.conversation import as_dicts, from_stored, with_system
from tether.labeling.queue import QueueItem
from tether.labeling.submit import SubmitResult
from tether.spec.model import Spec


def rubrics(spec: Spec, dimension: str) -> list[dict[str, Any]]:
    """The rubric of the item's dimension first, then the others (shown in a collapsible panel)."""
    dims = sorted(spec.dimensions, key=lambda d: d.id != dimension)
    return [
        {
            "id": d.id,
            "description": d.description,
            "critical": d.critical,
            "levels": [
                {"score": level.score, "description": level.description} for level in reversed(d.rubric)
            ],
        }
        for d in dims
    ]


def item_payload(item: QueueItem, spec: Spec) -> dict[str, Any]:
    """What a rater is shown. ``prompt`` is the last user turn (its meaning before conversations);
    ``messages`` the whole conversation the two replies answer, the spec's system prompt first when
    the conversation has none, so the rater sees what the model saw."""
    task = item.task
    conv = with_system(from_stored(task.prompt, task.messages), spec.generation.system_prompt)
    # Hidden anchors are presented exactly like live tasks: the purpose says "task".
    return {
        "assignment_id": item.assignment.id,
        "purpose": "calibration" if item.is_calibration else "task",
        "prompt": item.task.prompt,
        "messages": as_dicts(conv),
        "left": item.left,
        "right": item.right,
        "dimension": item.task.dimension,
        "calibration": {"done": item.calibration_done, "total": item.calibration_total}
        if item.is_calibration
        else None,
        "rubrics": rubrics(spec, item.task.dimension),
    }


def result_payload(result: SubmitResult) -> dict[str, Any]:
    j = result.judgment
    out: dict[str, Any] = {
        "judgment_id": j.id,
        "assignment_id": j.assignment_id,
        "choice": j.shown_choice,
        "strength": j.strength,
        "replayed": result.replayed,
        "feedback": None,
        "status": result.status.status if result.status else None,
    }
    if result.feedback is not None:
        out["feedback"] = {
            "expert_choice": result.feedback.expert_choice,
            "explanation": result.feedback.explanation,
            "correct": result.feedback.correct,
        }
    return out
