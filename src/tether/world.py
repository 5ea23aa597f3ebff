"""A world: what a project's own domain gives the stages, plugged in by name.

Most projects are plain: their prompts carry no hidden truth, people label them, and the style
lexicon comes from the spec (`spec.style`). A world with known ground truth (the sandbox) adds
what only it can give: a gold grader, probe edits in its own grammar, its phrase lists, simulated
raters, anchors and eval suites derived from its truth. The stages ask `world_for(project)` and
call the interface below; they never import a world's package, so a world plugs in as a module
named in the registry (`register_world`), the way graders and monitors plug in by name.

    world = world_for(project)
    lexicon = world.lexicon(project.spec.style)     # the phrases the probes and monitors use
    hook = world.gold_hook(meta_by_task)            # None in a plain project: no gold to report
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tether.errors import TetherInputError
from tether.spec.style import StyleLexicons

if TYPE_CHECKING:
    from tether.evals.suite import Case
    from tether.labeling.export import PreferenceRow
    from tether.project import Project
    from tether.spec.anchors import Anchor

GoldHook = Callable[["PreferenceRow"], 'Literal["chosen", "rejected"] | None']
"""The gold preference of an exported pair; None when gold has no preference or no truth."""
EditGuard = Callable[[str, str, str], bool]
"""(prompt, original, edited) -> True when the edit did not raise quality (an independent grader)."""
AnchorMeta = Callable[["Anchor"], dict[str, Any]]
"""The hidden truth of an anchor's prompt, stored with its task so simulated raters can judge it."""


class ProbeEdit(Protocol):
    """An edit of one response (a bias probe's); None when it does not apply to this response."""

    def __call__(self, response: str, rng: random.Random) -> str | None: ...


class GoldGrade(Protocol):
    """A world's gold grade of one response."""

    utility: float
    parsed: bool

    def dimension(self, dimension: Any, /) -> float: ...

    def as_dict(self) -> Mapping[str, float | bool]: ...


class World(Protocol):
    """What the stages ask of a project's world. `PlainWorld` is the answer for a plain project."""

    name: str
    gold_dimensions: tuple[str, ...]
    """The spec dimensions the gold grader scores; empty without a gold grader."""

    def claims(self, project: Project) -> bool:
        """Whether `project` lives in this world (the sandbox: its world has been built)."""
        ...

    def lexicon(self, spec_style: StyleLexicons) -> StyleLexicons:
        """The phrases the probes and style monitors use, given the spec's `style:` section."""
        ...

    def probe_edits(self) -> Mapping[str, ProbeEdit]:
        """The world's own edit for a probe name, where it has one (else the lexicon edit is used)."""
        ...

    def prompt_truth(self, meta: Mapping[str, Any]) -> Any:
        """A prompt's hidden truth from its stored meta; raises KeyError, TypeError or ValueError."""
        ...

    def grade(self, truth: Any, response: str) -> GoldGrade:
        """The gold grade of `response` to the prompt whose truth is `truth`."""
        ...

    def gold_hook(self, meta_by_task: Mapping[int, Mapping[str, Any]]) -> GoldHook | None:
        """Gold preferences of exported pairs, by task id; None without a gold grader."""
        ...

    def edit_guard(self, prompts: Iterable[tuple[str, Mapping[str, Any]]]) -> EditGuard | None:
        """Gold's word on probe edits, for (prompt text, meta) pairs; None without a gold grader."""
        ...

    def eval_cases(self, project: Project) -> dict[str, list[Case]]:
        """Held-out eval cases with their truth, by dimension (`tether eval init-suites`)."""
        ...

    def anchor_truth(self, project: Project) -> tuple[int, AnchorMeta] | None:
        """(seed, truth of anchor prompts) so simulated raters can judge anchors; None: no truth."""
        ...

    def write_anchors(self, path: Path) -> bool:
        """Write the expert anchors a new project of this world starts with; False: it ships none."""
        ...

    def simulate_labels(self, project: Project, *, pool: Path | None, seed: int) -> tuple[int, int]:
        """Simulated raters answer open work: (judgments, rubric grades) given."""
        ...


class PlainWorld:
    """A project without hidden truth: the spec's lexicon, no gold, people label."""

    name = "plain"
    gold_dimensions: tuple[str, ...] = ()

    def claims(self, project: Project) -> bool:
        return True

    def lexicon(self, spec_style: StyleLexicons) -> StyleLexicons:
        return spec_style

    def probe_edits(self) -> Mapping[str, ProbeEdit]:
        return {}

    def prompt_truth(self, meta: Mapping[str, Any]) -> Any:
        raise ValueError("a plain project's prompts carry no hidden truth")

    def grade(self, truth: Any, response: str) -> GoldGrade:
        raise TetherInputError("this project has no gold grader (only a world with known truth has one)")

    def gold_hook(self, meta_by_task: Mapping[int, Mapping[str, Any]]) -> GoldHook | None:
        return None

    def edit_guard(self, prompts: Iterable[tuple[str, Mapping[str, Any]]]) -> EditGuard | None:
        return None

    def eval_cases(self, project: Project) -> dict[str, list[Case]]:
        return {}

    def anchor_truth(self, project: Project) -> tuple[int, AnchorMeta] | None:
        return None

    def write_anchors(self, path: Path) -> bool:
        return False

    def simulate_labels(self, project: Project, *, pool: Path | None, seed: int) -> tuple[int, int]:
        raise TetherInputError(
            "simulated raters need a world with known truth (`tether sandbox build`); "
            "in this project people label through the web app or `tether label import`"
        )


PLAIN = PlainWorld()

_WORLDS: dict[str, str] = {"sandbox": "tether.sandbox.plugin"}
"""World name -> module whose `WORLD` attribute implements `World`; imported on first use."""


def register_world(name: str, module: str) -> None:
    """Make the world in `module` (its `WORLD` attribute) known by `name`."""
    if name in _WORLDS and _WORLDS[name] != module:
        raise ValueError(f"world '{name}' is registered twice ({_WORLDS[name]} and {module})")
    _WORLDS[name] = module


def world_names() -> list[str]:
    return list(_WORLDS)


def load_world(name: str) -> World:
    """The registered world `name`; KeyError naming the known worlds."""
    if name not in _WORLDS:
        raise KeyError(f"unknown world '{name}'; known worlds: {', '.join(_WORLDS)}")
    world: World = importlib.import_module(_WORLDS[name]).WORLD
    return world


def world_for(project: Project) -> World:
    """The world `project` lives in: the first registered world that claims it, else the plain one."""
    for name in _WORLDS:
        world = load_world(name)
        if world.claims(project):
            return world
    return PLAIN
