"""`tether loop` and `tether lineage`: short RLHF iterations, and how any artifact came to be."""

from __future__ import annotations

from tether.errors import TetherInputError


def loop() -> None:
    """Run short RLHF iterations with a diagnosis between them."""
    raise TetherInputError("'tether loop' is being written in this release; see docs/architecture.md")


def lineage() -> None:
    """Show how an artifact came to be."""
    raise TetherInputError("'tether lineage' is being written in this release; see docs/architecture.md")
