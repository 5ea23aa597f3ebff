"""`tether report`: write the self-contained HTML report of the project's loop iterations.

tether report                       # report.html in the current directory
tether report --out site/loop.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import ProjectOption, console, open_project
from tether.errors import TetherInputError

OutOption = Annotated[Path, typer.Option("--out", "-o", help="Where to write the HTML report.")]


def report(project: ProjectOption = None, out: OutOption = Path("report.html")) -> None:
    """Write the self-contained, offline HTML report of every loop iteration."""
    from tether.report import collect, write_report

    if out.is_dir():
        raise TetherInputError(f"--out {out} is a directory; give a file name such as {out / 'report.html'}")
    opened = open_project(project)
    data = collect(opened)
    if not data.iterations:
        raise TetherInputError(
            f"project '{opened.config.name}' has no loop iterations yet; run `tether loop` first"
        )
    path = write_report(data, out).resolve()
    count = len(data.iterations)
    console.print(f"wrote the report of {count} iteration{'s' if count != 1 else ''} to {escape(str(path))}")
