"""Throughput and latency of the public survey under gunicorn, against Flask baselines.

Starts, in one run and with the same gunicorn settings (``--workers N`` gthread workers of
``--threads 8`` threads, as ``gunicorn.conf.py`` deploys the app; ``--threads 1``: sync):

* the app (SQLite in a temporary folder, migrated with ``flask --app loyalty db upgrade``,
  filled with ``--invitations`` invitations in Danish and English),
* the same app on the same database file with ``PRAGMA synchronous=NORMAL`` instead of the
  app's ``FULL`` (``loyalty.db.SQLITE_SYNCHRONOUS``), to measure what syncing every commit
  to the disk costs, and
* ``baseline_app.py``: a bare Flask route and a Flask route doing one raw SQLite insert on a
  connection tuned as ``loyalty/db.py`` tunes the app's (WAL, synchronous FULL, busy timeout),

then drives five targets with the same closed-loop load (``--concurrency`` client threads,
a warm-up, then ``--duration`` seconds each, split over ``--rounds`` rounds that take the
targets in turn, so that a change in other load on a shared machine hits all of them alike):

* ``bare``   GET  /bare                  (baseline)
* ``page``   GET  /s/<token>             (the survey page)
* ``insert`` POST /insert/<token>        (baseline: the survey's form body, one INSERT)
* ``submit`` POST /s/<token>             (a complete answer with two comments, CSRF-checked,
                                          sentiment-scored; each POST answers a new invitation)
* ``submit_normal``                      (``submit`` against the app with synchronous=NORMAL;
                                          the two draw new invitations from one supply)

Human-readable lines come first; the last line is one JSON object with requests/s, p50/p99
latency and errors per target, the ratios submit/insert and page/bare (target >= 0.5), and
``durability``: submit throughput with synchronous FULL over NORMAL, measured in this run.
Each target also gets, from Linux /proc (every thread counted), the CPU time per request of
its server (master and workers) and of the load generator, the time per request the workers
were ready but queued for a core (other load on the machine), and the share of the workers'
time they were blocked (waiting for a request, a database lock or the disk; a worker runs
Python on one core at a time, so its threads' running and queued times are counted against
one core each). ``cpu_cost_ratios`` compares CPU costs:
when it is close to the throughput ratio, the gap is CPU work in the app, not waiting.

The load generator is Python (``http.client``) and runs on the same machine as the servers,
so it competes with them for the CPU cores (2 on the project's machines): absolute figures
are pessimistic and only ratios measured in the same run are meaningful. The cheaper a
target, the larger the client's share of the CPU (``client_cpu_ms_per_request``), which
flatters the app's ratios a little. The exit status is 1 when any request failed.

With ``--database-url postgresql+psycopg://...`` the app and the raw insert use that
PostgreSQL database instead (its schema is dropped first), and ``submit_normal`` is left out.

    .venv/bin/python tests/benchmarks/bench_survey.py [--duration 8] [--rounds 2]
        [--warmup 2] [--concurrency 8] [--invitations 8000] [--workers 2] [--threads 8]
        [--database-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SECRET_KEY = "bench-survey-fixed-secret-key-not-for-production"
#: threads per worker as ``gunicorn.conf.py`` deploys the app (gthread workers)
GUNICORN_THREADS = 8
TARGET_RATIO = 0.5

#: (reason, improve) comments per tone and language, as customers write them; negative ones
#: carry churn and escalation cues, which the sentiment scorer and the flag rules look for.
COMMENTS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "promoter": {
        "da": [
            (
                "Leveringen var hurtig og varen var præcis som beskrevet. Rigtig god service!",
                "Det ville være rart med en SMS, når pakken er på vej.",
            ),
            (
                "Meget tilfreds med rådgivningen i butikken, sælgeren tog sig god tid.",
                "Intet at tilføje, fortsæt det gode arbejde.",
            ),
        ],
        "en": [
            (
                "Great product and the delivery was faster than promised. Very happy!",
                "Maybe offer a tracking link that actually updates in real time.",
            ),
            (
                "Friendly staff who took the time to explain the options. Not bad at all.",
                "Nothing really, keep doing what you are doing.",
            ),
        ],
    },
    "passive": {
        "da": [
            (
                "Produktet er fint, men monteringsvejledningen var svær at forstå.",
                "Lav en video, der viser monteringen trin for trin.",
            ),
            (
                "Prisen var i orden, og varen kom til tiden.",
                "Hjemmesiden kunne godt være lidt mere overskuelig.",
            ),
        ],
        "en": [
            (
                "Good quality, but the installation guide was confusing and missing a step.",
                "A short video of the installation would help a lot.",
            ),
            (
                "The price was fair and it arrived on time.",
                "Your website could be easier to find things on.",
            ),
        ],
    },
    "detractor": {
        "da": [
            (
                "Fakturaen var forkert for anden gang, og det tog tre uger at få svar fra support.",
                "Svar hurtigere på mails. Ellers overvejer vi at skifte leverandør.",
            ),
            (
                "Elendig oplevelse. Varen kom i stykker, og ingen ringede tilbage.",
                "Jeg vil have pengene tilbage og opsiger vores aftale, hvis det ikke løses.",
            ),
        ],
        "en": [
            (
                "The invoice was wrong again and support took two weeks to answer my email.",
                "Answer faster. Honestly we are looking at other suppliers right now.",
            ),
            (
                "Terrible experience. It arrived broken and nobody called me back.",
                "I want a refund, and we won't renew the contract unless this is fixed.",
            ),
        ],
    },
}
#: Share of each tone among answers, and the (nps, csat, ces) ranges that go with it: a
#: typical mix, so that flags and cases are raised for some answers, not for every one.
TONES: dict[str, tuple[float, tuple[int, int], tuple[int, int], tuple[int, int]]] = {
    "promoter": (0.55, (9, 10), (4, 5), (5, 7)),
    "passive": (0.25, (7, 8), (3, 4), (4, 6)),
    "detractor": (0.20, (0, 6), (1, 3), (1, 4)),
}


# --- Servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class GroupTimes:
    """Scheduler times of one gunicorn server, in seconds (from Linux /proc)."""

    cpu: float  # on a core: master and workers
    worker_cpu: float  # on a core: workers only
    worker_queued: float  # runnable but waiting for a core (other load on the machine)
    workers: int

    def __sub__(self, earlier: GroupTimes) -> GroupTimes:
        return GroupTimes(
            self.cpu - earlier.cpu,
            self.worker_cpu - earlier.worker_cpu,
            self.worker_queued - earlier.worker_queued,
            self.workers,
        )

    def __add__(self, other: GroupTimes) -> GroupTimes:
        return GroupTimes(
            self.cpu + other.cpu,
            self.worker_cpu + other.worker_cpu,
            self.worker_queued + other.worker_queued,
            self.workers,
        )


def process_group_times(pgid: int) -> GroupTimes | None:
    """Times of the live processes of one process group; the group leader is the master."""
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return None
    cpu = worker_cpu = worker_queued = 0.0
    workers = 0
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:  # state ppid pgrp ...
                continue
            on_core_ns, queued_ns = thread_times(entry.path)
        except (OSError, ValueError):
            continue
        cpu += int(on_core_ns) / 1e9
        if int(entry.name) != pgid:
            workers += 1
            worker_cpu += int(on_core_ns) / 1e9
            worker_queued += int(queued_ns) / 1e9
    return GroupTimes(cpu, worker_cpu, worker_queued, workers) if workers else None


def thread_times(process: str) -> tuple[int, int]:
    """Nanoseconds on a core and queued for one, summed over a process's threads: a process's
    own ``schedstat`` counts its main thread only, and gthread workers serve in other threads."""
    on_core = queued = 0
    for task in os.scandir(Path(process, "task")):
        with contextlib.suppress(OSError, ValueError):
            ran, waited, _ = Path(task.path, "schedstat").read_text().split()
            on_core, queued = on_core + int(ran), queued + int(waited)
    return on_core, queued


def control_socket_args(path: Path) -> list[str]:
    """Recent gunicorn opens a control socket, by default one per user: give each its own."""
    from gunicorn.config import KNOWN_SETTINGS

    if any(setting.name == "control_socket" for setting in KNOWN_SETTINGS):
        return ["--control-socket", str(path)]
    return []


def worker_class(threads: int) -> str:
    """gunicorn turns ``sync`` into ``gthread`` when threads > 1; say which runs."""
    return "gthread" if threads > 1 else "sync"


class Server:
    """One gunicorn master (its own process group) and its workers."""

    def __init__(
        self,
        name: str,
        app_spec: str,
        port: int,
        workers: int,
        env: dict[str, str],
        log: Path,
        threads: int = GUNICORN_THREADS,
    ) -> None:
        self.name = name
        self.port = port
        self.log = log
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            # Named here: gunicorn.conf.py (read from ROOT) would otherwise decide.
            "--worker-class",
            worker_class(threads),
            "--threads",
            str(threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            *control_socket_args(log.with_suffix(".ctl")),
            app_spec,
        ]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # so stop() can signal master and workers together
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll ``GET /healthz`` until it answers 200."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: gunicorn exited early\n{self.log_tail()}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name}: not ready after {timeout:.0f} s\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def times(self) -> GroupTimes | None:
        """Scheduler times of the master and its workers (None where /proc cannot tell)."""
        return None if self.proc is None else process_group_times(self.proc.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# --- Data ------------------------------------------------------------------------------


def app_env(tmp: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update(
        LOYALTY_DATABASE_URL=f"sqlite:///{tmp / 'loyalty.db'}",
        LOYALTY_SECRET_KEY=SECRET_KEY,
        LOYALTY_BASE_URL=f"http://127.0.0.1:{port}",
        LOYALTY_MAIL_URL=f"outbox:{tmp / 'outbox'}",
        LOYALTY_RATELIMIT_ENABLED="false",  # throughput is measured, not the rate limit
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp), str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def write_entry_point(tmp: Path, synchronous: str | None = None) -> str:
    """A WSGI module whose app keeps its instance folder in ``tmp``, not in the repository;
    with ``synchronous``, its SQLite connections use that instead of the app's setting."""
    module = "bench_wsgi" if synchronous is None else f"bench_wsgi_{synchronous.lower()}"
    tune = (
        ""
        if synchronous is None
        else f"import loyalty.db\n\nloyalty.db.SQLITE_SYNCHRONOUS = {synchronous!r}\n"
    )
    (tmp / f"{module}.py").write_text(
        f"{tune}from loyalty import create_app\n\n"
        f"app = create_app({{'INSTANCE_PATH': {str(tmp / 'instance')!r}}})\n"
    )
    return f"{module}:app"


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "loyalty", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migration failed:\n{done.stdout}\n{done.stderr}")


@dataclass(frozen=True)
class Link:
    token: str
    language: str


def create_invitations(tmp: Path, env: dict[str, str], count: int) -> list[Link]:
    """Invitations for ``count`` contacts in 40 accounts, alternating Danish and English."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("LOYALTY_")})
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from loyalty import create_app
    from loyalty.accounts.services import Invitee, upsert_contact
    from loyalty.db import db
    from loyalty.outreach.invitations import create_invitation, token_for

    app = create_app({"INSTANCE_PATH": str(tmp / "instance")})
    links: list[Link] = []
    with app.app_context():
        for n in range(count):
            language = ("da", "en")[n % 2]
            segment = ("b2b", "b2c")[n % 40 < 10]
            invitee = Invitee(
                email=f"contact{n}@bench.example.com",
                name=f"Kunde {n}" if language == "da" else f"Customer {n}",
                account=f"Bench Account {n % 40}",
                segment=segment,
                language=language,
            )
            invitation = create_invitation(upsert_contact(invitee), "post-sale")
            links.append(Link(token_for(invitation), language))
            if n % 500 == 499:
                db.session.commit()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return links


# --- Load ------------------------------------------------------------------------------


class Exhausted(Exception):
    """No more distinct invitations to answer."""


@dataclass
class Request:
    method: str
    path: str
    expect: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    name: str
    latencies: list[float]
    errors: dict[str, int]
    elapsed: float
    window: float  # wall time over which the CPU times below were taken
    client_cpu: float
    server: GroupTimes | None
    exhausted: bool = False
    rounds: list[float] = field(default_factory=list)  # requests/s of each round

    @classmethod
    def merge(cls, parts: list[Result]) -> Result:
        """One result from the rounds of one target (requests/s: total over total time)."""
        server: GroupTimes | None = parts[0].server
        for part in parts[1:]:
            server = None if server is None or part.server is None else server + part.server
        return cls(
            parts[0].name,
            [x for p in parts for x in p.latencies],
            {k: sum(p.errors.get(k, 0) for p in parts) for p in parts for k in p.errors},
            sum(p.elapsed for p in parts),
            sum(p.window for p in parts),
            sum(p.client_cpu for p in parts),
            server,
            any(p.exhausted for p in parts),
            [round(p.rps, 1) for p in parts],
        )

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def attempts(self) -> int:
        return self.requests + sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile in milliseconds."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
        return round(ordered[rank - 1] * 1000, 2)

    def per_request_ms(self, seconds: float) -> float:
        return round(1000 * seconds / max(1, self.attempts), 3)

    def cpu_json(self) -> dict[str, t.Any]:
        """Where the time went in the measured window.

        CPU per request of the server (master and workers) and of this load generator; the
        time workers were ready to run but waited for a core (``queued``: other load on the
        machine); and the share of the workers' time spent neither running nor queued
        (``blocked``: waiting for a request, a database lock or the disk)."""
        figures: dict[str, t.Any] = {
            "server_cpu_ms_per_request": None,
            "client_cpu_ms_per_request": self.per_request_ms(self.client_cpu),
            "worker_queued_ms_per_request": None,
            "workers_blocked_share": None,
        }
        server, window = self.server, self.window
        if server is not None and window > 0:
            running = (server.worker_cpu + server.worker_queued) / (server.workers * window)
            figures.update(
                server_cpu_ms_per_request=self.per_request_ms(server.cpu),
                worker_queued_ms_per_request=self.per_request_ms(server.worker_queued),
                workers_blocked_share=round(max(0.0, 1 - running), 2),
            )
        return figures

    def as_json(self) -> dict[str, t.Any]:
        return {
            "requests": self.requests,
            "errors": sum(self.errors.values()),
            "error_kinds": self.errors,
            "seconds": round(self.elapsed, 3),
            "rps": round(self.rps, 1),
            "p50_ms": self.percentile(50),
            "p99_ms": self.percentile(99),
            **self.cpu_json(),
            "rps_by_round": self.rounds,
            "ran_out_of_invitations": self.exhausted,
        }


#: Builds one client's next request; raises Exhausted when there is nothing left to send.
NextRequest = t.Callable[[], Request]
#: Given a fresh connection, sets a client up (e.g. gets a session) and returns its generator.
ClientSetup = t.Callable[[int, http.client.HTTPConnection], NextRequest]


def run_load(
    name: str,
    server: Server,
    setup: ClientSetup,
    *,
    concurrency: int,
    warmup: float,
    duration: float,
) -> Result:
    """Closed loop: each client sends its next request as soon as the last one is answered.

    The clients are threads of this process, which runs on the same cores as the servers:
    its CPU time is measured and reported so that its share can be seen.

    Requests started during the warm-up are not recorded; the rate is the number of requests
    started in the measured window over the time until the last of them finished.
    """
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: dict[str, int] = {}
    ends = [0.0] * concurrency
    exhausted = threading.Event()
    lock = threading.Lock()
    times: dict[str, float] = {}
    setup_errors: list[BaseException] = []

    def start_clock() -> None:
        # Runs once every client is set up, so set-up is neither warm-up nor measured.
        now = time.perf_counter()
        times["measure_from"] = now + warmup
        times["stop_at"] = now + warmup + duration

    ready = threading.Barrier(concurrency + 1, action=start_clock)

    def error(kind: str) -> None:
        with lock:
            errors[kind] = errors.get(kind, 0) + 1

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            next_request = setup(index, conn)
        except BaseException as exc:  # reported by the caller
            setup_errors.append(exc)
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        measure_from, stop_at = times["measure_from"], times["stop_at"]
        mine = latencies[index]
        while True:
            started = time.perf_counter()
            if started >= stop_at:
                break
            try:
                req = next_request()
            except Exhausted:
                exhausted.set()
                break
            status: int | None = None
            kind = ""
            try:
                conn.request(req.method, req.path, body=req.body, headers=req.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # reconnects on the next request
                kind = type(exc).__name__
            finished = time.perf_counter()
            if started < measure_from:
                continue
            ends[index] = finished
            if status == req.expect:
                mine.append(finished - started)
            else:
                error(kind if status is None else f"HTTP {status}")
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join()
        raise RuntimeError(f"{name}: client set-up failed: {setup_errors[0]!r}") from None
    time.sleep(max(0.0, times["measure_from"] - time.perf_counter()))
    window, client_cpu, server_times = time.perf_counter(), time.process_time(), server.times()
    for thread in threads:
        thread.join()
    window = time.perf_counter() - window
    client_cpu = time.process_time() - client_cpu
    server_after = server.times()
    server_used = (
        None if server_times is None or server_after is None else server_after - server_times
    )
    measure_from = times["measure_from"]
    elapsed = max(ends) - measure_from if max(ends) > measure_from else 0.0
    flat = [x for per_client in latencies for x in per_client]
    return Result(name, flat, errors, elapsed, window, client_cpu, server_used, exhausted.is_set())


# --- Targets ---------------------------------------------------------------------------


def answer_body(rng: random.Random, language: str, csrf_token: str) -> bytes:
    """A complete answer: three scores and two comments whose tone matches the scores."""
    tone = rng.choices(list(TONES), weights=[share for share, *_ in TONES.values()])[0]
    _, nps, csat, ces = TONES[tone]
    reason, improve = rng.choice(COMMENTS[tone][language])
    return urlencode(
        {
            "csrf_token": csrf_token,
            "nps": rng.randint(*nps),
            "csat": rng.randint(*csat),
            "ces": rng.randint(*ces),
            "reason": reason,
            "improve": improve,
        }
    ).encode()


def reset_postgresql(url: str) -> None:
    """An empty schema in the bench's PostgreSQL database (never point it at real data)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


def stored_counts(database: Path, url: str | None = None) -> dict[str, int]:
    """Rows the submits left behind (answered invitations, and flags and cases if the schema
    has them), so a run shows how much follow-up work its answers caused."""
    counts: dict[str, int] = {}
    if url is not None:
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        with engine.connect() as pg:
            for table in ("responses", "answers", "flags", "cases", "follow_ups"):
                counts[table] = pg.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        engine.dispose()
        return counts
    conn = sqlite3.connect(database, timeout=15)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        for table in ("responses", "answers", "flags", "cases", "follow_ups"):
            if table in tables:
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()
    return counts


FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def bare_target(index: int, conn: http.client.HTTPConnection) -> NextRequest:
    request = Request("GET", "/bare", 200)
    return lambda: request


def page_target(links: list[Link], concurrency: int) -> ClientSetup:
    """Each client walks its own stripe of the (not yet answered) invitations."""

    def setup(index: int, conn: http.client.HTTPConnection) -> NextRequest:
        position = index

        def next_request() -> Request:
            nonlocal position
            link = links[position % len(links)]
            position += concurrency
            return Request("GET", f"/s/{link.token}", 200)

        return next_request

    return setup


class Dealer:
    """Hands out each invitation once, to whichever client asks next."""

    def __init__(self, links: list[Link]) -> None:
        self._links = iter(links)
        self._lock = threading.Lock()

    def next(self) -> Link:
        with self._lock:
            link = next(self._links, None)
        if link is None:
            raise Exhausted
        return link


def insert_target(links: list[Link], concurrency: int) -> ClientSetup:
    """The survey's form bodies; the baseline table has no constraint, so links may repeat."""

    def setup(index: int, conn: http.client.HTTPConnection) -> NextRequest:
        rng = random.Random(index)
        position = index

        def next_request() -> Request:
            nonlocal position
            link = links[position % len(links)]
            position += concurrency
            body = answer_body(rng, link.language, "x" * 91)  # a token's length, unchecked
            return Request("POST", f"/insert/{link.token}", 303, body, FORM_HEADERS)

        return next_request

    return setup


def link_form_token(link_token: str) -> str:
    """The survey form's token for one link (``loyalty.survey.forms.form_token``): an HMAC of
    the link under the app's secret key, which the bench knows. A browser reads it from the
    page it opened; computing it here saves a page load per submit, which ``page`` measures."""
    message = b"loyalty.survey-form\x00" + link_token.encode()
    return hmac.new(SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def submit_target(links: list[Link], dealer: Dealer) -> ClientSetup:
    """Each client answers one new invitation (from ``dealer``, which targets may share) per
    POST, with that link's form token; the survey sets no cookie, so none is sent."""

    def setup(index: int, conn: http.client.HTTPConnection) -> NextRequest:
        rng = random.Random(1000 + index)

        def next_request() -> Request:
            link = dealer.next()
            body = answer_body(rng, link.language, link_form_token(link.token))
            return Request("POST", f"/s/{link.token}", 303, body, FORM_HEADERS)

        return next_request

    return setup


# --- Main ------------------------------------------------------------------------------


def source_version() -> str | None:
    """The commit measured, with "+changes" when the work tree differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{commit}+changes" if commit and changed else commit or None


def _ms(value: float | None) -> str:
    return "    n/a" if value is None else f"{value:>7.2f}"


def ratio(a: Result, b: Result) -> float | None:
    return round(a.rps / b.rps, 3) if b.rps > 0 else None


def cost_ratio(a: Result, b: Result) -> float | None:
    """b's CPU per request (server + client) over a's: the throughput ratio to expect if
    neither waited and nothing else ran on the machine."""
    if a.server is None or b.server is None or not a.attempts or not b.attempts:
        return None
    cost_a = (a.server.cpu + a.client_cpu) / a.attempts
    cost_b = (b.server.cpu + b.client_cpu) / b.attempts
    return round(cost_b / cost_a, 3) if cost_a > 0 else None


def result_line(result: Result) -> str:
    row = result.as_json()
    line = (
        f"{result.name:<13} {row['rps']:>9.1f} {_ms(row['p50_ms'])}  {_ms(row['p99_ms'])}  "
        f"{row['requests']:>6} {row['errors']:>6}  "
        f"{_ms(row['server_cpu_ms_per_request'])} / {_ms(row['client_cpu_ms_per_request'])}"
        f"  {_ms(row['worker_queued_ms_per_request'])}  "
        + (
            "    n/a"
            if row["workers_blocked_share"] is None
            else f"{row['workers_blocked_share']:>7.0%}"
        )
    )
    return line + (f"  errors: {row['error_kinds']}" if row["errors"] else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=8.0, help="measured seconds per target, all rounds"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="run the four targets in turn this many times, so a change in other load on the"
        " machine hits all of them alike",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="unmeasured seconds before each target's first"
        " round (a quarter of it before later rounds)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--invitations", type=int, default=8000, help="invitations to create")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server")
    parser.add_argument(
        "--threads",
        type=int,
        default=GUNICORN_THREADS,
        help="threads per worker (gthread, as gunicorn.conf.py deploys); 1: sync workers",
    )
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL database (SQLAlchemy URL) for the app and the raw insert, instead"
        " of SQLite files; its schema is DROPPED first; no synchronous=NORMAL server then",
    )
    parser.add_argument(
        "--follow-ups",
        choices=("app", "worker", "none"),
        default="app",
        help="who does the answers' follow-ups (flag, case, webhooks) during the load: each"
        " app process's thread (the default setting), one `flask work` process"
        " (FOLLOW_UPS_IN_APP off), or nobody (the submit path alone; they wait in the outbox)",
    )
    args = parser.parse_args(argv)
    if min(args.concurrency, args.workers, args.rounds) < 1:
        parser.error("--concurrency, --workers and --rounds must be at least 1")
    if args.invitations < 2 * args.concurrency:
        parser.error("--invitations must be at least twice --concurrency")

    # SIGTERM (e.g. from a CI timeout) unwinds through the finally below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="bench-survey-"))
    servers: list[Server] = []
    try:
        app_port, normal_port, base_port = free_port(), free_port(), free_port()
        env = app_env(tmp, app_port)
        pg_url = args.database_url
        if pg_url:
            env["LOYALTY_DATABASE_URL"] = pg_url
            reset_postgresql(pg_url)
        if args.follow_ups != "app":
            env["LOYALTY_FOLLOW_UPS_IN_APP"] = "false"
        print(f"temporary folder {tmp}", flush=True)
        migrate(env)
        started = time.perf_counter()
        links = create_invitations(tmp, env, args.invitations)
        print(
            f"created {len(links)} invitations in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        base_env = {**env, "BENCH_BASELINE_DB": str(tmp / "baseline.db")}
        if pg_url:
            base_env["BENCH_BASELINE_URL"] = pg_url
        base_env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
        sys.path.insert(0, str(HERE))
        import baseline_app

        if pg_url:
            baseline_app.init_pg(pg_url)
        else:
            baseline_app.init_db(base_env["BENCH_BASELINE_DB"])

        threads = args.threads
        app = Server(
            "app", write_entry_point(tmp), app_port, args.workers, env, tmp / "app.log", threads
        )
        app_normal = Server(
            "app-normal",
            write_entry_point(tmp, synchronous="NORMAL"),
            normal_port,
            args.workers,
            env,
            tmp / "app-normal.log",
            threads,
        )
        base = Server(
            "baseline",
            "baseline_app:app",
            base_port,
            args.workers,
            base_env,
            tmp / "base.log",
            threads,
        )
        servers += [app, base] if pg_url else [app, app_normal, base]
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        worker = None
        if args.follow_ups == "worker":
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "loyalty", "work", "--interval", "1"],
                cwd=ROOT,
                env={**env, "LOYALTY_INSTANCE_PATH": str(tmp / "instance")},
                stdout=subprocess.DEVNULL,
                stderr=(tmp / "worker.log").open("wb"),
                start_new_session=True,
            )
        print(
            f"gunicorn: {args.workers} {worker_class(threads)} workers each"
            f" ({threads} threads); app on :{app_port} "
            + ("(PostgreSQL), " if pg_url else f"(synchronous=FULL) and :{normal_port} (NORMAL), ")
            + f"baselines on :{base_port}; {args.concurrency} client threads, "
            f"{args.rounds} round(s) of {args.warmup:g} s warm-up + "
            f"{args.duration / args.rounds:g} s per target "
            f"(client shares the {os.cpu_count()} cores with the servers)",
            flush=True,
        )

        # Pages come before submits so that every page shows an unanswered survey.
        dealer = Dealer(links)
        plan: list[tuple[str, Server, ClientSetup]] = [
            ("bare", base, bare_target),
            ("page", app, page_target(links, args.concurrency)),
            ("insert", base, insert_target(links, args.concurrency)),
            ("submit", app, submit_target(links, dealer)),
            ("submit_normal", app_normal, submit_target(links, dealer)),
        ]
        if pg_url:
            plan.pop()  # synchronous is SQLite's
        header = (
            "target            req/s   p50 ms   p99 ms      ok errors  CPU ms/req: server / client"
            "  queued ms/req  workers blocked"
        )
        parts: dict[str, list[Result]] = {name: [] for name, _, _ in plan}
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}\n{header}", flush=True)
            for name, server, setup in plan:
                result = run_load(
                    name,
                    server,
                    setup,
                    concurrency=args.concurrency,
                    warmup=args.warmup if round_ == 0 else args.warmup / 4,
                    duration=args.duration / args.rounds,
                )
                parts[name].append(result)
                print(result_line(result), flush=True)
        results = {name: Result.merge(rounds) for name, rounds in parts.items()}
        print(f"all rounds\n{header}")
        for result in results.values():
            print(result_line(result))
            if result.exhausted:
                print(f"  {result.name}: ran out of invitations; raise --invitations")

        submit_ratio = ratio(results["submit"], results["insert"])
        page_ratio = ratio(results["page"], results["bare"])
        for label, value in (("submit/raw insert", submit_ratio), ("page/bare", page_ratio)):
            verdict = "n/a" if value is None else "ok" if value >= TARGET_RATIO else "MISSED"
            print(f"ratio {label:<17} {value}  (target >= {TARGET_RATIO}: {verdict})")
        cpu_ratios = {
            "submit_over_raw_insert": cost_ratio(results["submit"], results["insert"]),
            "page_over_bare": cost_ratio(results["page"], results["bare"]),
        }
        print(
            "by CPU cost per request (server + client): "
            f"submit/raw insert {cpu_ratios['submit_over_raw_insert']}, "
            f"page/bare {cpu_ratios['page_over_bare']}"
        )
        full, normal = results["submit"], results.get("submit_normal", results["submit"])
        durability = (
            None
            if pg_url
            else {
                "synchronous_full_rps": round(full.rps, 1),
                "synchronous_normal_rps": round(normal.rps, 1),
                "full_over_normal": ratio(full, normal),
                "synchronous_full_p50_ms": full.percentile(50),
                "synchronous_normal_p50_ms": normal.percentile(50),
            }
        )
        if durability is not None:
            print(
                f"synchronous FULL vs NORMAL: submit {durability['synchronous_full_rps']} vs "
                f"{durability['synchronous_normal_rps']} req/s, ratio "
                f"{durability['full_over_normal']} (what syncing every commit costs)"
            )
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        stored = stored_counts(tmp / "loyalty.db", pg_url)
        print("rows stored by the submits: " + ", ".join(f"{k} {v}" for k, v in stored.items()))
        for server in servers:
            if tail := server.log_tail(5):
                print(f"{server.name} log (last lines):\n{tail}")
        summary = {
            "settings": {
                "workers": args.workers,
                "worker_class": worker_class(threads),
                "threads": threads,
                "concurrency": args.concurrency,
                "duration_s": args.duration,
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "invitations": len(links),
                "database": "postgresql"
                if pg_url
                else "sqlite (WAL, synchronous FULL, busy_timeout 15000)",
                "follow_ups": args.follow_ups,
                "cpu_count": os.cpu_count(),
                "source": source_version(),
            },
            "targets": {name: result.as_json() for name, result in results.items()},
            "ratios": {"submit_over_raw_insert": submit_ratio, "page_over_bare": page_ratio},
            "cpu_cost_ratios": cpu_ratios,
            "durability": durability,
            "stored": stored,
            "targets_met": {
                "submit_over_raw_insert": submit_ratio is not None and submit_ratio >= TARGET_RATIO,
                "page_over_bare": page_ratio is not None and page_ratio >= TARGET_RATIO,
            },
        }
        print(json.dumps(summary), flush=True)
        errors = sum(sum(r.errors.values()) for r in results.values())
        return 1 if errors else 0
    except BaseException:
        for server in servers:
            print(f"--- {server.name} log ---\n{server.log_tail()}", file=sys.stderr)
        raise
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
