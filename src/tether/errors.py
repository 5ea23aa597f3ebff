"""Errors a user can act on. The CLI maps them to exit codes; nothing prints a traceback."""

from __future__ import annotations


class TetherError(Exception):
    """Base class of Tether's own errors."""

    exit_code = 1


class TetherInputError(TetherError):
    """Bad input or usage: names what is wrong and where. CLI exit code 2."""

    exit_code = 2


class QualityGateFailed(TetherError):
    """A quality gate or a critical alert failed. CLI exit code 3."""

    exit_code = 3
