"""`tether loop` and `tether lineage`: short RLHF iterations, and how any artifact came to be.

    tether loop --iterations 2               # label, train, gate, RL, evals, diagnose; twice
    tether loop                              # continue an unfinished (killed or stopped) iteration
    tether lineage rl_checkpoint-3f2a...     # spec, labels, raters, reward model, run behind it

Exit codes: 0 when the asked iterations completed (or the loop is waiting for raters), 3 when an
iteration stopped: a gate still failing after its targeted relabeling rounds, or a critical alert.
Either way the report is written and five lines say what happened and what to do next; `tether
loop` resumes a stopped iteration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.rule import Rule
from rich.tree import Tree

from tether.cli.common import ProjectOption, check_pool, console, loop_hooks, open_project, say
from tether.errors import QualityGateFailed
from tether.feedback.loop import LoopConfig

_D = LoopConfig()


def loop(
    project: ProjectOption = None,
    iterations: Annotated[
        int, typer.Option(min=1, help="Iterations to finish now (a resumed one counts).")
    ] = 1,
    pairs: Annotated[
        int | None,
        typer.Option(min=1, help="Comparison tasks per batch (default: spec loop.pairs_per_iteration)."),
    ] = None,
    first_pairs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Tasks in the first batch (default: spec loop.first_iteration_pairs, else --pairs)."
        ),
    ] = None,
    rm_epochs: Annotated[int, typer.Option(min=1, help="Reward-model epochs.")] = _D.rm_epochs,
    rl_steps: Annotated[
        int | None, typer.Option(min=1, help="RL steps per run (default: spec rl.steps_per_run).")
    ] = None,
    rl_save_every: Annotated[
        int | None, typer.Option(min=1, help="RL checkpoints every N steps, where a killed loop resumes.")
    ] = None,
    redteam_prompts: Annotated[
        int, typer.Option(min=0, help="Prompts the red-team search samples (0: no search).")
    ] = _D.redteam_prompts,
    redteam_top: Annotated[
        int, typer.Option(min=0, help="Findings routed to the next batch.")
    ] = _D.redteam_top,
    seed: Annotated[int, typer.Option(help="Base seed (iteration k uses seed + k).")] = _D.seed,
    max_gate_retries: Annotated[
        int | None,
        typer.Option(min=0, help="Targeted relabeling rounds after a failed gate (default: spec's)."),
    ] = None,
    remediation_pairs: Annotated[
        int | None,
        typer.Option(min=1, help="Targeted tasks per failed check (default: spec loop.remediation_pairs)."),
    ] = None,
    pool: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Sandbox only: the simulated rater pool YAML (default: built-in).",
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Where the HTML report goes (default: <project>/report.html).")
    ] = None,
    log_to: Annotated[
        list[str] | None,
        typer.Option("--log-to", help="Log RM training and RL to these trackers (tensorboard, wandb, ...)."),
    ] = None,
) -> None:
    """Run short RLHF iterations (label, reward model, gate, RL, evals, diagnosis), resumable per step.

    Writes the HTML report at the end, also when an iteration stopped (then the exit code is 3)."""
    import time

    from tether.feedback.loop import default_steps, run_loop
    from tether.hf import quiet_transformers
    from tether.report import collect, write_report
    from tether.report.summary import summary_lines
    from tether.trackers import check_trackers

    quiet_transformers()
    proj = open_project(project)
    cfg = LoopConfig(
        iterations=iterations,
        pairs=pairs,
        first_pairs=first_pairs,
        rm_epochs=rm_epochs,
        rl_steps=rl_steps,
        rl_save_every=rl_save_every,
        redteam_prompts=redteam_prompts,
        redteam_top=redteam_top,
        seed=seed,
        max_gate_retries=max_gate_retries,
        remediation_pairs=remediation_pairs,
        pool=str(pool) if pool else None,
        trackers=tuple(check_trackers(log_to or ())),
    )
    check_pool(pool)  # a bad pool file fails here, with its path, before anything runs
    start = time.perf_counter()
    result = run_loop(proj, cfg, default_steps(), say=say, hooks=loop_hooks())
    for record in result.iterations:
        console.print(Rule(f"iteration {record.number}: {record.status}"))
    if result.status == "waiting":
        console.print(f"[yellow]waiting:[/] {escape(result.reason or '')}")
        return
    out = write_report(collect(proj), report or proj.root / "report.html")
    for line in summary_lines(result.iterations, out, seconds=time.perf_counter() - start):
        console.print(escape(line))
    if result.status == "stopped":
        raise QualityGateFailed(f"the loop stopped: {result.reason}")


def lineage(
    artifact: Annotated[str, typer.Argument(help="Artifact id (e.g. an rl_checkpoint's).")],
    project: ProjectOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the tree as JSON.")] = False,
) -> None:
    """Show how an artifact came to be: spec version, labels and raters, reward model, run, iteration."""
    from tether.feedback.lineage import LineageNode, artifact_lineage

    node = artifact_lineage(open_project(project), artifact)
    if as_json:
        console.print_json(json.dumps(node.to_dict()))
        return

    def label(n: LineageNode) -> str:
        loops = f" [cyan]iteration {', '.join(map(str, n.iterations))}[/]" if n.iterations else ""
        facts = ", ".join(f"{k}={escape(str(v))}" for k, v in n.details.items() if v not in (None, [], {}))
        return f"[bold]{n.kind}[/] {escape(n.id)} [dim]{escape(n.path)} spec {n.spec_hash[:12]}[/]{loops}" + (
            f"\n  {facts}" if facts else ""
        )

    def add(tree: Tree, n: LineageNode) -> None:
        for child in n.children:
            add(tree.add(label(child)), child)

    tree = Tree(label(node))
    add(tree, node)
    console.print(tree)
