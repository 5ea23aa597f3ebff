"""When and how long an HTTP client of a model server waits before trying again: pure functions.

- `retryable`: a status a retry may heal: 408 (request timeout), 409 (conflict: a server busy with
  another request for the same resource, as some inference servers answer under load), 425 (too
  early), 429 (rate limited) and every 5xx. Other 4xx (a bad key, a wrong path or model) will not.
- `retry_after`: a `Retry-After` header in either form RFC 9110 §10.2.3 allows: delay-seconds, or an
  HTTP-date (how long until then).
- `backoff`: exponential backoff with "equal jitter" (Brooker, "Exponential Backoff And Jitter",
  AWS Architecture Blog, 2015): the k-th wait is base·2^k less a random share of up to `jitter` of
  it, so that many raters retrying after the same failure do not hit the server again in lockstep.
- `next_wait`: the larger of the backoff and what the server asked for, capped.

The random share comes from a caller's seeded `random.Random`, so a run's waits are repeatable.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def retryable(status: int) -> bool:
    """True for a status that a later attempt may not get.

    >>> [s for s in (400, 401, 404, 408, 409, 422, 429, 500, 503) if retryable(s)]
    [408, 409, 429, 500, 503]
    """
    return status in RETRYABLE_4XX or status >= 500


def retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait (never negative); None when absent or unreadable.

    >>> retry_after("7", now=datetime(2026, 1, 1, tzinfo=UTC))
    7.0
    >>> retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=datetime(2026, 1, 1, tzinfo=UTC))
    30.0
    >>> retry_after("soon", now=datetime(2026, 1, 1, tzinfo=UTC)) is None
    True
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP-date is GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def backoff(retry: int, *, base: float, jitter: float, rng: random.Random) -> float:
    """The wait before retry `retry` (0-based): base·2^retry·(1 − jitter·u), u uniform in [0, 1).

    >>> backoff(2, base=0.5, jitter=0.0, rng=random.Random(0))
    2.0
    >>> 1.0 <= backoff(2, base=0.5, jitter=0.5, rng=random.Random(0)) <= 2.0
    True
    """
    full = base * 2**retry
    return full * (1.0 - jitter * rng.random())


def next_wait(
    retry: int, *, base: float, jitter: float, rng: random.Random, asked: float | None, cap: float
) -> float:
    """The wait before retry `retry`: at least what the server `asked` (Retry-After), at least the
    backoff, at most `cap` (so a misbehaving server cannot park a run for hours)."""
    return min(cap, max(backoff(retry, base=base, jitter=jitter, rng=rng), asked or 0.0))
