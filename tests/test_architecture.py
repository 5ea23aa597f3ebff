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


def imported_modules(path: Path) -> set[str]:
    """Every absolute module an import statement names (`from a.b import c` names a.b and a.b.c)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


CLI_MODULES = sorted(p for p in (SRC / "cli").glob("*.py") if p.name not in ("__init__.py", "main.py"))


@pytest.mark.parametrize("path", CLI_MODULES, ids=lambda p: p.name)
def test_cli_commands_import_no_other_command_module(path: Path) -> None:
    # A command calling another command's function is how loop and gate logic ended up in cli/:
    # shared work belongs in the stages' libraries, shared console pieces in cli/common.
    # main.py alone assembles the commands into the app.
    command_modules = {f"tether.cli.{p.stem}" for p in CLI_MODULES} - {"tether.cli.common"}
    found = sorted(imported_modules(path) & command_modules)
    assert not found, f"{path.name} imports the command module(s) {', '.join(found)}"


ENTRY_POINTS = {SRC / "__main__.py"}
"""`python -m tether`: an entry point to the CLI, like the console script, not a product stage."""


def test_no_product_stage_imports_the_cli() -> None:
    offenders = [
        str(p.relative_to(SRC))
        for p in MODULES
        if SRC / "cli" not in p.parents
        and p not in ENTRY_POINTS
        and any(m.startswith("tether.cli") for m in imported_modules(p))
    ]
    assert not offenders, f"library modules import the CLI: {offenders}"


OUTSIDE_THE_SANDBOX = [p for p in MODULES if not {SRC / "sandbox", SRC / "cli"} & set(p.parents)]


@pytest.mark.parametrize("path", OUTSIDE_THE_SANDBOX, ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_sandbox_and_the_cli_import_the_sandbox(path: Path) -> None:
    # The sandbox plugs in as a world (`tether.world`, found by name); the stages call that interface.
    # ast.walk sees imports inside functions and under TYPE_CHECKING too.
    found = sorted(
        m for m in imported_modules(path) if m == "tether.sandbox" or m.startswith("tether.sandbox.")
    )
    assert not found, f"{path.relative_to(SRC)} imports {', '.join(found)}; go through tether.world instead"
