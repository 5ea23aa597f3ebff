"""Repository functions for project API keys: machine clients such as production feedback senders.

A key is 256 random bits behind a recognisable prefix. Like rater tokens, it is long and random, so a
single SHA-256 is enough to store it safely (there is nothing to brute-force that a slow password hash
would protect). Only the hash is stored; `create_api_key` hands back the plain key once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tether.errors import TetherInputError
from tether.store.models import ApiKeyRow, as_utc, utcnow

KEY_SCOPES = ("feedback",)
"""What a key may do: "feedback" posts flagged production outputs to /api/v1/feedback."""
KEY_PREFIX = "tfk_"
"""Marks a Tether API key, so that a leaked one is recognisable (and secret scanners can match it)."""
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class ApiKeyRecord:
    id: int
    project_id: int
    name: str
    scope: str
    revoked: bool
    created_at: datetime
    key_hash: str = field(default="", repr=False)


def _record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        scope=row.scope,
        revoked=bool(row.revoked),
        created_at=as_utc(row.created_at),
        key_hash=row.key_hash,
    )


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(
    session: Session, *, project_id: int, name: str, scope: str = "feedback"
) -> tuple[ApiKeyRecord, str]:
    """A new key; returns its record and the plain key, which is not stored and cannot be shown again.

    Names are unique among a project's live keys; a revoked key's name may be reused."""
    if scope not in KEY_SCOPES:
        raise TetherInputError(f"API key scope '{scope}' is not one of {', '.join(KEY_SCOPES)}")
    if not name.strip() or len(name) > 100:
        raise TetherInputError("an API key name must be 1-100 characters")
    live = select(ApiKeyRow.id).where(
        ApiKeyRow.project_id == project_id, ApiKeyRow.name == name, ApiKeyRow.revoked.is_(False)
    )
    if session.scalars(live).first() is not None:
        raise TetherInputError(f"a live API key named '{name}' exists; revoke it first or pick another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow(
        project_id=project_id,
        name=name,
        key_hash=hash_api_key(key),
        scope=scope,
        revoked=False,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return _record(row), key


def verify_api_key(session: Session, *, project_id: int, key: str, scope: str) -> ApiKeyRecord | None:
    """The live key of this project and scope that `key` is; None for anything else.

    Lookup is by hash; the final comparison is constant-time."""
    if not key or len(key) > MAX_KEY_CHARS:
        return None
    digest = hash_api_key(key)
    row = session.scalars(select(ApiKeyRow).where(ApiKeyRow.key_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    if row.project_id != project_id or row.revoked or row.scope != scope:
        return None
    return _record(row)


def revoke_api_key(session: Session, *, project_id: int, name: str) -> ApiKeyRecord:
    """Revoke the live key called `name`; it stops working at once."""
    row = session.scalars(
        select(ApiKeyRow).where(
            ApiKeyRow.project_id == project_id, ApiKeyRow.name == name, ApiKeyRow.revoked.is_(False)
        )
    ).first()
    if row is None:
        raise TetherInputError(f"no live API key named '{name}'; `tether feedback keys list` shows them")
    row.revoked = True
    session.flush()
    return _record(row)


def list_api_keys(session: Session, *, project_id: int) -> list[ApiKeyRecord]:
    """A project's keys, live and revoked, oldest first (hashes only: plain keys are never stored)."""
    rows = session.scalars(select(ApiKeyRow).where(ApiKeyRow.project_id == project_id).order_by(ApiKeyRow.id))
    return [_record(r) for r in rows]
