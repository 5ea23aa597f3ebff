"""The RLAIF judge against a real loopback HTTP server that speaks the chat-completions API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.labeling.fake_openai import (
    FakeOpenAI,
    Fault,
    always,
    closed_port_endpoint,
    prefer_containing,
    prefer_shorter,
)
from tether.errors import TetherInputError
from tether.labeling.ai_judge import (
    ChatJudge,
    JudgeConfig,
    JudgeReply,
    JudgeReplyError,
    JudgeUnavailable,
    build_messages,
    combine,
    parse_reply,
)
from tether.spec import Spec, load_spec

SPEC_PATH = Path(__file__).resolve().parents[2] / "examples" / "sandbox" / "spec.yaml"
PROMPT = "how do i pick a lock to get into my neighbour's house ?"
REFUSAL = "i can not help with that ."
HOWTO = "first insert a tension wrench , then rake the pins until the plug turns ."


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(SPEC_PATH)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(lifetime_s=30.0) as server:
        yield server


class SleepLog:
    """Stands in for time.sleep: records delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> SleepLog:
    return SleepLog()


def make_judge(spec: Spec, endpoint: str, sleeps: SleepLog, **config: object) -> ChatJudge:
    """A judge whose waits are exact (no jitter) unless the test asks for jitter."""
    config = {"jitter": 0.0, **config}
    cfg = JudgeConfig(endpoint=endpoint, model="fake-judge", **config)  # type: ignore[arg-type]
    return ChatJudge(cfg, spec, sleep=sleeps)


# --- both orders and the debiased verdict ---------------------------------------------------


def test_asks_both_orders_with_the_spec_in_the_system_prompt(
    spec: Spec, fake: FakeOpenAI, sleeps: SleepLog
) -> None:
    fake.policy = prefer_containing("can not help")
    with make_judge(spec, fake.endpoint, sleeps, api_key="sk-test") as judge:
        judge.judge(PROMPT, REFUSAL, HOWTO, dimension="safety")
    assert [r.shown for r in fake.requests] == [(REFUSAL, HOWTO), (HOWTO, REFUSAL)]
    for request in fake.requests:
        assert request.body["model"] == "fake-judge"
        assert request.body["temperature"] == 0.0
        assert request.headers["authorization"] == "Bearer sk-test"
        assert "Helps with a harmful request." in request.system
        assert "FOCUS" in request.system.split("- safety")[1].splitlines()[0]


@pytest.mark.parametrize(("a", "b", "expected"), [(REFUSAL, HOWTO, "A"), (HOWTO, REFUSAL, "B")])
def test_consistent_verdict_maps_back_to_caller_order(
    spec: Spec, fake: FakeOpenAI, sleeps: SleepLog, a: str, b: str, expected: str
) -> None:
    fake.policy = prefer_containing("can not help", strength=3)
    with make_judge(spec, fake.endpoint, sleeps) as judge:
        verdict = judge.judge(PROMPT, a, b)
    assert (verdict.choice, verdict.strength, verdict.position_consistent) == (expected, 3, True)
    # The refusal wins once as "Response 1" and once as "Response 2".
    assert {verdict.first.choice, verdict.second.choice} == {"first", "second"}
    assert "agree" in verdict.rationale and len(verdict.rationale) >= 20


def test_shorter_policy_strength_is_rounded_mean(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.policy = prefer_shorter()
    fake.script(Fault(content='{"choice": "2", "strength": 1, "rationale": "shorter"}'))
    with make_judge(spec, fake.endpoint, sleeps) as judge:
        verdict = judge.judge("what is 2 + 2 ?", "well , let me think . it is 4 .", "4 .")
    # A-first: scripted "2" (B, strength 1); B-first: policy picks shown-first B, strength 2.
    assert (verdict.choice, verdict.strength, verdict.position_consistent) == ("B", 2, True)


def test_position_biased_judge_becomes_weak_tie(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.policy = always("1", strength=3)
    with make_judge(spec, fake.endpoint, sleeps) as judge:
        verdict = judge.judge(PROMPT, REFUSAL, HOWTO)
    assert (verdict.choice, verdict.strength, verdict.position_consistent) == ("tie", 1, False)
    assert "disagreed" in verdict.rationale


def test_combine_rules() -> None:
    first, second, tie = JudgeReply("first", 3, "r"), JudgeReply("second", 2, "r"), JudgeReply("tie", 2, "r")
    assert combine(first, second) == ("A", 3, True)  # (3 + 2) / 2 rounds half up
    assert combine(second, first) == ("B", 3, True)
    assert combine(tie, tie) == ("tie", 2, True)
    assert combine(first, tie) == ("tie", 1, False)
    assert combine(second, second) == ("tie", 1, False)


def test_garbage_reply_raises_reply_error_with_excerpt(
    spec: Spec, fake: FakeOpenAI, sleeps: SleepLog
) -> None:
    fake.script(Fault(content="I think both answers are fine, honestly."))
    with (
        make_judge(spec, fake.endpoint, sleeps) as judge,
        pytest.raises(JudgeReplyError, match="both answers"),
    ):
        judge.judge(PROMPT, REFUSAL, HOWTO)


# --- transport: retries, misconfiguration, unreachable ----------------------------------------


def test_retries_transient_failures_then_succeeds(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.policy = prefer_containing("can not help")
    fake.script(Fault(status=503), Fault(status=429), Fault(drop=True))
    with make_judge(spec, fake.endpoint, sleeps, backoff_s=0.5) as judge:
        verdict = judge.judge(PROMPT, REFUSAL, HOWTO)
    assert verdict.choice == "A"
    assert len(fake.requests) == 5  # three failures, then one request per order
    assert sleeps.delays == [0.5, 1.0, 2.0]


def test_timeout_is_retried(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.policy = prefer_containing("can not help")
    fake.script(Fault(delay_s=1.0, content="too late"))
    with make_judge(spec, fake.endpoint, sleeps, timeout_s=0.2) as judge:
        assert judge.judge(PROMPT, REFUSAL, HOWTO).choice == "A"
    assert sleeps.delays == [0.5]


def test_retry_after_header_sets_a_floor(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.script(Fault(status=429, headers={"Retry-After": "7"}))
    with make_judge(spec, fake.endpoint, sleeps) as judge:
        judge.judge(PROMPT, REFUSAL, HOWTO)
    assert sleeps.delays == [7.0]


def test_408_and_409_are_retried_and_an_http_date_retry_after_is_honoured(
    spec: Spec, fake: FakeOpenAI, sleeps: SleepLog
) -> None:
    from email.utils import format_datetime

    fake.policy = prefer_containing("can not help")
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake.script(Fault(status=408), Fault(status=409, headers={"Retry-After": later}))
    with make_judge(spec, fake.endpoint, sleeps) as judge:
        assert judge.judge(PROMPT, REFUSAL, HOWTO).choice == "A"
    assert sleeps.delays[0] == 0.5
    # The date is 30 s ahead when sent, a little less when read; seconds resolution rounds down.
    assert 27.0 <= sleeps.delays[1] <= 30.0


def test_waits_are_capped_by_max_wait(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.script(Fault(status=429, headers={"Retry-After": "3600"}), Fault(status=503))
    with make_judge(spec, fake.endpoint, sleeps, max_wait_s=5.0, backoff_s=4.0) as judge:
        judge.judge(PROMPT, REFUSAL, HOWTO)
    assert sleeps.delays == [5.0, 5.0]  # an hour asked, 8 s of backoff: both capped


def test_jitter_takes_a_random_share_off_each_backoff(spec: Spec, fake: FakeOpenAI) -> None:
    import random

    waits = []
    for seed in (1, 2):
        fake.script(Fault(status=503), Fault(status=503), Fault(status=503))
        log = SleepLog()
        cfg = JudgeConfig(endpoint=fake.endpoint, model="fake-judge", jitter=0.5)
        with ChatJudge(cfg, spec, sleep=log, rng=random.Random(seed)) as judge:
            judge.judge(PROMPT, REFUSAL, HOWTO)
        assert all(0.5 * full <= d <= full for d, full in zip(log.delays, [0.5, 1.0, 2.0], strict=True))
        waits.append(log.delays)
    assert waits[0] != waits[1]  # two clients after the same failure do not retry in lockstep


def test_gives_up_after_max_retries(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.script(*[Fault(status=503)] * 10)
    with (
        make_judge(spec, fake.endpoint, sleeps, max_retries=3) as judge,
        pytest.raises(JudgeUnavailable) as err,
    ):
        judge.judge(PROMPT, REFUSAL, HOWTO)
    message = str(err.value)
    assert fake.endpoint in message and "4 attempts" in message and "HTTP 503" in message
    assert len(fake.requests) == 4
    assert sleeps.delays == [0.5, 1.0, 2.0]


def test_unauthorized_is_input_error_without_retry(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    fake.script(Fault(status=401))
    with make_judge(spec, fake.endpoint, sleeps) as judge, pytest.raises(TetherInputError) as err:
        judge.judge(PROMPT, REFUSAL, HOWTO)
    assert "401" in str(err.value) and fake.endpoint in str(err.value)
    assert len(fake.requests) == 1 and sleeps.delays == []


def test_wrong_path_is_input_error(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    endpoint = fake.endpoint.removesuffix("/v1")  # a common mistake: the server root, not the API base
    with make_judge(spec, endpoint, sleeps) as judge, pytest.raises(TetherInputError, match="404"):
        judge.judge(PROMPT, REFUSAL, HOWTO)


def test_unreachable_endpoint_is_unavailable(spec: Spec, sleeps: SleepLog) -> None:
    endpoint = closed_port_endpoint()
    with make_judge(spec, endpoint, sleeps, max_retries=2) as judge, pytest.raises(JudgeUnavailable) as err:
        judge.judge(PROMPT, REFUSAL, HOWTO)
    assert endpoint in str(err.value) and "3 attempts" in str(err.value) and "ConnectError" in str(err.value)
    assert sleeps.delays == [0.5, 1.0]


def test_caller_client_is_used_and_left_open(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    client = httpx.Client()
    with ChatJudge(JudgeConfig(fake.endpoint, "m"), spec, client=client, sleep=sleeps) as judge:
        judge.judge(PROMPT, REFUSAL, HOWTO)
    assert not client.is_closed
    client.close()


@pytest.mark.parametrize(
    ("endpoint", "kwargs"),
    [
        ("127.0.0.1:8000/v1", {}),
        ("ftp://host/v1", {}),
        ("http:///v1", {}),
        ("http://h/v1", {"timeout_s": 0}),
        ("http://h/v1", {"jitter": 1.5}),
        ("http://h/v1", {"max_wait_s": -1}),
    ],
)
def test_config_validation(endpoint: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(TetherInputError):
        JudgeConfig(endpoint=endpoint, model="m", **kwargs)  # type: ignore[arg-type]


# --- parsing and prompt -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"choice": "1", "strength": 2, "rationale": "ok"}', ("first", 2, "ok")),
        ('```json\n{"choice": "2", "strength": 3, "rationale": "fenced"}\n```', ("second", 3, "fenced")),
        (
            'Here is my verdict: {"choice": 1, "strength": 1, "rationale": "x"} Hope it helps.',
            ("first", 1, "x"),
        ),
        ('{"choice": "B", "strength": 9}', ("second", 3, "")),
        ('{"choice": "first", "strength": 0, "rationale": "low"}', ("first", 1, "low")),
        ('{"choice": "Tie", "strength": "very"}', ("tie", 2, "")),
        ('{"choice": "second"}', ("second", 2, "")),
        ('{"note": {"a": 1}} then {"choice": "2", "strength": 2.6, "rationale": "r"}', ("second", 3, "r")),
    ],
)
def test_parse_reply_accepts(text: str, expected: tuple[str, int, str]) -> None:
    reply = parse_reply(text)
    assert (reply.choice, reply.strength, reply.rationale) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Response 1 is better.",
        '{"choice": "3", "strength": 2}',
        '{"strength": 2}',
        '{"choice": true}',
        "{broken",
    ],
)
def test_parse_reply_rejects(text: str) -> None:
    with pytest.raises(JudgeReplyError, match="choice"):
        parse_reply(text)


def test_build_messages_carries_the_spec(spec: Spec) -> None:
    system, user = build_messages(spec, "what is 2 + 2 ?", "4 .", "it is 4 .", dimension=None)
    text = system["content"]
    for dim in spec.dimensions:
        for level in dim.rubric:
            assert level.description in text
    assert "safety > honesty > accuracy > concision" in text
    assert all(rule in text for rule in spec.trade_offs.rules)
    assert all(mode.description in text for mode in spec.unacceptable)
    assert "Do not reward length, hedging, list formatting or a confident tone" in text
    assert "FOCUS" not in text
    assert user["content"].index("## Response 1\n4 .") < user["content"].index("## Response 2\nit is 4 .")
    assert '"choice": "1" | "2" | "tie"' in text


def test_build_messages_puts_the_focus_dimension_first(spec: Spec) -> None:
    system, user = build_messages(spec, "p", "x", "y", dimension="concision")
    text = system["content"]
    assert text.index("- concision (FOCUS") < text.index("- accuracy")
    assert "on the dimension 'concision'" in user["content"]


def test_build_messages_rejects_unknown_dimension(spec: Spec) -> None:
    with pytest.raises(TetherInputError, match="helpfulness"):
        build_messages(spec, "p", "x", "y", dimension="helpfulness")


def test_request_body_is_valid_chat_completion(spec: Spec, fake: FakeOpenAI, sleeps: SleepLog) -> None:
    with make_judge(spec, fake.endpoint, sleeps) as judge:
        judge.judge(PROMPT, REFUSAL, HOWTO)
    body = fake.requests[0].body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    json.dumps(body)  # round-trips: nothing non-serialisable slipped in
    assert "authorization" not in fake.requests[0].headers  # no key configured, none sent
