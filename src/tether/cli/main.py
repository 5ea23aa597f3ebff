"""The `tether` command line.

    tether init myproj --template sandbox && cd myproj && tether spec check

Exit codes: 0 ok, 2 bad input or usage, 3 a quality gate or a critical alert failed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from tether import __version__
from tether.cli import (
    data_cmd,
    demo_cmd,
    eval_cmd,
    feedback_cmd,
    init_cmd,
    label_cmd,
    loop_cmd,
    policy_cmd,
    raters_cmd,
    redteam_cmd,
    report_cmd,
    rl_cmd,
    rm_eval_cmd,
    rm_train_cmd,
    sandbox_cmd,
    spec_cmd,
)
from tether.cli.common import TetherGroup, console
from tether.errors import TetherInputError

app = typer.Typer(
    cls=TetherGroup,
    help="Tether: RLHF as a maintained system. Spec → labeling → reward model → RL → evals → feedback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Stages whose commands land with later work. Each is listed so the command surface is
# stable, and says plainly which stage brings it instead of failing obscurely.
UPCOMING: dict[str, str] = {
    "policy": "Register the SFT policy every stage defaults to.",
    "sandbox": "Build and check the offline sandbox world (simulated raters, gold grader, tiny policy).",
    "label": "Plan, assign and collect pairwise labeling batches.",
    "raters": "Add, calibrate, exclude and report on raters.",
    "data": "Export preference datasets.",
    "rm": "Train, evaluate, probe and gate reward models.",
    "rl": "Run PPO/RLOO with KL control and reward-hacking monitors.",
    "eval": "Run behavioral test suites and compare checkpoints.",
    "redteam": "Search for outputs the reward model loves but graders reject.",
    "feedback": "Ingest production feedback and check drift.",
    "loop": "Run short RLHF iterations with diagnosis in between.",
    "report": "Write the self-contained HTML report.",
    "demo": "Run the whole pipeline on the sandbox world.",
}


def _version(value: bool) -> None:
    if value:
        console.print(f"tether {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Tether command line."""


app.command("init")(init_cmd.init)
app.command("demo")(demo_cmd.demo)
app.add_typer(spec_cmd.app, name="spec")
app.add_typer(policy_cmd.app, name="policy")
app.add_typer(sandbox_cmd.app, name="sandbox")
app.add_typer(label_cmd.app, name="label")
app.add_typer(raters_cmd.app, name="raters")
app.add_typer(data_cmd.app, name="data")
rm_app = typer.Typer(help="Train, evaluate, probe and gate reward models.", no_args_is_help=True)
rm_app.command("train")(rm_train_cmd.train)
rm_app.command("eval")(rm_eval_cmd.evaluate)
rm_app.command("probe")(rm_eval_cmd.probe)
app.add_typer(rm_app, name="rm")
app.add_typer(rl_cmd.app, name="rl")
app.add_typer(eval_cmd.app, name="eval")
app.add_typer(redteam_cmd.app, name="redteam")
app.add_typer(feedback_cmd.app, name="feedback")
app.command("loop")(loop_cmd.loop)
app.command("report")(report_cmd.report)
app.command("lineage")(loop_cmd.lineage)


def _upcoming_group(name: str, help_text: str) -> typer.Typer:
    group = typer.Typer(help=f"{help_text} (not in this release yet)", invoke_without_command=True)

    @group.callback()
    def _explain() -> None:
        raise TetherInputError(
            f"'tether {name}' is not in this release of Tether yet; see docs/architecture.md"
        )

    return group


def register_upcoming(registered: set[str]) -> None:
    for name, help_text in UPCOMING.items():
        if name not in registered:
            app.add_typer(_upcoming_group(name, help_text), name=name)


register_upcoming(
    {
        "policy",
        "sandbox",
        "demo",
        "label",
        "raters",
        "data",
        "rm",
        "rl",
        "eval",
        "redteam",
        "feedback",
        "loop",
        "report",
    }
)


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m tether.cli.main`, as older docs and launch lines have it
    main()
