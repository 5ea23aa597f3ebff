"""`tether report`: write the self-contained HTML report of the project's loop iterations."""

from __future__ import annotations

from tether.errors import TetherInputError


def report() -> None:
    """Write the self-contained, offline HTML report of every loop iteration."""
    raise TetherInputError("'tether report' is being written in this release; see docs/architecture.md")
