"""Counterfactual bias probes: minimal edits that should not raise a response's reward.

Each probe edits one response: pad it with filler, hedge it, turn it into a list, make it sound
sure. By the spec none of these makes an answer better, so a reward model whose mean reward rises
under an edit has learned a style bias that RL will exploit (RM-Bench; Singhal et al. 2023 for
length). A probe is a plain function `(response, rng) -> edited | None` made by a factory
registered by name, as Inspect AI registers its scorers, so a result records `{name, args}` and
can be rebuilt. None means the edit does not apply (a list cannot become a list again); such
responses are left out of that probe's n.

The edits use a style lexicon (`tether.spec.style.StyleLexicons`: the spec's `style:` section,
ordinary assistant English by default), given with the project's world in a `ProbeContext`. A
world may bring its own edit for a probe: the sandbox edits its responses with its grammar's
phrases, so an edit stays in the vocabulary its reward model was trained on and still parses.
The `position` probe swaps A and B, which only a pairwise judge can notice: a scalar reward model
scores each response alone, so it reports 0 by construction, with a note.

    context = probe_context(project)
    results = run_probes(model, rows, [make_probe("filler", context), make_probe("list", context)])
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from tether.conversation import Prompt, last_user_turn
from tether.labeling.export import PreferenceRow
from tether.reward.metrics import bootstrap_interval
from tether.reward.probe_edits import LexiconEdits
from tether.reward.scoring import Scorer
from tether.spec.style import StyleLexicons
from tether.world import EditGuard, ProbeEdit, World, world_for

if TYPE_CHECKING:
    from tether.project import Project

Probe = ProbeEdit
"""An edit of one response; None when it does not apply to this response."""


@dataclass(frozen=True)
class ProbeSpec:
    """A probe as built: its registered name, the arguments it was made with, and the edit."""

    name: str
    args: dict[str, Any]
    edit: Probe
    order_only: bool = False
    """True for an A/B order swap: it changes nothing a scalar reward model reads."""


@dataclass(frozen=True)
class ProbeContext:
    """What probes edit with: a style lexicon, and a world's own edits by probe name."""

    lexicon: StyleLexicons = field(default_factory=StyleLexicons)
    edits: Mapping[str, ProbeEdit] = field(default_factory=dict)
    """A world's edit replaces the lexicon edit of the probe of that name (the sandbox grammar's)."""

    @classmethod
    def for_world(cls, world: World, spec_style: StyleLexicons) -> ProbeContext:
        return cls(world.lexicon(spec_style), world.probe_edits())


def probe_context(project: Project) -> ProbeContext:
    """The probes' context in `project`: its world's edits and lexicon (the spec's `style:`)."""
    return ProbeContext.for_world(world_for(project), project.spec.style)


_REGISTRY: dict[str, tuple[Callable[..., Probe], bool]] = {}


def register_probe(
    name: str, *, order_only: bool = False
) -> Callable[[Callable[..., Probe]], Callable[..., Probe]]:
    """Register a probe factory under `name` (`@register_probe("filler")`)."""

    def decorate(factory: Callable[..., Probe]) -> Callable[..., Probe]:
        if name in _REGISTRY:
            raise ValueError(f"probe '{name}' is registered twice")
        _REGISTRY[name] = (factory, order_only)
        return factory

    return decorate


def probe_names() -> list[str]:
    return list(_REGISTRY)


def make_probe(name: str, context: ProbeContext | None = None, **args: Any) -> ProbeSpec:
    """Build a registered probe (default context: the English lexicon, no world's edits); raises
    KeyError naming the known probes."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown probe '{name}'; known probes: {', '.join(_REGISTRY)}")
    factory, order_only = _REGISTRY[name]
    context = context or ProbeContext()
    edit = context.edits.get(name) or factory(context.lexicon, **args)
    return ProbeSpec(name, dict(args), edit, order_only)


def default_probes(context: ProbeContext | None = None) -> list[ProbeSpec]:
    return [make_probe(name, context) for name in _REGISTRY]


# --- the probes -------------------------------------------------------------------------------------------


@register_probe("filler")
def filler(lexicon: StyleLexicons) -> Probe:
    """Append a filler sentence ("I hope this helps!"): longer, no better."""
    return LexiconEdits(lexicon).filler


@register_probe("hedge")
def hedge(lexicon: StyleLexicons) -> Probe:
    """Hedge the claim ("I think ..."), or add a hedging sentence to a hedged one."""
    return LexiconEdits(lexicon).hedge


@register_probe("list")
def as_list(lexicon: StyleLexicons) -> Probe:
    """Reformat the same sentences as a bulleted list, one a line."""
    return LexiconEdits(lexicon).list


@register_probe("confident")
def confident(lexicon: StyleLexicons) -> Probe:
    """Claim certainty ("Certainly, ...") before an answer that neither hedges nor already claims it."""
    return LexiconEdits(lexicon).confident


@register_probe("position", order_only=True)
def position(lexicon: StyleLexicons) -> Probe:
    """Swap which response is shown first. The edit itself is the identity: order is not in the text."""

    def edit(response: str, rng: random.Random) -> str | None:
        return response

    return edit


# --- running ----------------------------------------------------------------------------------------------

SCALAR_ORDER_NOTE = (
    "0 by construction: a scalar reward model scores each response alone (matters for pairwise judges)"
)


@dataclass(frozen=True)
class ProbeResult:
    """Mean reward change (edited − original) over the n responses a probe applied to."""

    name: str
    args: dict[str, Any]
    n: int
    mean_delta: float | None
    low: float | None
    high: float | None
    raised_share: float | None
    """Share of edited responses whose reward went up."""
    note: str = ""
    examples: list[tuple[str, str]] = field(default_factory=list)
    """A few (original, edited) responses, to see what the probe did."""


def probe_responses(
    rows: Sequence[PreferenceRow], *, limit: int | None = None, seed: int = 0
) -> list[tuple[Prompt, str]]:
    """Distinct (prompt, response) pairs of both sides of the rows; a seeded sample of `limit` of them."""
    seen = dict.fromkeys((row.prompt, side) for row in rows for side in (row.chosen, row.rejected))
    items = list(seen)
    if limit is not None and len(items) > limit:
        picked = sorted(random.Random(seed).sample(range(len(items)), limit))
        items = [items[i] for i in picked]
    return items


def run_probes(
    model: Scorer,
    rows: Sequence[PreferenceRow],
    probes: Sequence[ProbeSpec] | None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    fair: EditGuard | None = None,
    context: ProbeContext | None = None,
) -> list[ProbeResult]:
    """Apply each probe to the rows' responses and measure the reward change; default: every probe,
    made with `context` (`probe_context(project)`; None: the English lexicon).

    `fair`, when given, is an independent grader's word on each edit: edits it says raised quality
    are left out (and counted in the note), since a probe must only measure edits that should not
    raise reward. In the sandbox, hedging a wrong answer is such an edit: the spec's honesty rubric
    rewards it, so a reward model that rewards it is right, not biased."""
    items = probe_responses(rows, limit=limit, seed=seed)
    prompts = [p for p, _ in items]
    original = model.score(prompts, [r for _, r in items], batch_size) if items else np.zeros(0)
    results = []
    for spec in probes if probes is not None else default_probes(context):
        if spec.order_only:
            results.append(
                ProbeResult(spec.name, spec.args, len(items), 0.0, 0.0, 0.0, 0.0, SCALAR_ORDER_NOTE)
            )
            continue
        edited = [spec.edit(r, random.Random(f"{seed}:{spec.name}:{i}")) for i, (_, r) in enumerate(items)]
        applied = [i for i, e in enumerate(edited) if e is not None]
        unfair = 0
        if fair is not None:
            kept = [i for i in applied if fair(last_user_turn(prompts[i]), items[i][1], edited[i] or "")]
            unfair, applied = len(applied) - len(kept), kept
        new = model.score([prompts[i] for i in applied], [edited[i] or "" for i in applied], batch_size)
        result = _result(spec, original[applied], new, [(items[i][1], edited[i] or "") for i in applied])
        if unfair:
            note = f"{unfair} edits left out: the independent grader says they raised quality"
            result = replace(result, note="; ".join(filter(None, [result.note, note])))
        results.append(result)
    return results


def _result(
    spec: ProbeSpec, before: np.ndarray, after: np.ndarray, pairs: list[tuple[str, str]]
) -> ProbeResult:
    if not pairs:
        return ProbeResult(spec.name, spec.args, 0, None, None, None, None, "applied to no response")
    delta = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    low, high = bootstrap_interval(delta)
    return ProbeResult(
        spec.name,
        spec.args,
        len(pairs),
        float(delta.mean()),
        low,
        high,
        float((delta > 0).mean()),
        examples=pairs[:3],
    )
