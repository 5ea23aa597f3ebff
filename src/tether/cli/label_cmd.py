"""`tether label …`: plan batches, simulate the sandbox pool, run an AI rater, import judgments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tether.cli.common import ProjectOption, console, open_project, using

if TYPE_CHECKING:
    from tether.artifacts import ResolvedArtifact
    from tether.labeling.context import LabelingContext
    from tether.project import Project


def project_context(project: Project) -> LabelingContext:
    from tether.labeling.context import project_labeling_context

    return project_labeling_context(project)


app = typer.Typer(help="Plan, assign and collect pairwise labeling batches.", no_args_is_help=True)


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@app.command("plan")
def plan(
    n: Annotated[int, typer.Option("--n", min=1, help="Tasks in the batch.")],
    project: ProjectOption = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="Policy or RL checkpoint (artifact id or path; default: the registered SFT policy)."
        ),
    ] = None,
    baseline: Annotated[str | None, typer.Option(help="Compare the policy against this checkpoint.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the draw and the sampling.")] = 0,
    max_new_tokens: Annotated[
        int | None, typer.Option(min=1, help="Longest response in tokens (default: the spec's generation).")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature, > 0 (default: the spec's generation).")
    ] = None,
    audit: Annotated[
        str | None,
        typer.Option(
            help="Instead of a batch: put N of this imported source's pairs before calibrated raters."
        ),
    ] = None,
    raters: Annotated[int, typer.Option(min=1, help="With --audit: raters per audited pair.")] = 1,
) -> None:
    """Draw a stratified batch meeting the spec's quotas, with two candidate responses per prompt
    (or, with --audit, open an imported source's pairs to calibrated raters)."""
    from tether.artifacts import POLICY_KIND, POLICY_KINDS, resolve
    from tether.errors import TetherInputError
    from tether.hf import quiet_transformers
    from tether.labeling.batches import PairSampler, PolicySource, plan_batch

    if audit is not None:
        _plan_audit(open_project(project), audit, n, raters, seed)
        return
    if temperature is not None and not temperature > 0:
        raise TetherInputError(f"--temperature must be greater than 0, got {temperature}")
    quiet_transformers()
    proj = open_project(project)
    main = using(resolve(proj, kind=POLICY_KIND if policy is None else POLICY_KINDS, explicit=policy))
    other = using(resolve(proj, kind=POLICY_KINDS, explicit=baseline)) if baseline else None

    def source(resolved: ResolvedArtifact) -> PolicySource:
        return PolicySource(resolved.path, resolved.record.id if resolved.record else str(resolved.path))

    overrides = {"max_new_tokens": max_new_tokens, "temperature": temperature}
    generation = proj.spec.generation.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    sampler = PairSampler(source(main), source(other) if other else None, seed=seed, generation=generation)
    with console.status(f"sampling two responses for {n} prompts"):
        planned = plan_batch(proj, n=n, sampler=sampler, labels=sampler.labels, seed=seed)
    s = planned.summary
    target = proj.spec.labeling.hard_case_share
    console.print(
        f"batch {planned.batch_id}: {s.tasks} tasks, {s.overlapped} overlapped "
        f"(x{proj.spec.labeling.raters_per_overlap} raters)"
    )
    console.print(f"hard-case share {s.hard_share:.1%} (spec {target:.0%}); strata {s.strata}")
    console.print("dimension shares: " + ", ".join(f"{d} {v:.1%}" for d, v in s.dimension_shares.items()))


def _plan_audit(proj: Project, source: str, n: int, raters: int, seed: int) -> None:
    from tether.labeling.audit import plan_audit

    plan = plan_audit(proj, source=source, n=n, raters=raters, seed=seed)
    short = f" (only {plan.available} not audited before)" if plan.tasks < n else ""
    console.print(
        f"audit of '{escape(source)}': {plan.tasks} pairs{short} opened to calibrated raters, "
        f"{plan.slots} slots ({plan.already} pairs audited before)"
    )
    console.print(f"when they are labeled: tether label audit {escape(source)}")


@app.command("audit")
def audit_source(
    source: Annotated[str, typer.Argument(help="The imported source (its --source name).")],
    project: ProjectOption = None,
) -> None:
    """An imported source's agreement with calibrated raters on its audited pairs, and the verdict:
    accepted (it trains reward models), refused (excluded, labels kept) or pending (label more)."""
    from tether.labeling.audit import apply_audit

    report = apply_audit(open_project(project), source=source)
    console.print(
        f"source '{escape(source)}': {report.audited} pairs audited, "
        f"{report.labeled} labeled by active raters"
    )
    for a in [
        *report.by_dimension,
        *([report.overall] if report.overall and len(report.by_dimension) > 1 else []),
    ]:
        console.print(
            f"  {a.dimension}: agreement {a.share:.3f} [{a.low:.3f}, {a.high:.3f}] "
            f"on {a.pairs} clear-cut pairs"
        )
    console.print(f"{report.verdict}: {escape(report.reason)}; status {report.status}")


@app.command("simulate")
def simulate(
    project: ProjectOption = None,
    pool: Annotated[Path | None, typer.Option(help="Rater pool YAML (default: the sandbox's pool).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated judgments.")] = 0,
) -> None:
    """Let the sandbox rater pool answer all open work, calibration and rubric grading included."""
    from tether.errors import TetherInputError
    from tether.sandbox.raters import default_pool, load_pool
    from tether.sandbox.simulate import simulate as run_simulation
    from tether.sandbox.simulate_grading import simulate_grading
    from tether.store.tasks import slot_counts

    proj = open_project(project)
    try:
        profiles = load_pool(pool) if pool else default_pool()
    except ValueError as exc:
        raise TetherInputError(str(exc)) from None
    ctx = project_context(proj)
    with proj.store.session() as session:
        open_slots = slot_counts(session, project_id=proj.project_id)["open"]
    expected = open_slots + len(profiles) * len(ctx.calibration_keys)
    with _progress("judgments") as progress:
        task = progress.add_task("judgments", total=expected)
        summary = run_simulation(proj, ctx, profiles, seed=seed, on_judgment=lambda _: progress.advance(task))
        progress.update(task, total=summary.judgments, completed=summary.judgments)
    console.print(f"{summary.judgments} judgments from {len(summary.by_rater)} simulated raters")
    for name, status in summary.statuses.items():
        console.print(f"  {escape(name)}: {summary.by_rater.get(name, 0)} judgments, {status}")
    grades = simulate_grading(proj, seed=seed)
    if grades:
        console.print(f"{grades} rubric grades of open grading tasks from the active simulated raters")


@app.command("ai")
def ai(
    endpoint: Annotated[str, typer.Option(help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")],
    model: Annotated[str, typer.Option(help="Model name served at the endpoint.")],
    project: ProjectOption = None,
    name: Annotated[str | None, typer.Option(help="Rater name (default: ai-MODEL).")] = None,
    api_key: Annotated[str | None, typer.Option(envvar="TETHER_JUDGE_API_KEY", help="Bearer token.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many judgments.")] = None,
) -> None:
    """Run an AI rater (RLAIF): calibrated like people, each pair judged in both orders."""
    from tether.labeling.ai_judge import JudgeConfig
    from tether.labeling.ai_rater import run_ai_rater

    proj = open_project(project)
    config = JudgeConfig(endpoint=endpoint.rstrip("/"), model=model, api_key=api_key)
    ctx = project_context(proj)
    rater_name = name or f"ai-{model}"
    with _progress(f"judgments by {rater_name}") as progress:
        task = progress.add_task("ai", total=limit)
        summary = run_ai_rater(
            proj, ctx, config, name=rater_name, limit=limit, on_judgment=lambda: progress.advance(task)
        )
    console.print(
        f"{rater_name}: {summary.judgments} judgments, "
        f"{summary.position_inconsistent} position-inconsistent, status {summary.status}"
    )


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="JSONL of judgments: rater, assignment, choice, strength, rationale.")
    ],
    project: ProjectOption = None,
) -> None:
    """Import judgments collected elsewhere; every line is checked before anything is written."""
    from tether.labeling.importer import import_judgments

    proj = open_project(project)
    result = import_judgments(proj, project_context(proj), file)
    console.print(
        f"imported {result.written} judgments ({result.replayed} already present) from {escape(str(file))}"
    )


@app.command("serve")
def serve(
    project: ProjectOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark session cookies Secure (behind HTTPS).")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes (more than one uses several cores).")
    ] = 1,
) -> None:
    """Serve the rater web app and the JSON API (/api/v1) against the project's store."""
    import os

    import uvicorn

    from tether.labeling.context import project_labeling_context
    from tether.web.app import PROJECT_ENV, SECURE_ENV, create_app, session_secret

    proj = open_project(project)
    console.print(
        f"serving {escape(proj.config.name)} on http://{host}:{port} with {workers} worker(s) "
        f"(store {escape(proj.db_url)})"
    )
    if workers == 1:
        web = create_app(proj, project_labeling_context(proj), secure_cookies=secure_cookies)
        uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)
        return
    session_secret(proj)  # created once here, so that every worker signs cookies with the same key
    os.environ[PROJECT_ENV] = str(proj.root)
    os.environ[SECURE_ENV] = "1" if secure_cookies else "0"
    uvicorn.run(
        "tether.web.app:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )
