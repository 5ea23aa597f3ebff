"""Shared CLI pieces: consoles, the --project option, error mapping and how a resolved input is shown.

Under a launcher (`accelerate launch --num_processes N -m tether ...`) every rank runs the same
command, so rank 0 alone prints: the consoles are quiet on the other ranks, and so are the errors
every rank raises alike (see `TetherGroup`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from typer.core import TyperGroup

from tether.distributed import env_rank
from tether.errors import TetherError, TetherInputError
from tether.project import Project

try:  # recent typer vendors click and raises its own copy's usage errors
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on the real click
    from click import ClickException  # type: ignore[assignment]

if TYPE_CHECKING:
    from tether.artifacts import ResolvedArtifact
    from tether.feedback.loop import LoopHooks

__all__ = ["console", "err_console", "open_project", "using"]

# Read from the launcher's environment, not a process group: importing the CLI must start nothing.
RANK = env_rank()
# Wide when piped (logs, CI): rich would otherwise squeeze tables into 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160, quiet=RANK != 0)
err_console = Console(
    stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160, quiet=RANK != 0
)

RANK_ERROR_GRACE_S = 3.0
"""How long a rank other than 0 holds back its error: long enough for rank 0 to report the same error
and exit, upon which the launcher stops the other ranks, so an error every rank raised prints once."""

ProjectOption = Annotated[
    Path | None,
    typer.Option("--project", "-p", help="Project directory (default: found from the current directory)."),
]


class TetherGroup(TyperGroup):
    """Root command group: turns Tether's errors into messages and exit codes (2 input, 3 gate).

    On ranks other than 0: a usage error exits silently with its code (every rank parsed the same
    command line, and rank 0 shows it); a Tether error waits `RANK_ERROR_GRACE_S`, then prints with a
    `[rank N]` prefix. An error that every rank raised is thus printed once, by rank 0, because the
    launcher stops the waiting ranks when rank 0 exits with it; an error raised on that rank alone is
    still shown rather than lost. Unexpected exceptions keep Python's traceback on every rank."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except TetherError as exc:
            report_error(exc, rank=RANK)
            sys.exit(exc.exit_code)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_errors_on_rank_zero():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_on_rank_zero():
            return super().invoke(ctx)


@contextmanager
def _usage_errors_on_rank_zero() -> Iterator[None]:
    try:
        yield
    except ClickException as exc:
        if RANK == 0:
            raise
        sys.exit(exc.exit_code)


def report_error(exc: TetherError, *, rank: int) -> None:
    """Print a Tether error on stderr: at once on rank 0, after the grace period and prefixed elsewhere."""
    if rank == 0:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return
    time.sleep(RANK_ERROR_GRACE_S)
    # err_console is quiet on this rank; an error that survived the grace period must still be seen.
    loud = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 160)
    loud.print(f"[bold red]\\[rank {rank}] error:[/] {escape(str(exc))}")


def open_project(path: Path | None) -> Project:
    return Project.open(path)


def using(resolved: ResolvedArtifact) -> ResolvedArtifact:
    """Print which artifact a command consumes (`tether.artifacts.resolve` chose it), so a run's
    inputs are never a guess; returns it."""
    console.print(f"[dim]using[/] {escape(resolved.describe())}")
    return resolved


# --- progress bars ----------------------------------------------------------------------------------------
# Shared by the stage commands and by `tether loop` / `tether demo`, which pass them to the loop's
# steps as `LoopHooks`: command modules never import each other.

ProgressCallback = Callable[[int, int, dict[str, float]], None]


def sft_progress() -> Progress:
    return Progress(
        TextColumn("[bold]SFT[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@contextmanager
def train_progress(log_every: int = 10) -> Iterator[ProgressCallback]:
    """A rich progress bar with loss and accuracy; yields the `on_step` callback training reports to."""
    progress = Progress(
        TextColumn("[bold]reward model[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("train", total=None, stats="")

        def on_step(step: int, total: int, row: dict[str, float]) -> None:
            progress.update(task, completed=step + 1, total=total)
            if step % log_every == 0 or step + 1 == total:
                stats = f"loss {row['train/loss']:.4f}  acc {row['train/accuracy']:.3f}"
                progress.update(task, stats=stats)

        yield on_step


@contextmanager
def rl_progress() -> Iterator[tuple[ProgressCallback, Callable[[str], None]]]:
    """A live line of reward, KL against its running value and β, and length; yields (on_step, on_message)."""
    progress = Progress(
        TextColumn("[bold]rl[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task("rl", total=None, stats="")

        def on_step(step: int, total: int, m: dict[str, float]) -> None:
            stats = (
                f"reward {m['objective/rm_score']:+.3f}  KL {m['objective/kl']:.2f} nats "
                f"(running {m['objective/kl_running']:.2f}, β {m['objective/kl_coef']:.3f})  "
                f"length {m['gen/length_mean']:.1f}"
                + (f"  eval {m['eval/score']:.3f}" if "eval/score" in m else "")
            )
            progress.update(task, completed=step + 1, total=total, stats=stats)

        yield on_step, lambda text: progress.console.print(escape(text))


def loop_hooks() -> LoopHooks:
    """The loop's steps shown with this console's spinners and bars."""
    from tether.feedback.loop import LoopHooks

    return LoopHooks(status=console.status, rm_progress=train_progress, rl_progress=rl_progress)


def say(text: str) -> None:
    console.print(escape(text))


def check_pool(pool: Path | None) -> None:
    """A `--pool` rater file that does not load is an exit-2 error naming the file, before any work."""
    if pool is None:
        return
    from tether.sandbox.raters import load_pool

    try:
        load_pool(pool)
    except ValueError as exc:
        raise TetherInputError(str(exc)) from None
