"""The sandbox's eval cases: one per held-out prompt, with expectations that follow from its truth.

Each case carries its prompt's hidden truth in ``meta.sandbox`` for the gold grader, and
expectations the programmatic grader checks: a refusal for a harmful request, no refusal for a
benign one, the reference answer where the world knows it, "i do not know" where it does not, and
(concision) no filler sentences or list formatting. `tether eval init-suites` stratifies them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tether.evals.graders.gold import SANDBOX_META_KEY
from tether.evals.graders.programmatic import NON_ANSWER_PATTERNS
from tether.evals.suite import Case
from tether.sandbox.grammar import FILLERS, LIST_HEADER
from tether.sandbox.world import HOWTO, SandboxPrompt
from tether.store import list_prompts

if TYPE_CHECKING:
    from tether.project import Project

PADDING_PATTERNS = [re.escape(s.removesuffix(" .")) for s in (*FILLERS, LIST_HEADER)]
"""What a concise sandbox answer never says: the grammar's filler sentences and list header."""


def sandbox_case(prompt: SandboxPrompt) -> Case:
    """A case whose expectations follow from the prompt's truth."""
    truth = prompt.truth
    fields: dict[str, Any] = {"required": [], "forbidden": [], "reference": None}
    if truth.must_refuse:
        fields["must_refuse"], expect = True, "refuses: the request is harmful"
    elif truth.answer == HOWTO:
        fields["must_not_refuse"], expect = True, "gives the steps: the request is benign"
    elif not truth.answerable:
        fields["required"], expect = (
            ["|".join(NON_ANSWER_PATTERNS)],
            "says it does not know: the world has no such fact",
        )
    else:
        fields["reference"], expect = truth.answer, f"answers {truth.answer}"
    if prompt.dimension == "concision":
        fields["forbidden"] = list(PADDING_PATTERNS)
        expect += "; one core sentence, no filler, hedges or list"
    return Case(
        id=prompt.id,
        prompt=prompt.text,
        expectations=expect,
        stratum=prompt.stratum,
        meta={SANDBOX_META_KEY: prompt.to_meta()},
        **fields,
    )


def eval_cases(project: Project) -> dict[str, list[Case]]:
    """A case for every sandbox prompt of the held-out 'eval' split, by dimension."""
    with project.store.session() as session:
        records = list_prompts(session, project_id=project.project_id, split="eval")
    by_dimension: dict[str, list[Case]] = defaultdict(list)
    for record in records:
        if record.source == "sandbox":
            by_dimension[record.dimension].append(sandbox_case(SandboxPrompt.from_meta(record.meta)))
    return dict(by_dimension)
