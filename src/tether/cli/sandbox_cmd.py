"""`tether sandbox …`: build the offline rehearsal world and check its health figures."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import (
    ProjectOption,
    console,
    open_project,
    sft_progress,
    using,
)
from tether.sandbox.config import SandboxConfig, TinyPolicyConfig

if TYPE_CHECKING:
    from tether.sandbox.health import PolicyFigures, RaterFigures

# torch, transformers and the sandbox modules load inside the commands, so that
# `tether --help` and unrelated commands start fast.

app = typer.Typer(help="Build and check the offline sandbox world.", no_args_is_help=True)


@app.command("build")
def build(
    project: ProjectOption = None,
    seed: Annotated[int, typer.Option(help="Seed of prompts, corpus, anchors and the policy.")] = 0,
    prompts: Annotated[int, typer.Option(min=400, help="Prompts to generate.")] = SandboxConfig.n_prompts,
    steps: Annotated[int, typer.Option(min=1, help="SFT steps.")] = TinyPolicyConfig.steps,
) -> None:
    """Write prompts, the SFT policy and the anchors into a sandbox project."""
    from tether.hf import quiet_transformers
    from tether.sandbox.build import build_world

    proj = open_project(project)
    quiet_transformers()
    policy = dataclasses.replace(TinyPolicyConfig(), steps=steps, seed=seed)
    cfg = SandboxConfig(seed=seed, n_prompts=prompts, policy=policy)
    with sft_progress() as progress:
        task = progress.add_task("sft", total=cfg.policy.steps, loss=float("nan"))

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step + 1, loss=loss)

        result = build_world(proj, cfg, on_step=on_step)
    console.print(
        f"prompts: {result.prompts_added} new of {result.prompts_total} "
        f"(eval share {cfg.eval_share:.0%} held out)"
    )
    console.print(
        f"policy: {result.policy.id} ({escape(result.policy.path)}), "
        f"{result.policy.meta['parameters']:,} parameters, final loss {result.final_loss:.3f}"
    )
    console.print(f"anchors: {result.anchors.meta['anchors']} clear-cut, in {escape(result.anchors.path)}")
    console.print(f"[green]sandbox built[/] in {result.seconds:.1f} s (seed {seed})")


@app.command("check")
def check(
    project: ProjectOption = None,
    policy: Annotated[str | None, typer.Option(help="Policy artifact id or path (default: latest).")] = None,
    pairs: Annotated[int, typer.Option(min=100, help="Response pairs to judge.")] = 2000,
    pool: Annotated[Path | None, typer.Option(help="Rater pool YAML (default: the built-in pool).")] = None,
    seed: Annotated[int, typer.Option(help="Sampling and judgment seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure the world's health: SFT parse rate and gold band, rater agreement and biases."""
    from tether.artifacts import POLICY_KIND, resolve
    from tether.sandbox.build import check_sandbox_project, pool_prompts
    from tether.sandbox.health import policy_figures, policy_pairs, rater_figures
    from tether.sandbox.raters import default_pool, load_pool

    proj = open_project(project)
    check_sandbox_project(proj)
    resolved = using(resolve(proj, kind=POLICY_KIND, explicit=policy))
    profiles = load_pool(pool) if pool else default_pool()
    with console.status("sampling the SFT policy and judging pairs"):
        prompts = pool_prompts(proj)
        judged, samples = policy_pairs(resolved.path, prompts, n_pairs=pairs, seed=seed)
        pol = policy_figures([p for p, _ in samples], [r for _, r in samples])
        raters = rater_figures(judged, profiles, seed=seed)
    if as_json:
        console.print_json(json.dumps({"policy": asdict(pol), "raters": asdict(raters)}))
        return
    _print_health(pol, raters)


@app.command("gold-pairs")
def gold_pairs(
    out: Annotated[Path, typer.Option("--out", help="Export directory to write (must be new or empty).")],
    project: ProjectOption = None,
    policy: Annotated[str | None, typer.Option(help="Policy artifact id or path (default: latest).")] = None,
    samples: Annotated[int, typer.Option(help="Responses sampled per eval prompt (even).")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Write gold-labeled pairs from eval-split prompts, for `tether rm eval --data`."""
    from tether.artifacts import POLICY_KIND, resolve
    from tether.sandbox.build import check_sandbox_project
    from tether.sandbox.gold_export import write_gold_pairs

    proj = open_project(project)
    check_sandbox_project(proj)
    resolved = using(resolve(proj, kind=POLICY_KIND, explicit=policy))
    with console.status("sampling the SFT policy on eval prompts"):
        result = write_gold_pairs(proj, policy_dir=resolved.path, out=out, samples=samples, seed=seed)
    dims = ", ".join(f"{d} {n}" for d, n in sorted(result.by_dimension.items()))
    console.print(
        f"{result.pairs} gold-labeled pairs from {result.prompts} eval prompts in {escape(str(out))} "
        f"({dims}; {result.dropped_equal} pairs gold called equal were dropped)"
    )


@app.command("feedback-stream")
def feedback_stream(
    out: Annotated[Path, typer.Option("--out", help="JSONL file of flagged items to write.")],
    project: ProjectOption = None,
    n: Annotated[int, typer.Option("--n", min=1, help="Flagged items.")] = 1000,
    shift: Annotated[
        bool,
        typer.Option("--shift", help="A shifted prompt mix: mostly adversarial safety and edge honesty."),
    ] = False,
    policy: Annotated[str | None, typer.Option(help="Policy artifact id or path (default: latest).")] = None,
    grammar: Annotated[
        bool, typer.Option("--grammar", help="Answer from the SFT grammar, no model.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the prompts, responses and users.")] = 0,
) -> None:
    """Write flagged production items from the sandbox world, for `tether feedback ingest`."""
    from tether.artifacts import POLICY_KIND, resolve
    from tether.sandbox.build import check_sandbox_project
    from tether.sandbox.feedback_stream import write_sandbox_stream

    proj = open_project(project)
    check_sandbox_project(proj)
    resolved = None if grammar else using(resolve(proj, kind=POLICY_KIND, explicit=policy))
    version = (
        "sandbox-grammar"
        if resolved is None
        else resolved.record.id
        if resolved.record
        else resolved.path.name
    )
    with console.status(f"writing {n} flagged items"):
        written = write_sandbox_stream(
            out,
            proj.spec.labeling,
            n=n,
            shift=shift,
            seed=seed,
            policy_dir=resolved.path if resolved else None,
            model_version=version,
        )
    mix = "shifted" if shift else "in-distribution"
    console.print(f"{written} flagged items ({mix} prompt mix) in {escape(str(out))}")


def _print_health(pol: PolicyFigures, raters: RaterFigures) -> None:
    console.print(
        f"SFT policy on {pol.samples} samples: parse rate {pol.parse_rate:.3f}, "
        f"mean gold utility {pol.gold_utility:.3f}, mean length {pol.mean_words:.1f} words"
    )
    dims = ", ".join(f"{d} {v:.2f}" for d, v in pol.gold_by_dimension.items())
    console.print(f"  gold by prompt dimension: {dims}")
    console.print(
        f"  padded (2+ fillers) {pol.share_padded:.1%}, "
        f"concise (no filler, hedge or list) {pol.share_concise:.1%}"
    )
    console.print(
        f"{raters.pairs} pairs: {raters.clear_cut} clear-cut, {raters.near_ties} near ties; "
        f"pool pairwise agreement {raters.pool_agreement:.3f}"
    )
    table = Table("rater", "gold agreement (clear-cut)", "prefers longer (near ties)")
    for name, agreement in raters.gold_agreement.items():
        table.add_row(name, f"{agreement:.3f}", f"{raters.length_preference[name]:.3f}")
    console.print(table)
