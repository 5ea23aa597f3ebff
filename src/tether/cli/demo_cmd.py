"""`tether demo`: the whole pipeline on the sandbox world, from an empty directory, in about ten minutes.

    tether demo --dir demo-project --fresh

(1) a sandbox project (2) its world: prompts, gold grader, simulated raters, the tiny SFT policy
(3) the behavioral suites from the held-out prompts (4) two loop iterations: labeling, reward model,
gate, RL, evals, diagnosis; the second labels where the first's diagnosis pointed (5) the HTML
report, and a five-line summary. The loop runs shorter than the spec's defaults so that the demo
fits on a laptop: `DEMO_LOOP` says how, and `tether loop` without those options runs the spec's.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.rule import Rule

from tether.cli import sandbox_cmd
from tether.cli.common import console
from tether.errors import QualityGateFailed, TetherInputError
from tether.feedback.loop import LoopConfig
from tether.project import CONFIG_FILE, STATE_DIR, read_config
from tether.scaffold import init_project
from tether.spec import short_hash

if TYPE_CHECKING:
    from tether.project import Project
    from tether.store.iterations import IterationRecord

DEMO_LOOP = LoopConfig(
    iterations=2, first_pairs=6400, pairs=1500, rm_epochs=5, rl_steps=100, redteam_prompts=80, redteam_top=50
)
"""A first batch of 6,400 comparisons (the reward model's start), a second of 1,500 steered by the first
diagnosis, 100 RL steps and an 80-prompt red-team search per iteration. The spec's 200 RL steps and
6,400 pairs in every iteration take about twice as long on 2 cores (and use up the sandbox's pool)."""
SUITE_CASES = 60
"""Cases per dimension in the demo's suites (the eval split holds about 300 per dimension)."""


def _clear_previous_demo(directory: Path) -> None:
    """Remove an earlier sandbox project at `directory`; refuse to delete anything else."""
    config = directory / CONFIG_FILE
    if not directory.exists():
        return
    if (
        not config.is_file()
        or read_config(config).template != "sandbox"
        or not (directory / STATE_DIR).is_dir()
    ):
        raise TetherInputError(f"{directory} exists and is not an earlier sandbox demo; choose another --dir")
    shutil.rmtree(directory)


def _f(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(float(value), fmt)


def summary_lines(iterations: list[IterationRecord], report: Path, seconds: float) -> list[str]:
    """Five lines: raters, the reward model and its gate, gold per iteration, RL and evals, the report."""
    last = iterations[-1]
    collect = last.results.get("collect") or {}
    excluded = [f"{r['name']}" for r in collect.get("raters") or [] if r.get("excluded")]
    gate = last.results.get("gate") or {}
    probes = {p["name"]: p for p in gate.get("probes") or []}
    filler = _f(probes.get("filler", {}).get("mean_delta"), "+.3f")
    evals = last.results.get("evals") or {}
    golds = [_f((i.results.get("evals") or {}).get("gold_utility")) for i in iterations]
    rl = last.results.get("rl") or {}
    kl = (rl.get("final") or {}).get("objective/kl")
    regressions = [d for d, v in (evals.get("vs_sft") or {}).items() if v.get("regression")]
    alerts = sum(len((i.results.get("rl") or {}).get("alerts") or []) for i in iterations)
    return [
        f"raters: {len(collect.get('raters') or [])} simulated, excluded {', '.join(excluded) or 'none'}; "
        f"{collect.get('pairs', 0)} labeled pairs",
        f"reward model: held-out accuracy {_f((gate.get('overall') or {}).get('accuracy'))}, gate "
        f"{'passed' if gate.get('passed') else 'FAILED'}; filler probe {filler}",
        f"gold utility on the eval suites: SFT {_f(evals.get('sft_gold_utility'))} -> "
        + " -> ".join(f"iteration {i + 1} {g}" for i, g in enumerate(golds)),
        f"last RL run: KL {_f(kl, '.2f')} of {rl.get('kl_budget', '-')} nats; {alerts} alert(s) over "
        f"{len(iterations)} iterations; eval regressions vs SFT: {', '.join(regressions) or 'none'}",
        f"report: {report} (demo took {seconds / 60:.1f} min)",
    ]


def _loop(project: Project) -> list[IterationRecord]:
    from tether.cli.loop_cmd import steps
    from tether.feedback.loop import run_loop

    result = run_loop(project, DEMO_LOOP, steps(), say=lambda text: console.print(escape(text)))  # type: ignore[arg-type]
    if result.status != "completed":
        raise QualityGateFailed(f"the demo's loop stopped: {result.reason}")
    return result.iterations


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo project.")] = Path(
        "demo-project"
    ),
    fresh: Annotated[bool, typer.Option(help="Replace an earlier demo project in the same place.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox world.")] = 0,
) -> None:
    """Create a sandbox project, build its world, run two loop iterations and write the report."""
    from tether.evals.init_suites import init_sandbox_suites
    from tether.hf import quiet_transformers
    from tether.report import collect, write_report

    quiet_transformers()
    start = time.perf_counter()
    if fresh:
        _clear_previous_demo(directory)
    console.print(Rule("1. project"))
    project = init_project(directory, template="sandbox")
    console.print(f"created {escape(str(project.root))} (spec {short_hash(project.spec_hash)})")
    console.print(Rule("2. sandbox world"))
    sandbox_cmd.build(project=project.root, seed=seed)
    console.print(Rule("3. eval suites from the held-out prompts"))
    written = init_sandbox_suites(project, per_dimension=SUITE_CASES, force=True)
    console.print(f"{len(written)} suites in {escape(str(project.root / project.spec.evals.suites_dir))}")
    console.print(Rule("4. two loop iterations"))
    iterations = _loop(project)
    console.print(Rule("5. report"))
    report = write_report(collect(project), project.root / "report.html")
    console.print(Rule("done"))
    for line in summary_lines(iterations, report, time.perf_counter() - start):
        console.print(escape(line))
