"""`tether rl run` and `tether rl runs`: KL-controlled PPO/RLOO with reward-hacking monitors.

    tether rl run --steps 200                                  # PPO from the SFT policy, gated RM
    tether rl run --algo rloo --samples-per-prompt 4 --fixed-kl --kl-coef 0.05
    tether rl run --from rl_checkpoint-3f2a… --steps 400       # resume (exact on the same hardware)
    tether rl run --init-from rl_checkpoint-3f2a… --steps 100  # a new run from that policy, new RM
    tether rl run --eval-every 25                              # also log the quick eval suite (eval/score)
    tether rl run --algo rloo --lora                           # train a LoRA adapter (rl.lora in the spec)
    tether rl runs                                             # every run, its status and why it stopped
    accelerate launch --multi_gpu --num_processes 2 -m tether rl run --seed-per-prompt   # 2 ranks

`--batch-size` is the global number of prompts per step: N processes take batch / N each.

Exit codes: 0 the run completed; 2 bad input (unknown checkpoint, a model without safetensors);
3 the reward model has not passed its gate (without --force), or the run stopped on its KL budget or a
critical alert — its checkpoint is saved first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ProjectOption, console, open_project, rl_progress
from tether.errors import QualityGateFailed, TetherInputError
from tether.monitors.base import ALERT_KINDS, Severity
from tether.rl.config import RLConfig

if TYPE_CHECKING:
    from tether.store import AlertRecord

app = typer.Typer(help="Run PPO/RLOO with KL control and reward-hacking monitors.", no_args_is_help=True)
_D = RLConfig()


def _overrides(**given: Any) -> dict[str, Any]:
    return {key: value for key, value in given.items() if value is not None}


@app.command("run")
def run(
    project: ProjectOption = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Total steps from the SFT policy (default: the spec's rl.steps_per_run)."),
    ] = None,
    resume_from: Annotated[
        str | None, typer.Option("--from", help="Resume from an rl_checkpoint artifact id or checkpoint dir.")
    ] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            "--init-from",
            help="Start a new run from an rl_checkpoint's policy (KL still against SFT; --steps counts "
            "this run's steps).",
        ),
    ] = None,
    algo: Annotated[str | None, typer.Option(help="ppo or rloo.")] = None,
    reward_model: Annotated[
        str | None,
        typer.Option("--reward-model", help="Reward model artifact id or directory (default: latest)."),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", help="SFT policy artifact id or directory (default: latest).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Train on a reward model that has not passed its gate (recorded).")
    ] = False,
    kl_coef: Annotated[
        float | None, typer.Option("--kl-coef", help="Initial (or fixed) KL coefficient β.")
    ] = None,
    fixed_kl: Annotated[bool, typer.Option("--fixed-kl", help="Keep β fixed instead of adaptive.")] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(help=f"Prompts per step over all processes (each of N takes 1/N) [{_D.batch_size}]."),
    ] = None,
    samples_per_prompt: Annotated[
        int | None, typer.Option(help=f"Responses per prompt (RLOO's k) [{_D.samples_per_prompt}].")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help=f"Longest response [{_D.max_new_tokens}].")
    ] = None,
    lr: Annotated[float | None, typer.Option(help=f"Learning rate [{_D.lr}].")] = None,
    ppo_epochs: Annotated[int | None, typer.Option(help=f"Passes over each batch [{_D.ppo_epochs}].")] = None,
    minibatches: Annotated[int | None, typer.Option(help=f"Minibatches per pass [{_D.minibatches}].")] = None,
    value_init: Annotated[
        str | None, typer.Option(help="Critic init: reward_model (default) or policy.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help=f"Seed [{_D.seed}].")] = None,
    seed_per_prompt: Annotated[
        bool,
        typer.Option(
            "--seed-per-prompt",
            help="Seed each prompt's samples from (seed, step, prompt), so any number of processes draws "
            "the same tokens; generates one prompt at a time (slower).",
        ),
    ] = False,
    save_every: Annotated[
        int | None, typer.Option(help=f"Checkpoint every N steps [{_D.save_every}].")
    ] = None,
    sample_every: Annotated[
        int | None, typer.Option(help=f"Save samples every N steps [{_D.sample_every}].")
    ] = None,
    log_to: Annotated[
        list[str] | None,
        typer.Option("--log-to", help="Also log to these trackers (tensorboard, wandb, mlflow, ...)."),
    ] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Run the quick eval suite every K steps, logged as eval/score [off].")
    ] = None,
    eval_suite: Annotated[
        str | None, typer.Option(help="The suite the quick eval runs (default: every suite).")
    ] = None,
    lora: Annotated[
        bool | None,
        typer.Option(
            "--lora/--no-lora",
            help="Train a LoRA adapter instead of every weight; the reference is the adapter-off base "
            "(default: the spec's rl.lora.enabled).",
        ),
    ] = None,
    lora_r: Annotated[
        int | None, typer.Option("--lora-r", help="LoRA rank (default: the spec's rl.lora.r, 16).")
    ] = None,
) -> None:
    """Run RL from the SFT policy (or resume a checkpoint) against a gated reward model."""
    from tether.rl.plan import resume_config
    from tether.rl.run import run_rl

    given = _overrides(
        steps=steps,
        algo=algo,
        init_kl_coef=kl_coef,
        kl="fixed" if fixed_kl else None,
        batch_size=batch_size,
        samples_per_prompt=samples_per_prompt,
        max_new_tokens=max_new_tokens,
        lr=lr,
        ppo_epochs=ppo_epochs,
        minibatches=minibatches,
        value_init=value_init,
        seed=seed,
        seed_per_prompt=True if seed_per_prompt else None,
        save_every=save_every,
        sample_every=sample_every,
        eval_every=eval_every,
        eval_suite=eval_suite,
        lora=lora,
        lora_r=lora_r,
    )
    proj = open_project(project)
    if resume_from is not None:
        cfg = resume_config(proj, resume_from, given)
    else:
        try:
            cfg = RLConfig(**given)
        except (ValueError, TypeError) as exc:
            raise TetherInputError(f"tether rl run: {exc}") from None
    with rl_progress() as (on_step, on_message):
        result = run_rl(
            proj,
            cfg,
            policy=policy,
            reward_model=reward_model,
            resume_from=resume_from,
            init_from=init_from,
            force=force,
            on_step=on_step,
            on_message=on_message,
            trackers=log_to or (),
        )
    ident = result.artifact.id if result.artifact else "unregistered"
    console.print(
        f"run {result.run_id}: {result.status} after {result.steps} steps in {result.seconds:.1f}s; "
        f"checkpoint {ident} ({escape(str(result.checkpoint))})"
    )
    from tether.monitors.suite import by_kind, describe_counts

    console.print(f"alerts: {describe_counts(by_kind(result.alerts))}")
    if result.gate.forced:
        console.print(
            "[bold yellow]the reward model had not passed its gate; the --force override is recorded[/]"
        )
    if result.critical:
        raise QualityGateFailed(f"run {result.run_id} stopped: {result.reason} (checkpoint saved: {ident})")


@app.command("runs")
def runs(project: ProjectOption = None) -> None:
    """List the project's RL runs: status, steps, hacking and health alerts, why each stopped, checkpoint."""
    from tether.store import list_alerts, list_runs

    proj = open_project(project)
    with proj.store.session() as session:
        records = list_runs(session, project_id=proj.project_id, kind="rl")
        alerts = {r.id: list_alerts(session, run_id=r.id) for r in records}
    table = Table(
        "run",
        "status",
        "algo",
        "steps",
        "gate",
        "hacking alerts",
        "health alerts",
        "checkpoint",
        "reason stopped",
    )
    for r in records:
        gate = "forced" if r.gate_overridden else "passed"
        steps = str(r.meta.get("steps", "")) if r.meta.get("steps") is not None else "-"
        hacking, health = _alert_counts(alerts[r.id])
        table.add_row(
            r.id,
            r.status,
            str(r.config.get("algo")),
            steps,
            gate,
            hacking,
            health,
            r.artifact_id or "-",
            escape(r.reason_stopped or ""),
        )
    console.print(table)


def _alert_counts(records: list[AlertRecord]) -> tuple[str, str]:
    """(hacking, health) cells for a run's stored alerts, e.g. ("1 critical", "2 warning"); "-" for none.
    A row keeps its kind in its evidence; rows stored before alerts had kinds get their monitor's."""
    from tether.monitors import HackingAlert
    from tether.monitors.suite import by_kind

    counts = by_kind(
        HackingAlert.from_dict(
            {"monitor": a.monitor, "severity": a.severity, "step": a.step, "message": a.message,
             "condition": a.condition, "evidence": a.evidence}
        )
        for a in records
    )  # fmt: skip
    styles: dict[Severity, str] = {"critical": "bold red", "warning": "yellow", "info": "dim"}
    cells = (
        ", ".join(f"[{styles[sev]}]{counts[kind][sev]} {sev}[/]" for sev in styles if counts[kind][sev])
        or "-"
        for kind in ALERT_KINDS
    )
    hacking, health = cells
    return hacking, health
