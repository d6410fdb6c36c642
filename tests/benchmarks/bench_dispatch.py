"""Events accepted by the API, and invitations handed to SMTP by one dispatcher, against
baselines measured in the same run.

API (gunicorn, ``--workers 2`` sync, SQLite in WAL mode in a temporary folder):

* ``events``  POST /api/v1/events: bearer key checked, body checked against the OpenAPI
              schema, account and contact upserted, event stored, scheduling rules applied,
              one invitation stored; every event is new (a new external id) and due now;
* ``bare``    baseline: a Flask route under the same gunicorn settings that parses the
              same JSON body and answers 201 with a small JSON object;
* ``insert``  baseline: as ``bare`` plus one raw ``sqlite3`` INSERT and commit on a
              connection tuned like the app's (WAL, ``synchronous=NORMAL``, busy timeout).

Dispatcher (one process, ``send_due()``, against the invitations the API load made):

* ``dispatch`` invitations claimed, rendered (text + HTML, 11 score links), sent to an
               aiosmtpd server on loopback, recorded; one SMTP connection per pass (up
               to 100 messages each);
* ``smtp``     baseline: the same number of small pre-built messages sent with
               ``smtplib`` to the same server, one connection per message;
* ``smtp_one`` baseline: the same, all over one connection (the least any sender can do).

The load generator (Python threads, keep-alive ``http.client``), the servers and the SMTP
server share the machine's cores, so only ratios measured in the same run mean much.
Human-readable lines first; the last line is one JSON object.

    .venv/bin/python tests/benchmarks/bench_dispatch.py [--duration 8] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SECRET_KEY = "bench-dispatch-fixed-secret-key-not-for-production"


# --- The baseline app (gunicorn imports it as bench_dispatch:baseline) ---------------------


def _baseline_app():
    from flask import Flask, request

    app = Flask("baseline")
    local = threading.local()

    def connection() -> sqlite3.Connection:
        if getattr(local, "conn", None) is None:
            conn = sqlite3.connect(os.environ["BENCH_BASELINE_DB"], timeout=15)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=15000"):
                conn.execute(f"PRAGMA {pragma}")
            local.conn = conn
        return local.conn

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    @app.post("/bare")
    def bare():
        data = request.get_json()
        return {"external_id": data["external_id"], "created": True}, 201

    @app.post("/insert")
    def insert():
        data = request.get_json()
        conn = connection()
        with conn:
            conn.execute(
                "INSERT INTO events (external_id, body) VALUES (?, ?)",
                (data["external_id"], request.get_data(as_text=True)),
            )
        return {"external_id": data["external_id"], "created": True}, 201

    return app


baseline = _baseline_app() if os.environ.get("BENCH_BASELINE_DB") else None


# --- Servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    def __init__(self, spec: str, workers: int, env: dict[str, str], log: Path) -> None:
        self.port, self.log, self.env = free_port(), log, env
        self.command = [
            sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class",
            "sync", "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", spec,
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Gunicorn:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()}")
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not start in time")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Sink:
    """An aiosmtpd server on loopback that counts what it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.url = f"smtp://127.0.0.1:{self.controller.port}"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        self.count += 1
        return "250 OK"

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# --- Load ----------------------------------------------------------------------------------


def event_body(n: int, run_id: str) -> bytes:
    """A new delivery two days ago (so its survey is due now) for a new B2C customer."""
    occurred = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2 * 86400 - 60))
    return json.dumps(
        {
            "external_id": f"{run_id}-{n}",
            "kind": "delivery",
            "occurred_at": occurred,
            "account": {
                "external_ref": f"A-{run_id}-{n}",
                "name": f"Kunde {run_id} {n}",
                "segment": "b2c",
                "annual_value": 1200.5,
            },
            "contact": {
                "email": f"kunde.{n}@{run_id}.example.com",
                "name": f"Kunde {n}",
                "language": "da" if n % 3 else "en",
            },
            "amount": 499.95,
            "product": "Skrivebord",
        }
    ).encode()


def drive(port: int, path: str, key: str | None, *, concurrency: int, warmup: float,
          duration: float) -> dict:  # fmt: skip
    """Closed-loop load: each thread posts new events over one keep-alive connection."""
    run_id = uuid.uuid4().hex[:8]
    counter = iter(range(10**9))
    lock = threading.Lock()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while (now := time.perf_counter()) < stop_at:
            with lock:
                n = next(counter)
            try:
                conn.request("POST", path, body=event_body(n, run_id), headers=headers)
                reply = conn.getresponse()
                reply.read()
                ok = reply.status == 201
                kind = None if ok else f"HTTP {reply.status}"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                kind = type(exc).__name__
            done = time.perf_counter()
            if now >= measure_from and done <= stop_at:
                with lock:
                    if kind is None:
                        latencies.append(done - now)
                    else:
                        errors[kind] = errors.get(kind, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)

    def pct(p: float) -> float | None:
        return (
            round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)
            if ordered
            else None
        )

    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / duration, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": errors,
    }


# --- Dispatcher ----------------------------------------------------------------------------

DISPATCH = """
import json, sys, time
from loyalty import create_app
from loyalty.outreach.dispatch import send_due
app = create_app()
with app.app_context():
    started = time.perf_counter()
    result = send_due()
    print(json.dumps({"seconds": time.perf_counter() - started, "sent": result.sent,
                      "failed": result.failed, "retrying": result.retrying}))
"""

SMTP_BASELINE = """
import json, smtplib, sys, time
from email.message import EmailMessage
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
one_connection = sys.argv[4] == "one"
started = time.perf_counter()
smtp = smtplib.SMTP(host, port)
for n in range(count):
    message = EmailMessage()
    message["From"], message["To"] = "bench@example.com", f"kunde.{n}@example.com"
    message["Subject"] = "Hvordan var dit køb?"
    message.set_content("Hej, vil du svare? http://127.0.0.1/s/" + "x" * 43)
    if not one_connection and n:
        smtp.quit()
        smtp = smtplib.SMTP(host, port)
    smtp.send_message(message)
smtp.quit()
print(json.dumps({"seconds": time.perf_counter() - started, "sent": count}))
"""


def python(code: str, env: dict[str, str], *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- Main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    try:
        env = {
            **os.environ,
            "LOYALTY_INSTANCE_PATH": str(tmp),
            "LOYALTY_DATABASE_URL": f"sqlite:///{tmp / 'loyalty.db'}",
            "LOYALTY_SECRET_KEY": SECRET_KEY,
            "LOYALTY_BASE_URL": "http://127.0.0.1:5000",
            "BENCH_BASELINE_DB": str(tmp / "baseline.db"),
            "LOYALTY_RATELIMIT_ENABLED": "false",  # throughput is measured, not the rate limit
            "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        }
        flask = [sys.executable, "-m", "flask", "--app", "loyalty"]
        subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
        made = subprocess.run([*flask, "api-key", "create", "--name", "bench"], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True)  # fmt: skip
        key = made.stdout.strip().splitlines()[0]
        with sqlite3.connect(env["BENCH_BASELINE_DB"]) as conn:
            conn.execute(
                "CREATE TABLE events (id INTEGER PRIMARY KEY, external_id TEXT, body TEXT)"
            )
        print(f"temporary folder {tmp}; {os.cpu_count()} cores shared by client and servers")
        print(f"gunicorn --workers {args.workers} (sync); {args.concurrency} client threads; "
              f"{args.warmup:g} s warm-up + {args.duration:g} s per target")  # fmt: skip

        load = dict(concurrency=args.concurrency, warmup=args.warmup, duration=args.duration)
        api: dict[str, dict] = {}
        with Gunicorn("bench_dispatch:baseline", args.workers, env, tmp / "base.log") as base:
            api["bare"] = drive(base.port, "/bare", None, **load)
            api["insert"] = drive(base.port, "/insert", None, **load)
        with Gunicorn("loyalty:create_app()", args.workers, env, tmp / "app.log") as app:
            api["events"] = drive(app.port, "/api/v1/events", key, **load)
        print("target     events/s   p50 ms   p99 ms  errors")
        for name, row in api.items():
            print(f"{name:<9} {row['per_second']:>9} {row['p50_ms']!s:>8} {row['p99_ms']!s:>8}"
                  f"  {sum(row['errors'].values())} {row['errors'] or ''}")  # fmt: skip

        with Sink() as sink:
            env["LOYALTY_MAIL_URL"] = sink.url
            dispatched = python(DISPATCH, env)
            host, port = sink.url.removeprefix("smtp://").split(":")
            count = str(dispatched["sent"])
            smtp = python(SMTP_BASELINE, env, host, port, count, "each")
            smtp_one = python(SMTP_BASELINE, env, host, port, count, "one")
            received = sink.count
        rows = {"dispatch": dispatched, "smtp": smtp, "smtp_one": smtp_one}
        rates = {name: round(row["sent"] / row["seconds"], 1) for name, row in rows.items()}
        print("target     messages/s  messages  seconds")
        for name, row in rows.items():
            print(f"{name:<9} {rates[name]:>11} {row['sent']:>9} {row['seconds']:>8.2f}")
        ratios = {
            "events_over_bare": round(api["events"]["per_second"] / api["bare"]["per_second"], 3),
            "events_over_insert": round(
                api["events"]["per_second"] / api["insert"]["per_second"], 3
            ),
            "dispatch_over_smtp": round(rates["dispatch"] / rates["smtp"], 3),
            "dispatch_over_smtp_one": round(rates["dispatch"] / rates["smtp_one"], 3),
        }
        for name, value in ratios.items():
            print(f"ratio {name:<20} {value}")
        if received != dispatched["sent"] + smtp["sent"] + smtp_one["sent"]:
            print(f"WARNING: the SMTP server got {received} messages")
        summary = {
            "settings": {
                "workers": args.workers,
                "concurrency": args.concurrency,
                "duration_s": args.duration,
                "database": "sqlite (WAL)",
                "cpu_count": os.cpu_count(),
            },
            "api_events_per_second": api["events"]["per_second"],
            "dispatch_invitations_per_second": rates["dispatch"],
            "api": api,
            "dispatch": {**dispatched, "per_second": rates["dispatch"]},
            "smtp_baseline": {**smtp, "per_second": rates["smtp"]},
            "smtp_one_connection_baseline": {**smtp_one, "per_second": rates["smtp_one"]},
            "ratios": ratios,
        }
        print(json.dumps(summary))
        errors = sum(sum(row["errors"].values()) for row in api.values())
        return 1 if errors or dispatched["failed"] else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
