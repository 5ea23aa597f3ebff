"""The RLAIF judge: an AI rater that asks an OpenAI-compatible chat-completions endpoint.

    tether label ai --endpoint http://127.0.0.1:8000/v1 --model judge-7b --name judge-7b

The system prompt is the behavior spec itself (dimensions with rubric levels, trade-offs,
unacceptable failures) plus explicit instructions not to reward length, hedging, lists or a
confident tone, the style cues reward models and LLM judges are known to over-reward
(RM-Bench; Singhal et al. 2023).

Each pair is judged twice, once in each presentation order, because LLM judges are
position-biased: a GPT-4 judge flipped 12.9% of its verdicts when the two answers were
swapped (lm-sys/FastChat#3911). Where FastChat-style judging averages the two orders, Tether
records a disagreement as a weak tie and flags it (`AIVerdict.position_consistent`), so a
verdict that only reflects presentation order never becomes a confident training label.

    >>> combine(JudgeReply("first", 3, "x"), JudgeReply("second", 2, "y"))
    ('A', 3, True)
    >>> combine(JudgeReply("first", 3, "x"), JudgeReply("first", 3, "y"))
    ('tie', 1, False)
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlparse

import httpx

from tether.errors import TetherError, TetherInputError
from tether.labeling.retry_policy import next_wait, retry_after, retryable
from tether.spec.model import Dimension, Spec

Choice = Literal["A", "B", "tie"]
ShownChoice = Literal["first", "second", "tie"]

EXCERPT_CHARS = 200
"""How much of an unparseable reply or error body an error message quotes."""

_CHOICE_WORDS: dict[str, ShownChoice] = {
    "1": "first", "first": "first", "a": "first", "response 1": "first",
    "2": "second", "second": "second", "b": "second", "response 2": "second",
    "tie": "tie", "equal": "tie", "draw": "tie",
}  # fmt: skip
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class JudgeUnavailable(TetherError):
    """The judge endpoint could not be reached or kept failing after all retries."""


class JudgeUnreachable(JudgeUnavailable):
    """Every attempt failed to connect: nothing is listening at the endpoint."""


class JudgeReplyError(TetherError):
    """The judge model's reply could not be read as a verdict."""


@dataclass(frozen=True)
class JudgeConfig:
    """How to reach the judge model."""

    endpoint: str
    """Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1; the judge POSTs to
    {endpoint}/chat/completions."""
    model: str
    """Model name sent in each request."""
    api_key: str | None = None
    """Sent as a Bearer token when set. Never read from the environment implicitly, so a local
    endpoint never receives a cloud key by accident."""
    timeout_s: float = 30.0
    """Per-request timeout in seconds."""
    max_retries: int = 5
    """Retries after the first attempt on connection errors, timeouts, HTTP 429 and 5xx."""
    backoff_s: float = 0.5
    """Delay before retry k (0-based) is backoff_s * 2**k seconds, less a random share (`jitter`)."""
    jitter: float = 0.5
    """Largest share of each backoff taken off at random (0.5: "equal jitter"), so that raters
    retrying after the same outage do not return in lockstep; 0 waits exactly backoff_s * 2**k."""
    max_wait_s: float = 60.0
    """Longest wait before one retry, whatever the backoff or the server's Retry-After asks, so a
    misbehaving server cannot park a labeling run for hours."""
    temperature: float = 0.0
    """Sampling temperature; 0 makes verdicts as reproducible as the server allows."""

    def __post_init__(self) -> None:
        url = urlparse(self.endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise TetherInputError(
                f"judge endpoint '{self.endpoint}' is not an http(s) URL; "
                "pass the API base, e.g. --endpoint http://127.0.0.1:8000/v1"
            )
        if not self.model.strip():
            raise TetherInputError("judge model name is empty; pass --model NAME")
        if self.timeout_s <= 0 or self.max_retries < 0 or self.backoff_s < 0 or self.max_wait_s < 0:
            raise TetherInputError(
                f"judge timeout_s must be > 0 and max_retries, backoff_s, max_wait_s >= 0; got timeout_s="
                f"{self.timeout_s}, max_retries={self.max_retries}, backoff_s={self.backoff_s}, "
                f"max_wait_s={self.max_wait_s}"
            )
        if not 0 <= self.jitter <= 1:
            raise TetherInputError(f"judge jitter must be in [0, 1], got {self.jitter}")

    @property
    def url(self) -> str:
        """The chat-completions URL."""
        return f"{self.endpoint.rstrip('/')}/chat/completions"


@dataclass(frozen=True)
class JudgeReply:
    """One parsed reply, in the order the responses were shown."""

    choice: ShownChoice
    """Which shown response the model preferred."""
    strength: int
    """Preference strength 1..3 (slightly, clearly, much better)."""
    rationale: str
    """The model's stated reason, possibly empty."""


@dataclass(frozen=True)
class AIVerdict:
    """A debiased verdict on one pair, in the caller's A/B order."""

    choice: Choice
    """Preferred response; "tie" also when the two presentation orders disagreed."""
    strength: int
    """Preference strength 1..3; 1 whenever the orders disagreed."""
    rationale: str
    """Both orders' rationales, saying whether they agreed; at least 20 characters."""
    position_consistent: bool
    """False when the verdict flipped with the presentation order."""
    first: JudgeReply
    """Reply with A shown first (as shown)."""
    second: JudgeReply
    """Reply with B shown first (as shown: its "first" is B)."""


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= EXCERPT_CHARS else flat[:EXCERPT_CHARS] + "...")


# --- prompt -----------------------------------------------------------------------------------


def _dimension_block(dim: Dimension, *, focus: bool) -> str:
    tags = [tag for tag, on in (("FOCUS OF THIS COMPARISON", focus), ("critical", dim.critical)) if on]
    head = f"- {dim.id}" + (f" ({', '.join(tags)})" if tags else "") + f": {dim.description.strip()}"
    levels = [f"    score {lvl.score}: {lvl.description}" for lvl in reversed(dim.rubric)]
    return "\n".join([head, "  Rubric, best level first:", *levels])


def _system_prompt(spec: Spec, dimension: str | None) -> str:
    dims = sorted(spec.dimensions, key=lambda d: d.id != dimension)  # stable: focus first, rest in order
    parts = [
        f"You are an expert rater for the behavior spec '{spec.name}' (version {spec.version}). "
        "You compare two responses to the same prompt and decide which one better meets the spec.",
    ]
    if spec.description.strip():
        parts.append(f"What the assistant is for: {spec.description.strip()}")
    if dimension is not None:
        parts.append(
            f"Judge this comparison on the dimension '{dimension}'. Use the other dimensions only "
            "when the two responses are equal on it, or when an unacceptable failure is involved."
        )
    parts.append("Dimensions:\n" + "\n".join(_dimension_block(d, focus=d.id == dimension) for d in dims))
    trade = spec.trade_offs
    if trade.priority or trade.rules:
        lines = ["When dimensions conflict:"]
        if trade.priority:
            lines.append(f"- Priority, most important first: {' > '.join(trade.priority)}.")
        lines += [f"- {rule}" for rule in trade.rules]
        parts.append("\n".join(lines))
    if spec.unacceptable:
        lines = ["Unacceptable failures (a response with one loses to a response without one):"]
        lines += [f"- {mode.id}: {mode.description}" for mode in spec.unacceptable]
        parts.append("\n".join(lines))
    parts.append(
        "Do not reward length, hedging, list formatting or a confident tone by themselves. A longer "
        "answer is not better because it is longer; a hedge is only good when the answer is truly "
        "uncertain; lists and headings are not quality; sounding sure is not being right. The order "
        "in which the responses are shown says nothing about which is better."
    )
    parts.append(
        'Reply with a single JSON object and nothing else: {"choice": "1" | "2" | "tie", '
        '"strength": 1 | 2 | 3, "rationale": "..."}. "1" means Response 1 is better, "2" means '
        "Response 2 is better. Strength: 1 slightly better, 2 clearly better, 3 much better. The "
        "rationale is one or two sentences that cite the rubric."
    )
    return "\n\n".join(parts)


def build_messages(
    spec: Spec, prompt: str, first: str, second: str, dimension: str | None
) -> list[dict[str, str]]:
    """Chat messages asking the judge to compare ``first`` (Response 1) with ``second`` (Response 2)."""
    if dimension is not None and dimension not in spec.dimension_ids:
        raise TetherInputError(
            f"unknown dimension '{dimension}'; the spec has: {', '.join(spec.dimension_ids)}"
        )
    on = f" on the dimension '{dimension}'" if dimension else ""
    user = (
        f"## Prompt\n{prompt}\n\n## Response 1\n{first}\n\n## Response 2\n{second}\n\n"
        f"## Your verdict\nWhich response is better{on}? Reply with the JSON object only."
    )
    return [{"role": "system", "content": _system_prompt(spec, dimension)}, {"role": "user", "content": user}]


# --- reading replies --------------------------------------------------------------------------


def json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object embedded in ``text``, fenced blocks first, in order of appearance."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    for chunk in [*_FENCE.findall(text), text]:
        for start in (m.start() for m in re.finditer(r"\{", chunk)):
            try:
                value, _ = decoder.raw_decode(chunk, start)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


def _shown_choice(value: object) -> ShownChoice | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None  # True == 1 in Python; a boolean choice is not a verdict
    return _CHOICE_WORDS.get(str(value).strip().lower())


def _strength(value: object) -> int:
    """Clamp to 1..3; anything missing or non-numeric means the middle level, 2."""
    if isinstance(value, bool):
        return 2
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 2
    return 2 if number != number else min(3, max(1, round(number)))  # NaN check


def parse_reply(text: str) -> JudgeReply:
    """Read the judge's JSON verdict, tolerating code fences and surrounding prose.

    >>> parse_reply('Sure! ```json\\n{"choice": 2, "strength": 5, "rationale": "shorter"}\\n```')
    JudgeReply(choice='second', strength=3, rationale='shorter')
    """
    for obj in json_objects(text):
        choice = _shown_choice(obj.get("choice"))
        if choice is not None:
            rationale = obj.get("rationale")
            return JudgeReply(choice, _strength(obj.get("strength")), str(rationale or "").strip())
    raise JudgeReplyError(
        'judge reply has no JSON object with a valid "choice" ("1", "2" or "tie"): '
        f"{_excerpt(text)}; check that the model follows JSON instructions"
    )


def _to_caller(reply: JudgeReply, *, swapped: bool) -> Choice:
    if reply.choice == "tie":
        return "tie"
    first_wins = reply.choice == "first"
    return "A" if first_wins != swapped else "B"


def combine(first_order: JudgeReply, swapped_order: JudgeReply) -> tuple[Choice, int, bool]:
    """Merge the (A, B) and (B, A) replies into (choice, strength, position_consistent).

    Agreement keeps the choice with the mean strength rounded half up. Disagreement, including
    a preference in one order against a tie in the other, becomes a tie of strength 1: the
    conservative reading of a verdict that depends on presentation order, which keeps it from
    entering training data as a confident label.
    """
    a_first = _to_caller(first_order, swapped=False)
    b_first = _to_caller(swapped_order, swapped=True)
    if a_first != b_first:
        return "tie", 1, False
    return a_first, (first_order.strength + swapped_order.strength + 1) // 2, True


def _combined_rationale(choice: Choice, consistent: bool, a_first: JudgeReply, b_first: JudgeReply) -> str:
    orders = (
        f"With A shown first: {_to_caller(a_first, swapped=False)} ({a_first.rationale or 'no rationale'}). "
        f"With B shown first: {_to_caller(b_first, swapped=True)} ({b_first.rationale or 'no rationale'})."
    )
    if consistent:
        return f"Both presentation orders agree on {choice}. {orders}"
    return f"The two presentation orders disagreed, so this is recorded as a weak tie. {orders}"


# --- the judge --------------------------------------------------------------------------------


def _completion_text(response: httpx.Response) -> str:
    """The assistant message of a chat-completions response body."""
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError) as exc:
        raise JudgeReplyError(
            f"endpoint {response.request.url} did not return a chat completion ({exc!r}): "
            f"{_excerpt(response.text)}"
        ) from exc
    if not isinstance(content, str):
        raise JudgeReplyError(f"judge message content is {type(content).__name__}, not text")
    return content


class ChatJudge:
    """Judges pairs against a spec by asking a chat model in both presentation orders."""

    def __init__(
        self,
        config: JudgeConfig,
        spec: Spec,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.spec = spec
        self._sleep = sleep
        # Unseeded by default: jitter exists to tell apart clients that would otherwise wait alike.
        self._rng = rng or random.Random()
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=config.timeout_s)

    def judge(
        self, prompt: str, response_a: str, response_b: str, *, dimension: str | None = None
    ) -> AIVerdict:
        """Judge A against B in both orders; the verdict is in the caller's A/B order."""
        a_first = parse_reply(
            self.complete(build_messages(self.spec, prompt, response_a, response_b, dimension))
        )
        b_first = parse_reply(
            self.complete(build_messages(self.spec, prompt, response_b, response_a, dimension))
        )
        choice, strength, consistent = combine(a_first, b_first)
        rationale = _combined_rationale(choice, consistent, a_first, b_first)
        return AIVerdict(choice, strength, rationale, consistent, a_first, b_first)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """POST one chat completion, retrying transient failures with jittered exponential backoff
        (`retry_policy`), at least as long as a Retry-After asks and at most `max_wait_s` per wait.

        Raises JudgeUnreachable when no attempt could connect, JudgeUnavailable when attempts
        connected but kept failing, TetherInputError on a 4xx that a retry will not heal."""
        cfg = self.config
        body = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature}
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        attempts = cfg.max_retries + 1
        last_error, wait_floor, connected = "", None, False
        for attempt in range(attempts):
            if attempt:
                wait = next_wait(
                    attempt - 1,
                    base=cfg.backoff_s,
                    jitter=cfg.jitter,
                    rng=self._rng,
                    asked=wait_floor,
                    cap=cfg.max_wait_s,
                )
                self._sleep(wait)
            try:
                response = self._client.post(cfg.url, json=body, headers=headers, timeout=cfg.timeout_s)
            except httpx.ConnectError as exc:
                last_error, wait_floor = f"{type(exc).__name__}: {exc}", None
                continue
            except httpx.TimeoutException as exc:
                last_error, wait_floor = f"timed out after {cfg.timeout_s}s ({type(exc).__name__})", None
                connected = connected or not isinstance(exc, httpx.ConnectTimeout)
                continue
            except httpx.TransportError as exc:
                last_error, wait_floor, connected = f"{type(exc).__name__}: {exc}", None, True
                continue
            connected = True
            status = response.status_code
            if retryable(status):
                last_error = f"HTTP {status}: {_excerpt(response.text)}"
                wait_floor = retry_after(response.headers.get("retry-after"), now=datetime.now(UTC))
                continue
            if status >= 300:
                # Other 4xx (401 bad key, 404 wrong path or model) will not heal by retrying.
                raise TetherInputError(
                    f"judge endpoint {cfg.url} answered HTTP {status}: {_excerpt(response.text)}; "
                    "check --endpoint (the API base, usually ending in /v1), --model and the API key"
                )
            return _completion_text(response)
        error = JudgeUnavailable if connected else JudgeUnreachable
        raise error(
            f"judge endpoint {cfg.url} failed after {attempts} attempts; last error: {last_error}. "
            "Check that the server is running and reachable, then rerun."
        )

    def close(self) -> None:
        """Close the HTTP client if this judge created it; a caller's client stays the caller's."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ChatJudge:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
