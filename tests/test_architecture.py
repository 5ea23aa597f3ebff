"""Structural rules from the engineering standards, checked on the source tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"
MODULES = sorted(SRC.rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_store_imports_sqlalchemy_or_alembic(path: Path) -> None:
    if SRC / "store" in path.parents:
        return
    assert not imported_roots(path) & {"sqlalchemy", "alembic"}, f"{path} must go through tether.store"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 450, f"{path} has {lines} lines; split it along a seam"


def test_importing_the_package_creates_no_engine() -> None:
    # In a fresh interpreter: other tests' engines would otherwise still be alive.
    code = (
        "import gc, tether.store, tether.cli.main\n"
        "from sqlalchemy.engine import Engine\n"
        "print(sum(isinstance(o, Engine) for o in gc.get_objects()))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"
