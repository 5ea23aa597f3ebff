"""Manual rater decisions and sign-in tokens.

Tokens are random and long (256 bits), so a single SHA-256 is enough to store them safely:
there is nothing to brute-force that a slow password hash would protect. Only the hash is
stored; the token is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from tether.errors import TetherInputError
from tether.project import Project
from tether.store.raters import RaterRecord, add_rater, close_recalibrations, get_rater, set_rater_status

TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token), stored_hash)


ROLES = ("redteam",)
"""Extra roles a rater may hold on top of labeling, kept in `profile["roles"]`."""


def rater_roles(rater: RaterRecord) -> tuple[str, ...]:
    """The extra roles a rater holds (e.g. "redteam": may submit red-team findings)."""
    roles = rater.profile.get("roles", [])
    return tuple(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else ()


def add_person(
    project: Project, *, name: str, kind: str = "human", admin: bool = False, roles: Sequence[str] = ()
) -> tuple[RaterRecord, str]:
    """Add a rater (or an admin) and return the sign-in token, which is never stored in clear."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise TetherInputError(f"unknown role(s) {', '.join(unknown)}; roles are: {', '.join(ROLES)}")
    if admin and roles:
        raise TetherInputError("an admin account holds no rater roles; add a separate rater account")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with project.store.session() as session:
        rater = add_rater(
            session,
            project_id=project.project_id,
            name=name,
            kind=kind,
            spec_hash=project.spec_hash,
            is_admin=admin,
            token_hash=hash_token(token),
            profile={"roles": sorted(set(roles))} if roles else None,
        )
    return rater, token


def _change(project: Project, name: str, status: str, reason: str, *, new_round: bool = False) -> RaterRecord:
    """Record a manual status decision. A manual readmission ends any failed hidden-anchor
    window's hold at the rater's latest label, but releases nothing: only passing a calibration
    round lets held labels back into training data."""
    if not reason.strip():
        raise TetherInputError("a reason is required: every status change records why")
    with project.store.session() as session:
        rater = get_rater(session, project_id=project.project_id, name=name)
        if rater.is_admin:
            raise TetherInputError(f"'{name}' is an admin account, not a rater")
        if status == "active":
            close_recalibrations(session, rater_id=rater.id, release=False)
        return set_rater_status(
            session,
            rater_id=rater.id,
            status=status,
            reason=reason,
            spec_hash=project.spec_hash,
            calibration_round=rater.calibration_round + 1 if new_round else None,
        )


def recalibrate(project: Project, *, name: str, reason: str = "recalibration requested") -> RaterRecord:
    """Start calibration over, on a fresh anchor ordering; out of training data until it passes."""
    return _change(project, name, "calibrating", reason, new_round=True)


def exclude(project: Project, *, name: str, reason: str) -> RaterRecord:
    """Exclude from training data; the rater's labels stay for analysis."""
    return _change(project, name, "excluded", reason)


def readmit(project: Project, *, name: str, reason: str) -> RaterRecord:
    return _change(project, name, "active", reason)
