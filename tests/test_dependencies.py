"""What `src/tether` imports is what pyproject.toml declares, so a dependency cannot arrive by luck
(through another package's requirements) and vanish when that package changes."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Optional imports whose distributions this environment may lack (the `trackers` extra).
NOT_INSTALLED = {"mlflow": "mlflow", "wandb": "wandb"}


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalized as PEP 503 does."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "src" / "tether").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"tether"}


def test_every_imported_distribution_is_declared_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = [_name(r) for r in project["dependencies"]]
    extras = {name: [_name(r) for r in reqs] for name, reqs in project["optional-dependencies"].items()}
    declared = set(required) | {n for reqs in extras.values() for n in reqs}
    installed = packages_distributions()
    undeclared = {}
    for module in sorted(imported_modules()):
        dists = installed.get(module) or [NOT_INSTALLED.get(module, module)]
        if not {_name(d) for d in dists} & declared:
            undeclared[module] = dists
    assert not undeclared, f"imported by src/tether but not declared in pyproject.toml: {undeclared}"
    assert len(required) == len(set(required)), "a runtime dependency is listed twice"
    for name, reqs in extras.items():
        assert not set(reqs) & set(required), f"extra '{name}' repeats runtime dependencies"
