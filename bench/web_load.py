"""Load and crash test of the rater web app: simulated raters against a real `tether label serve`.

    .venv/bin/python bench/web_load.py --raters 50 --seconds 20 --db both --kill

For each database (SQLite file, or a fresh PostgreSQL database created next to --pg-url and
dropped afterwards) it (1) plans a project with enough live tasks to keep every rater busy,
(2) starts `tether label serve` as a subprocess on 127.0.0.1, (3) runs the raters as threads,
each with its own keep-alive httpx client, looping `GET /api/v1/assignments/next` ->
`POST /api/v1/judgments` (Idempotency-Key `<rater>-<assignment>`) until the deadline,
(4) with --kill, SIGKILLs the server half-way, restarts it on the same port and lets the raters
retry their in-flight submissions with the same keys, then (5) reads the judgments table
directly and checks that every acknowledged (2xx) judgment is stored exactly once.

Caveat: the load generator shares the machine's cores with the server (on a 2-core box, a
sizeable share), so the figures are a lower bound on what the server alone can do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tether.labeling import raters as rater_ops
from tether.labeling.batches import plan_batch
from tether.project import DB_ENV, Project
from tether.sandbox.build import sandbox_prompts, store_prompts
from tether.sandbox.config import SandboxConfig
from tether.sandbox.grammar import render_sft_example
from tether.sandbox.world import SandboxPrompt, stable_rng
from tether.scaffold import init_project
from tether.store.models import AssignmentRow, JudgmentRow
from tether.store.prompts import PromptRecord

HOST = "127.0.0.1"
RETRY_FOR = 60.0
"""Seconds a rater keeps retrying one request through connection errors and 5xx (a restart)."""
RATIONALE = "The chosen response answers the question directly and states the fact correctly."


@dataclass(frozen=True)
class Settings:
    raters: int
    """Concurrent simulated raters (threads, one keep-alive connection each)."""
    seconds: float
    """Length of the load phase."""
    tasks: int
    """Live tasks planned (about 20% get 3 slots); must outlast raters x seconds x rate."""
    kill: bool
    """SIGKILL the server half-way through and restart it on the same port."""
    port: int
    pg_url: str
    """An existing PostgreSQL database to connect to when creating and dropping the bench one."""
    rate: float
    """Paced load: judgments per second offered by all raters together (0: as fast as they can)."""
    workers: int
    """Server worker processes (`tether label serve --workers`)."""


# ---------------------------------------------------------------------------------------------
# (1) project and server


def sft_pairs(prompts: Sequence[PromptRecord]) -> list[tuple[str, str]]:
    """Two grammar-sampled responses per prompt, no model needed (as in the tests)."""
    out = []
    for record in prompts:
        prompt = SandboxPrompt.from_meta(record.meta)
        rng = stable_rng("bench-pairs", record.key)
        out.append((render_sft_example(prompt, rng), render_sft_example(prompt, rng)))
    return out


def make_project(root: Path, *, tasks: int, raters: int) -> tuple[Project, list[str]]:
    """A sandbox project with `tasks` planned live tasks and `raters` active raters; returns tokens."""
    project = init_project(root / "bench", template="sandbox")
    # The bench raters answer at random, so hidden anchors would move them out of the pool one by
    # one and the load would thin out as the run goes on; they are switched off here.
    spec = project.spec_path.read_text(encoding="utf-8")
    project.spec_path.write_text(spec.replace("hidden_anchor_rate: 0.05", "hidden_anchor_rate: 0.0"))
    project = Project.open(project.root)
    store_prompts(project, sandbox_prompts(SandboxConfig(n_prompts=max(1200, 2 * tasks))), 0)
    plan_batch(project, n=tasks, sampler=sft_pairs, labels=("sft", "sft"), seed=0)
    tokens = []
    for i in range(raters):
        _, token = rater_ops.add_person(project, name=f"r{i:03d}")
        rater_ops.readmit(project, name=f"r{i:03d}", reason="bench: calibrated elsewhere")
        tokens.append(token)
    return project, tokens


@contextmanager
def postgres_database(base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped on exit."""
    name = f"tether_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Server:
    """`tether label serve` as a subprocess, which can be killed and started again on its port."""

    def __init__(self, project_dir: Path, port: int, env: dict[str, str], log: Path, workers: int) -> None:
        self.args = [str(Path(sys.executable).parent / "tether"), "label", "serve"]
        self.args += ["--project", str(project_dir), "--host", HOST, "--port", str(port)]
        self.args += ["--workers", str(workers)]
        self.url = f"http://{HOST}:{port}"
        self.env = env
        self.log_path = log
        self.log = log.open("ab")
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed_at: float | None = None
        self.restarted_in = 0.0

    def start(self, token: str, timeout: float = 90.0) -> float:
        """Start and wait until the API answers; returns the seconds that took."""
        began = time.perf_counter()
        # A session of its own, so that SIGKILL reaches every worker process at once, as a crash
        # of the machine or the container would.
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=self.log, stderr=self.log, start_new_session=True
        )
        while time.perf_counter() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                r = httpx.get(f"{self.url}/api/v1/me", headers=bearer(token), timeout=1.0)
                if r.status_code == 200:
                    return time.perf_counter() - began
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within {timeout:.0f} s; see {self.log.name}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        if self.proc is None:
            return 0.0
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(pid) for pid in children.read_text().split()]
        ticks = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------------------------------
# (2) simulated raters


@dataclass(frozen=True)
class Ack:
    """A judgment the server acknowledged with 201 (new) or 200 (replay)."""

    rater: int
    assignment_id: int
    key: str
    judgment_id: int
    status: int


@dataclass
class RaterLog:
    fetch_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    cycle_ms: list[float] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    gave_up: int = 0
    queue_empty: bool = False


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx costs about a millisecond of CPU per request, and on a 2-core machine the load
    generator's CPU is taken from the server it measures; this costs a few tens of microseconds.
    It handles exactly what the API sends: Content-Length bodies and 204s."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.auth = f"Authorization: Bearer {token}\r\nHost: {host}:{port}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"", extra: str = "") -> tuple[int, bytes]:
        reader, writer = await self._connect()
        head = f"{method} {path} HTTP/1.1\r\n{self.auth}{extra}"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + body)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, (await reader.readexactly(length)) if length else b""


async def send(
    conn: Connection, log: RaterLog, method: str, path: str, body: bytes = b"", extra: str = ""
) -> tuple[int, bytes] | None:
    """One request, retried through connection errors and 5xx for up to RETRY_FOR seconds.

    Retrying a submission is safe because it carries the same Idempotency-Key."""
    began = time.perf_counter()
    while True:
        try:
            status, payload = await asyncio.wait_for(conn.request(method, path, body, extra), 10.0)
            log.statuses[f"{method} {status}"] += 1
            if status < 500:
                return status, payload
        except (
            OSError,
            ConnectionError,
            asyncio.IncompleteReadError,
            TimeoutError,
            ValueError,
            IndexError,
        ) as exc:
            log.statuses[f"{method} {type(exc).__name__}"] += 1
            conn.close()
        if time.perf_counter() - began > RETRY_FOR:
            log.gave_up += 1
            return None
        log.retries += 1
        await asyncio.sleep(0.05)


async def run_rater(index: int, conn: Connection, deadline: float, period: float, log: RaterLog) -> None:
    """Fetch and submit in a loop; with `period` > 0 a cycle starts every `period` seconds at most
    (paced load: latency is then measured at a set throughput instead of at saturation)."""
    rng = random.Random(index)
    next_start = time.perf_counter() + rng.uniform(0, period)
    while time.perf_counter() < deadline:
        if period:
            await asyncio.sleep(max(0.0, next_start - time.perf_counter()))
            next_start += period
        t0 = time.perf_counter()
        got = await send(conn, log, "GET", "/api/v1/assignments/next")
        t1 = time.perf_counter()
        if got is None:
            return
        if got[0] == 204:
            log.queue_empty = True
            return
        if got[0] != 200:
            continue
        assignment_id = int(json.loads(got[1])["assignment_id"])
        key = f"r{index:03d}-{assignment_id}"
        body = {
            "assignment_id": assignment_id,
            "choice": rng.choice(("A", "B", "tie")),
            "strength": rng.randint(1, 3),
            "rationale": RATIONALE,
            "seconds": 1.0,
        }
        done = await send(
            conn, log, "POST", "/api/v1/judgments", json.dumps(body).encode(), f"Idempotency-Key: {key}\r\n"
        )
        t2 = time.perf_counter()
        log.fetch_ms.append(1000 * (t1 - t0))
        log.submit_ms.append(1000 * (t2 - t1))
        log.cycle_ms.append(1000 * (t2 - t0))
        if done is not None and done[0] in (200, 201):
            judgment_id = int(json.loads(done[1])["judgment_id"])
            log.acks.append(Ack(index, assignment_id, key, judgment_id, done[0]))


async def run_raters(
    settings: Settings, port: int, tokens: Sequence[str], logs: Sequence[RaterLog], server: Server
) -> float:
    """All raters on one event loop; with --kill, SIGKILL and restart the server half-way."""
    began = time.perf_counter()
    deadline = began + settings.seconds
    period = len(tokens) / settings.rate if settings.rate else 0.0
    conns = [Connection(HOST, port, tok) for tok in tokens]
    tasks = [asyncio.create_task(run_rater(i, c, deadline, period, logs[i])) for i, c in enumerate(conns)]
    if settings.kill:
        await asyncio.sleep(settings.seconds / 2)
        server.kill()
        server.killed_at = time.perf_counter() - began
        server.restarted_in = await asyncio.to_thread(server.start, tokens[0])
    await asyncio.gather(*tasks)
    for c in conns:
        c.close()
    return time.perf_counter() - began


# ---------------------------------------------------------------------------------------------
# (3) checks against the database


@dataclass(frozen=True)
class Audit:
    stored: int
    lost: int
    """Acknowledged judgments missing from the database (or stored under another id or key)."""
    duplicated: int
    """Assignments judged twice, keys used twice, live tasks judged twice by one rater, or one key
    acknowledged with two different judgment ids."""
    unacknowledged: int
    """Stored judgments no rater saw acknowledged (a submission whose every reply was lost)."""


def audit(db_url: str, acks: Sequence[Ack]) -> Audit:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(JudgmentRow.id, JudgmentRow.assignment_id, JudgmentRow.idempotency_key)
            ).all()
            twice = select(JudgmentRow.task_id, JudgmentRow.rater_id).join(
                AssignmentRow, AssignmentRow.id == JudgmentRow.assignment_id
            )
            twice = twice.where(AssignmentRow.purpose == "live")
            twice = twice.group_by(JudgmentRow.task_id, JudgmentRow.rater_id)
            same_task = len(conn.execute(twice.having(func.count() > 1)).all())
    finally:
        engine.dispose()
    stored = {jid: (aid, key) for jid, aid, key in rows}
    lost = sum(stored.get(a.judgment_id) != (a.assignment_id, a.key) for a in acks)
    by_assignment = Counter(aid for aid, _ in stored.values())
    by_key = Counter(key for _, key in stored.values())
    ids_per_key: dict[str, set[int]] = {}
    for a in acks:
        ids_per_key.setdefault(a.key, set()).add(a.judgment_id)
    duplicated = (
        sum(n - 1 for n in by_assignment.values() if n > 1)
        + sum(n - 1 for n in by_key.values() if n > 1)
        + same_task
        + sum(len(ids) - 1 for ids in ids_per_key.values() if len(ids) > 1)
    )
    acked = {a.judgment_id for a in acks}
    return Audit(len(stored), lost, duplicated, sum(jid not in acked for jid in stored))


# ---------------------------------------------------------------------------------------------
# (4) one run and its report


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_once(settings: Settings, db: str, root: Path, db_url: str | None) -> None:
    env = dict(os.environ)
    if db_url is not None:
        os.environ[DB_ENV] = env[DB_ENV] = db_url
    else:
        os.environ.pop(DB_ENV, None)
        env.pop(DB_ENV, None)
    t = time.perf_counter()
    project, tokens = make_project(root, tasks=settings.tasks, raters=settings.raters)
    store_url = project.db_url
    project.store.close()
    print(f"[{db}] project: {settings.tasks} tasks, {len(tokens)} raters in {time.perf_counter() - t:.1f} s")

    server = Server(project.root, settings.port, env, root / f"server-{db}.log", settings.workers)
    try:
        print(f"[{db}] server up in {server.start(tokens[0]):.1f} s on {server.url}")
        logs = [RaterLog() for _ in tokens]
        cpu_before = server.cpu_seconds()
        elapsed = asyncio.run(run_raters(settings, settings.port, tokens, logs, server))
        server_cpu = server.cpu_seconds() - cpu_before
    finally:
        server.stop()

    acks = [a for log in logs for a in log.acks]
    fetch = [x for log in logs for x in log.fetch_ms]
    submit = [x for log in logs for x in log.submit_ms]
    cycle = [x for log in logs for x in log.cycle_ms]
    statuses = sum((log.statuses for log in logs), Counter())
    result = audit(store_url, acks)

    rate = len(acks) / elapsed
    print(f"[{db}] {len(acks)} judgments acknowledged in {elapsed:.1f} s = {rate:.0f} judgments/s")
    if server.killed_at is None and acks:
        # CPU per judgment does not depend on what else runs on the machine, unlike the rate.
        per = 1000 * server_cpu / len(acks)
        print(f"[{db}]   server CPU {server_cpu:.1f} s = {per:.2f} ms per judgment (fetch + submit)")
    for name, values in (("cycle", cycle), ("fetch", fetch), ("submit", submit)):
        p50, p99 = pct(values, 0.5), pct(values, 0.99)
        print(f"[{db}]   {name:6s} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   (n={len(values)})")
    print(f"[{db}]   responses: {dict(sorted(statuses.items()))}")
    print(
        f"[{db}]   retries {sum(log.retries for log in logs)}, gave up {sum(log.gave_up for log in logs)}, "
        f"raters that found the queue empty {sum(log.queue_empty for log in logs)}"
    )
    if server.killed_at is not None:
        print(
            f"[{db}]   SIGKILL at {server.killed_at:.1f} s, "
            f"server answering again {server.restarted_in:.1f} s later"
        )
    server_errors(db, server.log_path)
    print(
        f"[{db}]   audit: {result.stored} stored, lost {result.lost}, duplicated {result.duplicated}, "
        f"stored but never acknowledged {result.unacknowledged}"
    )


def server_errors(db: str, log: Path) -> None:
    """Summarize the server's own log: how many tracebacks, and the distinct exceptions."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    errors = Counter(
        line.strip()[:160]
        for line in lines
        if line and not line[0].isspace() and "Error" in line.split(":")[0]
    )
    tracebacks = sum(line.startswith("Traceback") for line in lines)
    print(f"[{db}]   server log: {tracebacks} tracebacks")
    for line, n in errors.most_common(5):
        print(f"[{db}]     {n} x {line}")


def parse(argv: Sequence[str] | None = None) -> tuple[Settings, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--raters", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--kill", action="store_true", help="SIGKILL and restart the server half-way")
    p.add_argument("--tasks", type=int, default=9000)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    p.add_argument("--rate", type=float, default=0.0, help="paced: judgments/s offered in all (0 = flat out)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes")
    a = p.parse_args(argv)
    dbs = ["sqlite", "postgres"] if a.db == "both" else [a.db]
    return Settings(a.raters, a.seconds, a.tasks, a.kill, a.port, a.pg_url, a.rate, a.workers), dbs


def main(argv: Sequence[str] | None = None) -> None:
    settings, dbs = parse(argv)
    for db in dbs:
        with tempfile.TemporaryDirectory(prefix=f"tether-web-load-{db}-") as tmp:
            if db == "sqlite":
                run_once(settings, db, Path(tmp), None)
            else:
                with postgres_database(settings.pg_url) as url:
                    run_once(settings, db, Path(tmp), url)


if __name__ == "__main__":
    main()
