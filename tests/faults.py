"""The fault load: the app as deployed, customers and an API client under ``kill -9``.

Used by ``tests/benchmarks/bench_faults.py`` (long runs, counts printed) and by
``tests/test_faults.py`` (a short run in the suite, and two servers and two dispatchers on
one PostgreSQL). What runs, each in its own process group so ``kill -9`` takes it whole:

* gunicorn with the repository's ``gunicorn.conf.py``, as the README deploys it (one or
  more servers; the clients fail over between them as a load balancer would);
* ``flask dispatch --loop`` (one or more), sending to a real SMTP server on loopback here
  (aiosmtpd), which counts the messages of every survey link;
* customers (threads, ``http.client``): each takes a link no other customer holds, opens
  the page, submits a complete answer and, now and then, comes back later to change it; a
  submit cut off by a dead server is sent again, as a browser's retry would, until it is
  answered; an API client posts new events (each schedules a survey that is due at once).

Mid-load the servers and dispatchers are killed with SIGKILL (master and workers, the
whole group) and started again; optionally the PostgreSQL server is restarted too. A 5xx
counts against the app only outside those windows (from the kill until the server answers
again, plus :data:`GRACE` seconds). :func:`check` then reads the database for the counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import itertools
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from fault_checks import MailSink, check

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "fault-load-fixed-secret-key-not-for-production"
#: seconds after a fault ends during which a 5xx is still the fault's
GRACE = 3.0
#: what ``flask dispatch --loop`` prints after a pass that sent something
SENT = re.compile(r"\bsent (\d+),")
#: seconds of service at least between two faults (a restart may take several seconds)
UP = 3.0
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
REASONS = (
    "Fast delivery and friendly staff",
    "Levering var hurtig, tak",
    "Terrible service, the order was late and nobody answered",
    "Dårlig kvalitet, jeg vil opsige aftalen",
    "Fine",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(config: t.Mapping[str, str]) -> dict[str, str]:
    """This process's environment without what would point the app elsewhere, plus ours."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LOYALTY_", "FLASK_"))
        and name not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    }
    return env | {f"LOYALTY_{name}": str(value) for name, value in config.items()}


# --- Processes -----------------------------------------------------------------------------


class Process:
    """A command in its own session, so SIGKILL reaches the master and all its workers."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill9(self) -> None:
        """``kill -9`` of the whole group: nothing gets to finish or clean up."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """Asked politely (SIGTERM), as systemd does; killed if it will not go."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill9()


class Server(Process):
    """gunicorn with the repository's settings, on a port of its own."""

    def __init__(self, name: str, env: dict[str, str], log: Path, workers: int) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
        command += ["--workers", str(workers), "--bind", f"127.0.0.1:{self.port}"]
        command += ["--error-logfile", "-", "loyalty:create_app()"]
        super().__init__(name, command, env, log)

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer in time")


def dispatcher(name: str, env: dict[str, str], log: Path) -> Process:
    command = [sys.executable, "-m", "flask", "--app", "loyalty", "dispatch", "--loop"]
    return Process(name, command + ["--interval", "0.5"], env, log)


class Windows:
    """When a fault was on: a 5xx then is the fault's, not the app's."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: list[list[float | None]] = []

    def begin(self) -> int:
        with self.lock:
            self.spans.append([time.monotonic(), None])
            return len(self.spans) - 1

    def end(self, index: int) -> None:
        with self.lock:
            self.spans[index][1] = time.monotonic() + GRACE

    def total(self) -> float:
        """Seconds inside fault windows (each without its grace)."""
        with self.lock:
            return sum((end or time.monotonic()) - GRACE - start for start, end in self.spans)

    def during(self, moment: float) -> bool:
        with self.lock:
            return any(
                start is not None and start <= moment and (end is None or moment <= end)
                for start, end in self.spans
            )


# --- Customers and the API client ----------------------------------------------------------

Reply = tuple[int, dict[str, str], str]


@dataclass
class Record:
    """What the clients were told, to check the database against."""

    #: a link's last answer that got its 303
    acked: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    #: answers sent after the last 303 that never got a reply (the run ended first)
    unanswered: dict[str, list[dict[str, t.Any]]] = field(default_factory=dict)
    events: set[str] = field(default_factory=set)
    served: int = 0
    cut_off: int = 0  # requests with no reply (refused, reset): the server was down
    server_errors_in_faults: int = 0
    server_errors: list[str] = field(default_factory=list)  # outside any fault
    unexpected: list[str] = field(default_factory=list)  # a 4xx where none belongs
    submits: int = 0
    changes: int = 0


class Clients:
    """``count`` threads: three steps in four a customer's answer, one an API event."""

    def __init__(
        self, ports: list[int], key: str, links: queue.Queue[str], windows: Windows, seed: int
    ) -> None:
        self.ports, self.key, self.links, self.windows = ports, key, links, windows
        self.seed = seed
        self.record = Record()
        self.back: queue.Queue[str] = queue.Queue()  # links whose customer will come back
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.numbers = itertools.count()
        self.run_id = f"{seed}-{int(time.time())}"
        self.threads: list[threading.Thread] = []

    def start(self, count: int) -> None:
        for i in range(count):
            thread = threading.Thread(target=self._client, args=(i,), name=f"client-{i}")
            thread.start()
            self.threads.append(thread)

    def stop(self) -> Record:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=180)
        return self.record

    # one request, and one until it is answered

    def _request(self, port: int, method: str, path: str, body: bytes | None,
                 headers: dict[str, str]) -> Reply:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers | {"Connection": "close"})
            reply = conn.getresponse()
            text = reply.read().decode("utf-8", "replace")
            return reply.status, dict(reply.headers), text
        finally:
            conn.close()

    def _answered(self, i: int, method: str, path: str, body: bytes | None = None,
                  headers: dict[str, str] | None = None) -> Reply | None:  # fmt: skip
        """Sent until a server answers other than 5xx (the next server after a failure, as
        a load balancer does); None if the run ends first (60 s at most after the end)."""
        headers = headers or {}
        give_up = None
        for attempt in itertools.count():
            port = self.ports[(i + attempt) % len(self.ports)]
            try:
                status, reply_headers, text = self._request(port, method, path, body, headers)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.record.cut_off += 1
            else:
                with self.lock:
                    self.record.served += 1
                    if status >= 500 and not self.windows.during(time.monotonic()):
                        self.record.server_errors.append(f"{status} {method} {path[:12]}")
                    elif status >= 500:
                        self.record.server_errors_in_faults += 1
                if status < 500 and status != 429:
                    return status, reply_headers, text
            if self.stopping.is_set():
                give_up = give_up or time.monotonic() + 60
                if time.monotonic() > give_up:
                    return None
            time.sleep(min(1.0, 0.1 * (attempt + 1)))
        return None  # pragma: no cover - the loop only ends by returning

    # the steps

    def _client(self, i: int) -> None:
        rng = random.Random(self.seed * 1000 + i)
        while not self.stopping.is_set():
            if rng.random() < 0.25:
                self._event(i)
                continue
            try:  # half the time a customer coming back, if one is waiting
                token = self.back.get_nowait() if rng.random() < 0.5 else None
            except queue.Empty:
                token = None
            try:
                token = token or self.links.get(timeout=0.5)
            except queue.Empty:
                continue
            if self._answer(i, token, rng):  # comes back later to change the answer
                self.back.put(token)

    def _answer(self, i: int, token: str, rng: random.Random) -> bool:
        reply = self._answered(i, "GET", f"/s/{token}")
        if reply is None:
            return False
        status, _, page = reply
        match = CSRF.search(page)
        if status != 200 or match is None:
            with self.lock:
                self.record.unexpected.append(f"GET survey {status}")
            return False
        values = {
            "nps": rng.randint(0, 10),
            "csat": rng.randint(1, 5),
            "ces": rng.randint(1, 7),
            "reason": f"{rng.choice(REASONS)} #{next(self.numbers)}",
            "improve": rng.choice(["", "Ring mig op", "Faster answers please"]),
        }
        body = urlencode({"csrf_token": match.group(1), **values}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        with self.lock:
            self.record.unanswered.setdefault(token, []).append(values)
            self.record.submits += 1
            self.record.changes += token in self.record.acked
        reply = self._answered(i, "POST", f"/s/{token}", body, headers)
        with self.lock:
            if reply is not None and reply[0] == 303:
                self.record.acked[token] = values
                self.record.unanswered.pop(token, None)
            elif reply is not None:
                self.record.unexpected.append(f"POST survey {reply[0]}: {reply[2][:200]}")
        return reply is not None and reply[0] == 303 and rng.random() < 0.35

    def _event(self, i: int) -> None:
        n = next(self.numbers)
        external_id = f"fault-{self.run_id}-{n}"
        occurred = dt.datetime.now(dt.UTC) - dt.timedelta(days=2, minutes=1)
        body = {
            "external_id": external_id,
            "kind": "delivery",  # its survey is due two days after: now
            "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "account": {
                "external_ref": f"F-{self.run_id}-{n}",
                "name": f"Kunde {self.run_id} {n}",
                "segment": "b2c",
            },  # fmt: skip
            "contact": {
                "email": f"kunde.{n}@{self.run_id}.example.com",
                "name": f"Kunde {n}",
                "language": "da" if n % 3 else "en",
            },  # fmt: skip
        }
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}
        reply = self._answered(i, "POST", "/api/v1/events", json.dumps(body).encode(), headers)
        with self.lock:
            if reply is not None and reply[0] in (200, 201):
                self.record.events.add(external_id)
            elif reply is not None:
                self.record.unexpected.append(f"POST event {reply[0]}: {reply[2][:200]}")


# --- A run ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """What to run: ``kills`` times during ``seconds`` a server and a dispatcher get
    ``kill -9`` (in turn, with several); ``restart_database`` is called ``database_restarts``
    times in between (it restarts the PostgreSQL server and returns once it is back)."""

    database_url: str
    folder: Path
    seconds: float = 30.0
    kills: int = 3
    clients: int = 16
    servers: int = 1
    dispatchers: int = 1
    workers: int = 2
    invitations: int = 60
    restart_database: t.Callable[[], None] | None = None
    database_restarts: int = 0
    seed: int = 1
    say: t.Callable[[str], t.Any] = print


def make_app(database_url: str, folder: Path) -> t.Any:
    from loyalty import create_app

    return create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(folder),
            "MAIL_URL": f"outbox:{folder / 'outbox'}",
            "REPORT_SCHEDULE": [],
        }
    )


def seed(database_url: str, folder: Path, count: int) -> None:
    """Invitations due now, for the dispatcher to email as the load begins."""
    from loyalty.accounts.services import Invitee, upsert_contact
    from loyalty.db import db
    from loyalty.outreach.invitations import create_invitation

    app = make_app(database_url, folder)
    with app.app_context():
        for n in range(count):
            invitee = Invitee(f"seed{n}@fault.example.com", f"Seed {n}", f"Seed {n % 10} ApS",
                              "b2c", "da" if n % 2 else "en")  # fmt: skip
            create_invitation(upsert_contact(invitee), "post-sale")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def run(plan: Plan) -> dict[str, t.Any]:
    """The whole run; answers :func:`check`'s counts with what was done."""
    folder = plan.folder
    seed(plan.database_url, folder, plan.invitations)
    links: queue.Queue[str] = queue.Queue()
    windows = Windows()
    rng = random.Random(plan.seed)
    with MailSink(links) as sink:
        config = {"SECRET_KEY": SECRET_KEY, "DATABASE_URL": plan.database_url,
                  "INSTANCE_PATH": folder, "MAIL_URL": sink.url,
                  "BASE_URL": "http://127.0.0.1:5000"}  # fmt: skip
        env = environment(config) | {"PYTHONUNBUFFERED": "1"}  # a killed one loses no line
        made = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "loyalty", "api-key", "create", "--name",
             "faults"], cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        key = made.stdout.strip().splitlines()[0]
        servers = [Server(f"server{n}", env, folder / f"server{n}.log", plan.workers)
                   for n in range(plan.servers)]  # fmt: skip
        dispatchers = [dispatcher(f"dispatcher{n}", env, folder / f"dispatcher{n}.log")
                       for n in range(plan.dispatchers)]  # fmt: skip
        processes: list[Process] = [*servers, *dispatchers]
        try:
            for process in processes:
                process.start()
            clients = Clients([s.port for s in servers], key, links, windows, plan.seed)
            clients.start(plan.clients)
            began = time.monotonic()
            faults = [
                ("kill", (k + 1) * plan.seconds / (plan.kills + 1)) for k in range(plan.kills)
            ]
            faults += [("restart", (r + 0.5) * plan.seconds / (plan.database_restarts + 0.5))
                       for r in range(plan.database_restarts)]  # fmt: skip
            kills = restarts = 0
            up_since = began
            for kind, at in sorted(faults, key=lambda fault: fault[1]):
                # at least UP seconds of service between faults, however slow a restart was
                time.sleep(
                    max(0.0, began + at - time.monotonic(), up_since + UP - time.monotonic())
                )
                window = windows.begin()
                if kind == "kill":
                    server, disp = (
                        servers[kills % len(servers)],
                        dispatchers[kills % len(dispatchers)],
                    )
                    server.kill9()
                    disp.kill9()
                    kills += 1
                    plan.say(
                        f"{time.monotonic() - began:5.1f} s  kill -9 {server.name}, {disp.name}"
                    )
                    time.sleep(rng.uniform(0.2, 1.0))
                    disp.start()
                    server.start()
                    plan.say(f"{time.monotonic() - began:5.1f} s  {server.name} answers again")
                else:
                    assert plan.restart_database is not None
                    plan.say(f"{time.monotonic() - began:5.1f} s  restarting the database server")
                    plan.restart_database()
                    restarts += 1
                    plan.say(f"{time.monotonic() - began:5.1f} s  the database server is back")
                windows.end(window)
                up_since = time.monotonic()
            time.sleep(
                max(0.0, began + plan.seconds - time.monotonic(), up_since + UP - time.monotonic())
            )
            record = clients.stop()
            _drain(sink)
        finally:
            for process in processes:
                process.stop()
        counts = check(make_app(plan.database_url, folder), record, sink)
    served = record.served
    # sent in the passes each dispatcher finished (a killed pass prints nothing)
    sent_by = [sum(map(int, SENT.findall(d.log.read_text()))) for d in dispatchers]
    return {
        "database": plan.database_url.split(":", 1)[0].split("+", 1)[0],
        "seconds": plan.seconds, "clients": plan.clients, "servers": plan.servers,
        "dispatchers": plan.dispatchers, "kills": kills, "database_restarts": restarts,
        "fault_seconds": round(windows.total(), 1), **counts, "requests_served": served,
        "sent_by_dispatcher": sent_by,
    }  # fmt: skip


def _drain(sink: MailSink, quiet: float = 3.0, longest: float = 40.0) -> None:
    """Let the dispatchers send what is still due: until no email came for ``quiet`` s."""
    deadline, seen, since = time.monotonic() + longest, -1, time.monotonic()
    while time.monotonic() < deadline:
        if sink.messages != seen:
            seen, since = sink.messages, time.monotonic()
        elif time.monotonic() - since > quiet:
            return
        time.sleep(0.2)
