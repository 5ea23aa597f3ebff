"""Engines and sessions, made from a URL on demand; nothing is connected at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tether.errors import TetherInputError

DbSession = Session
"""The session type repository functions take; other packages annotate with this alias."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the web app read while a CLI command writes; foreign keys are off by default.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine for a SQLite or PostgreSQL URL, with Tether's connection settings."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TetherInputError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # Custom plans always: psycopg prepares a statement after five runs, and PostgreSQL's generic
        # plan for the slot claim (parameters unknown) sorts every open slot instead of walking the
        # open-slot index; on the load benchmark that halved the judgments per second.
        options = {"options": "-c plan_cache_mode=force_custom_plan"}
        return create_engine(url, pool_pre_ping=True, connect_args=options)
    raise TetherInputError(f"database URL {url!r}: only sqlite and postgresql are supported")


@dataclass
class Store:
    """An opened, migrated database. Use `with store.session() as s:` for one transaction."""

    url: str
    engine: Engine

    def __post_init__(self) -> None:
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the database at `url` and bring its schema to the newest migration."""
    from tether.store.migrate import upgrade

    engine = make_engine(url)
    try:
        if migrate:
            upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        raise TetherInputError(
            f"cannot open database {make_url(url).render_as_string()}: {exc.orig}"
        ) from None
    return Store(url=url, engine=engine)
