"""A Tether project directory: `tether.toml`, the spec, anchors, suites and the store.

Layout of a project::

    tether.toml        project name, spec path, optional database URL
    spec.yaml          the behavior spec
    anchors.jsonl      expert-labelled anchors for rater calibration
    suites/            behavioral test suites
    .tether/           the embedded SQLite store and every artifact Tether writes
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tether.errors import TetherInputError
from tether.spec import Spec, load_spec, spec_hash
from tether.store import Store, ensure_project, open_store, record_spec_version, sqlite_url

CONFIG_FILE = "tether.toml"
STATE_DIR = ".tether"
DB_ENV = "TETHER_DB_URL"


@dataclass(frozen=True)
class ProjectConfig:
    """Contents of `tether.toml`."""

    name: str
    """Project name; one store can hold several projects."""
    spec: str = "spec.yaml"
    """Spec path, relative to the project directory."""
    db_url: str | None = None
    """Database URL; None means the embedded SQLite store. TETHER_DB_URL overrides it."""
    template: str = "blank"
    """Template the project was created from (blank, sandbox or assistant)."""


def read_config(path: Path) -> ProjectConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TetherInputError(f"{path}: not valid TOML: {exc}") from None
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("name"), str):
        raise TetherInputError(f"{path}: needs a [project] table with a string 'name'")
    unknown = set(project) - {"name", "spec", "template"}
    if unknown:
        raise TetherInputError(f"{path}: [project] has unknown keys: {', '.join(sorted(unknown))}")
    store = data.get("store", {})
    if not isinstance(store, dict) or (store.get("url") is not None and not isinstance(store["url"], str)):
        raise TetherInputError(f"{path}: [store] url must be a string")
    return ProjectConfig(
        name=project["name"],
        spec=str(project.get("spec", "spec.yaml")),
        db_url=store.get("url"),
        template=str(project.get("template", "blank")),
    )


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` that holds a tether.toml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise TetherInputError(
        f"no {CONFIG_FILE} found in {here} or its parents; run 'tether init DIR' or pass --project DIR"
    )


@dataclass
class Project:
    """An opened project. The store opens lazily, on first use."""

    root: Path
    config: ProjectConfig

    @classmethod
    def open(cls, path: Path | None = None) -> Project:
        root = find_project_dir(path)
        return cls(root=root, config=read_config(root / CONFIG_FILE))

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def spec_path(self) -> Path:
        return self.root / self.config.spec

    @cached_property
    def spec(self) -> Spec:
        return load_spec(self.spec_path)

    @cached_property
    def spec_hash(self) -> str:
        return spec_hash(self.spec)

    @property
    def db_url(self) -> str:
        return os.environ.get(DB_ENV) or self.config.db_url or sqlite_url(self.state_dir / "tether.db")

    @cached_property
    def store(self) -> Store:
        return open_store(self.db_url)

    @cached_property
    def project_id(self) -> int:
        """The project's id in the store, recording the current spec version on first use."""
        with self.store.session() as session:
            project = ensure_project(session, name=self.config.name)
            record_spec_version(
                session,
                project_id=project.id,
                spec_hash=self.spec_hash,
                name=self.spec.name,
                version=self.spec.version,
                content=self.spec.model_dump(mode="json"),
            )
        return project.id

    def path(self, *parts: str) -> Path:
        """A path inside the project's state directory, created on demand."""
        target = self.state_dir.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def relative(self, path: Path) -> str:
        """How artifact paths are stored: relative to the project root when inside it."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path.resolve())

    def resolve(self, stored: str) -> Path:
        candidate = Path(stored)
        return candidate if candidate.is_absolute() else self.root / candidate
