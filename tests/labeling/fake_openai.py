"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for testing the AI judge.

It answers POST /v1/chat/completions with a verdict from a deterministic ``policy`` that sees
the two responses as shown, unless a scripted ``Fault`` is queued for that request. Every request
is recorded so tests can check what the judge asked. The server runs on an ephemeral port in a
daemon thread and shuts itself down after ``lifetime_s`` in case a test forgets to stop it.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Policy = Callable[[str, str], str]
"""(response shown first, response shown second) -> the assistant message content."""

_SHOWN = re.compile(r"## Response 1\n(.*?)\n\n## Response 2\n(.*?)\n\n## Your verdict", re.DOTALL)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is expected here, not a test failure


def verdict(choice: str, strength: int = 2, rationale: str = "judged by the fake policy") -> str:
    """The JSON reply a well-behaved judge model gives."""
    return json.dumps({"choice": choice, "strength": strength, "rationale": rationale})


def always(choice: str, strength: int = 2) -> Policy:
    """Always prefer the same shown position: a maximally position-biased judge."""
    return lambda first, second: verdict(choice, strength, f"always picks {choice}")


def prefer_containing(phrase: str, strength: int = 3) -> Policy:
    """Prefer the response containing ``phrase`` (e.g. a refusal); tie when both or neither do."""

    def policy(first: str, second: str) -> str:
        has = (phrase in first, phrase in second)
        if has[0] == has[1]:
            return verdict("tie", 1, "both or neither contain the phrase")
        return verdict("1" if has[0] else "2", strength, f"only one response says '{phrase}'")

    return policy


def prefer_shorter(strength: int = 2) -> Policy:
    """Prefer the shorter response, whichever position it is shown in."""

    def policy(first: str, second: str) -> str:
        if len(first) == len(second):
            return verdict("tie", 1, "same length")
        return verdict("1" if len(first) < len(second) else "2", strength, "the shorter one is direct")

    return policy


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one request."""

    status: int = 503
    """HTTP status to answer with (ignored when ``drop`` or ``content`` is set)."""
    drop: bool = False
    """Close the connection without answering."""
    delay_s: float = 0.0
    """Wait this long before acting, to provoke client timeouts."""
    content: str | None = None
    """Answer 200 with this assistant content instead of the policy's (e.g. garbage)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. Retry-After."""


@dataclass
class Recorded:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def system(self) -> str:
        return str(self.body["messages"][0]["content"])

    @property
    def shown(self) -> tuple[str, str]:
        """The two responses in the order they were shown."""
        match = _SHOWN.search(str(self.body["messages"][-1]["content"]))
        assert match, "the user message does not label Response 1 and Response 2"
        return match.group(1), match.group(2)


class FakeOpenAI:
    """An in-process chat-completions server; use as a context manager."""

    def __init__(self, policy: Policy | None = None, *, lifetime_s: float = 60.0) -> None:
        self.policy = policy or always("1")
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: shutdown() waits up to one interval, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True
        self._stopped = False

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, *faults: Fault) -> None:
        """Queue faults; each is used by one request, then the policy answers again."""
        with self._lock:
            self.faults.extend(faults)

    def start(self) -> FakeOpenAI:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _next(self, record: Recorded) -> Fault | None:
        with self._lock:
            self.requests.append(record)
            return self.faults.popleft() if self.faults else None


def _completion(content: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {"id": "fake", "object": "chat.completion", "choices": [{"index": 0, "message": message}]}


def _handler_for(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            record = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw))
            fault = fake._next(record)
            if fault is None:
                self._send(200, _completion(fake.policy(*record.shown)))
                return
            time.sleep(fault.delay_s)
            if fault.drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif fault.content is not None:
                self._send(200, _completion(fault.content), fault.headers)
            else:
                self._send(fault.status, {"error": {"message": f"scripted {fault.status}"}}, fault.headers)

    return Handler


def closed_port_endpoint() -> str:
    """An endpoint on a loopback port that was just free, so nothing listens there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
