"""`tether init`: create a project directory from a template, all or nothing."""

from __future__ import annotations

import shutil
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import Literal

from tether.errors import TetherInputError
from tether.policies import check_policy_dir, register_policy
from tether.project import CONFIG_FILE, STATE_DIR, Project

Template = Literal["blank", "sandbox", "assistant"]
TEMPLATES: tuple[Template, ...] = ("blank", "sandbox", "assistant")

SUITES_README = """# Behavioral test suites

One YAML or JSONL file per behavior dimension, independent of the reward model.
They run at every checkpoint and are compared with the SFT baseline.
"""

GITIGNORE = f"{STATE_DIR}/\n"


def _toml(name: str, template: str) -> str:
    return (
        "# Tether project. Set [store] url (or TETHER_DB_URL) to use PostgreSQL instead of the\n"
        "# embedded SQLite store in .tether/tether.db.\n"
        f'[project]\nname = "{name}"\nspec = "spec.yaml"\ntemplate = "{template}"\n\n'
        '[store]\n# url = "postgresql+psycopg://user@host:5432/tether"\n'
    )


def _write_template(stage: Path, name: str, template: Template) -> None:
    source = files("tether") / "templates" / template
    (stage / CONFIG_FILE).write_text(_toml(name, template), encoding="utf-8")
    (stage / "spec.yaml").write_text((source / "spec.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    # A world with known truth (the sandbox) derives its anchors from its gold grader instead.
    from tether.world import load_world, world_names

    if template not in world_names() or not load_world(template).write_anchors(stage / "anchors.jsonl"):
        text = (source / "anchors.jsonl").read_text(encoding="utf-8")
        (stage / "anchors.jsonl").write_text(text, encoding="utf-8")
    (stage / "suites").mkdir()
    (stage / "suites" / "README.md").write_text(SUITES_README, encoding="utf-8")
    suites = source / "suites"
    if suites.is_dir():  # the assistant template ships starter suites (a copy of examples/assistant/suites)
        for suite in suites.iterdir():
            if suite.name.endswith((".yaml", ".jsonl")):
                (stage / "suites" / suite.name).write_text(
                    suite.read_text(encoding="utf-8"), encoding="utf-8"
                )
    (stage / ".gitignore").write_text(GITIGNORE, encoding="utf-8")


def _refusal(target: Path) -> str | None:
    if (target / CONFIG_FILE).exists():
        return f"{target} is already a Tether project ({CONFIG_FILE} exists); nothing was changed"
    clashes = [
        p for p in (CONFIG_FILE, "spec.yaml", "anchors.jsonl", "suites", STATE_DIR) if (target / p).exists()
    ]
    if clashes:
        return f"{target} already has {', '.join(clashes)}; refusing to overwrite, nothing was changed"
    return None


def init_project(
    target: Path, *, template: Template = "blank", name: str | None = None, policy: Path | None = None
) -> Project:
    """Create a project in `target` (new or existing directory) and its store; with `policy`, register
    that model directory as the project's SFT policy (`tether.policies.register_policy`).

    Files are staged in a temporary directory and moved in only when all of them were
    written (and the policy registered), so a failure leaves `target` as it was.
    """
    if template not in TEMPLATES:
        raise TetherInputError(f"unknown template '{template}'; choose one of {', '.join(TEMPLATES)}")
    if policy is not None:
        check_policy_dir(policy)  # a bad model directory fails before anything is written
    if target.exists() and not target.is_dir():
        raise TetherInputError(f"{target} exists and is not a directory")
    refusal = _refusal(target) if target.exists() else None
    if refusal:
        raise TetherInputError(refusal)
    project_name = name or target.resolve().name
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tether-init-") as tmp:
        stage = Path(tmp)
        _write_template(stage, project_name, template)
        created_dir = not target.exists()
        target.mkdir(exist_ok=True)
        moved = []
        try:
            for item in sorted(stage.iterdir()):
                shutil.move(str(item), target / item.name)
                moved.append(target / item.name)
            project = Project.open(target)
            _ = project.project_id  # creates the store and records the spec version
            if policy is not None:
                register_policy(project, policy)
        except BaseException:
            _rollback(target, moved, created_dir)
            raise
    return project


def _rollback(target: Path, moved: list[Path], created_dir: bool) -> None:
    for path in [*moved, target / STATE_DIR]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    if created_dir:
        shutil.rmtree(target, ignore_errors=True)
