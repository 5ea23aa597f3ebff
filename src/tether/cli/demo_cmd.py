"""`tether demo`: the whole pipeline on the sandbox world, from an empty directory, in about ten minutes.

    tether demo --dir demo-project --fresh

(1) a sandbox project (2) its world: prompts, gold grader, simulated raters, the tiny SFT policy
(3) the behavioral suites from the held-out prompts (4) two loop iterations: labeling, reward model,
gate, RL, evals, diagnosis; the second labels where the first's diagnosis pointed (5) the HTML
report, and a five-line summary. The loop runs shorter than the spec's defaults so that the demo
fits on a laptop: `DEMO_LOOP` says how, and `tether loop` without those options runs the spec's.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.rule import Rule

from tether.cli.common import check_pool, console, loop_hooks, say, sft_progress
from tether.errors import QualityGateFailed, TetherInputError
from tether.feedback.loop import LoopConfig
from tether.project import CONFIG_FILE, STATE_DIR, read_config
from tether.scaffold import init_project
from tether.spec import short_hash

if TYPE_CHECKING:
    from tether.project import Project

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


def _build_world(project: Project, seed: int) -> None:
    import dataclasses

    from tether.sandbox.build import build_world
    from tether.sandbox.config import SandboxConfig, TinyPolicyConfig

    cfg = SandboxConfig(seed=seed, policy=dataclasses.replace(TinyPolicyConfig(), seed=seed))
    with sft_progress() as progress:
        task = progress.add_task("sft", total=cfg.policy.steps, loss=float("nan"))
        result = build_world(
            project, cfg, on_step=lambda step, loss: progress.update(task, completed=step + 1, loss=loss)
        )
    console.print(
        f"{result.prompts_total} prompts, policy {result.policy.id} "
        f"({result.policy.meta['parameters']:,} parameters), {result.anchors.meta['anchors']} anchors; "
        f"sandbox built in {result.seconds:.1f} s (seed {seed})"
    )


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to create the demo project.")] = Path(
        "demo-project"
    ),
    fresh: Annotated[bool, typer.Option(help="Replace an earlier demo project in the same place.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the sandbox world and of the loop.")] = 0,
    pool: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Simulated rater pool YAML (default: the sandbox's built-in pool).",
        ),
    ] = None,
) -> None:
    """Create a sandbox project, build its world, run two loop iterations and write the report.

    A loop that stops (a gate still failing after its targeted relabeling, a critical alert) still
    writes the report, whose first screen says why; the command then exits 3."""
    from tether.evals.init_suites import init_sandbox_suites
    from tether.feedback.loop import default_steps, run_loop
    from tether.hf import quiet_transformers
    from tether.report import collect, write_report
    from tether.report.summary import summary_lines

    quiet_transformers()
    start = time.perf_counter()
    check_pool(pool)  # a bad pool file fails here, with its path, before anything runs
    if fresh:
        _clear_previous_demo(directory)
    console.print(Rule("1. project"))
    project = init_project(directory, template="sandbox")
    console.print(f"created {escape(str(project.root))} (spec {short_hash(project.spec_hash)})")
    console.print(Rule("2. sandbox world"))
    _build_world(project, seed)
    console.print(Rule("3. eval suites from the held-out prompts"))
    written = init_sandbox_suites(project, per_dimension=SUITE_CASES, force=True)
    console.print(f"{len(written)} suites in {escape(str(project.root / project.spec.evals.suites_dir))}")
    console.print(Rule("4. two loop iterations"))
    cfg = dataclasses.replace(DEMO_LOOP, seed=seed, pool=str(pool) if pool else None)
    result = run_loop(project, cfg, default_steps(), say=say, hooks=loop_hooks())
    console.print(Rule("5. report"))
    report = write_report(collect(project), project.root / "report.html")
    console.print(Rule("done" if result.status == "completed" else f"stopped: {result.status}"))
    for line in summary_lines(result.iterations, report, seconds=time.perf_counter() - start):
        console.print(escape(line))
    if result.status == "stopped":
        raise QualityGateFailed(f"the demo's loop stopped: {result.reason}")
