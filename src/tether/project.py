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

from pydantic import BaseModel, ConfigDict, ValidationError

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


class _ProjectTable(BaseModel):
    """`[project]` in tether.toml."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str
    spec: str = "spec.yaml"
    template: str = "blank"


class _StoreTable(BaseModel):
    """`[store]` in tether.toml."""

    model_config = ConfigDict(extra="forbid", strict=True)
    url: str | None = None


class _TomlFile(BaseModel):
    model_config = ConfigDict(extra="allow")  # other tables belong to other tools
    project: _ProjectTable
    store: _StoreTable = _StoreTable()


def read_config(path: Path) -> ProjectConfig:
    """tether.toml as a ProjectConfig; an input error naming the file, the table and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TetherInputError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = _TomlFile.model_validate(data)
    except ValidationError as err:
        raise TetherInputError(f"{path}: {_toml_problems(err)}") from None
    return ProjectConfig(
        name=parsed.project.name,
        spec=parsed.project.spec,
        db_url=parsed.store.url,
        template=parsed.project.template,
    )


def _toml_problems(err: ValidationError) -> str:
    out = []
    for e in err.errors(include_url=False):
        table, *key = [str(p) for p in e["loc"]]
        if e["type"] == "missing" and not key:
            out.append(f"needs a [{table}] table with a string 'name'")
        elif e["type"] == "missing":
            out.append(f"[{table}] needs a string '{key[0]}'")
        elif e["type"] == "extra_forbidden":
            out.append(f"[{table}] has unknown key '{'.'.join(key)}'")
        elif not key:
            out.append(f"[{table}] must be a table")
        else:
            out.append(f"[{table}] {'.'.join(key)} must be a string")
    return "; ".join(out)


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
