"""Server time of the triage queue with 50,000 cases, against a bare signed-in page.

Fills a fresh database (SQLite in a temporary folder, migrated with the app's migrations; or
the PostgreSQL database named by ``--database-url``, which is WIPED) with ``--cases`` cases
the way a year of feedback leaves them: about one in ten still unresolved (a third of those
overdue), the rest resolved; each with its account, contact, response, comment, flag and
three lines of history. Then, in this process, it requests each target through the app's
WSGI interface as a signed-in support lead, and times each request from the moment the app
is called to the moment its body is complete: the server's time, with no network and no
load generator competing for the CPU. The targets take turns, round after round, so a change
in other load on a shared machine hits all of them alike.

* ``bare``      GET /bench/bare: a signed-in page that renders a line (baseline: session,
                user, role check, template);
* ``queue``     GET /triage: the default queue's first page (what support leads live in);
* ``deep``      the queue's 20th page, through the keyset cursor of the page before;
* ``all``       GET /triage?status=all: every case, resolved ones too;
* ``filtered``  GET /triage?language=da&segment=b2b&severity=2;
* ``account``   GET /triage?status=all&account=<part of a name>;
* ``case``      GET /triage/<id>: a case page (sentiment highlights, history, the customer's
                earlier answers and the account's other cases and contacts).

Human-readable lines come first; the last line is one JSON object with p50/p99 (ms) per
target, the queue's p50/p99 and their ratios to the baseline's.

    .venv/bin/python tests/benchmarks/bench_triage.py [--cases 50000] [--requests 200]
        [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import statistics
import sys
import tempfile
import time
import typing as t
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from loyalty import create_app  # noqa: E402
from loyalty.db import db  # noqa: E402
from loyalty.models import (  # noqa: E402
    Account,
    Answer,
    Case,
    CaseEvent,
    Contact,
    Flag,
    Response,
    User,
)

COMMENTS = {
    "en": [
        "Terrible support, nobody answers the phone. We will cancel if this goes on.",
        "The delivery was late and the driver was rude.",
        "Billing is a mess, three wrong invoices in a row.",
        "Slow and unhelpful, I had to call five times.",
    ],
    "da": [
        "Elendig service, ingen svarer telefonen. Vi overvejer at opsige aftalen.",
        "Leveringen var forsinket og chaufføren var uhøflig.",
        "Fakturaerne er forkerte igen, det er for dårligt.",
        "Langsom og uhjælpsom kundeservice.",
    ],
}
RULES = ["detractor", "detractor,negative_comment", "low_csat,negative_comment", "churn_cue"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def make_app(tmp: Path, database_url: str | None):
    from flask_migrate import upgrade

    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    app = create_app(
        {
            "SECRET_KEY": "bench-triage-secret",
            "DATABASE_URL": url,
            "INSTANCE_PATH": tmp,
            "MAIL_URL": f"outbox:{tmp / 'outbox'}",
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        if database_url:
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
    return app


def fill(count: int, seed: int = 5) -> dict[str, t.Any]:
    """Insert ``count`` cases and everything they hang on, in bulk; returns some ids."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    staff = []
    for i in range(6):
        user = User(email=f"lead{i}@example.com", role="support")
        user.set_password("correct horse battery")
        staff.append(user)
    db.session.add_all(staff)
    db.session.commit()
    staff_ids = [u.id for u in staff]
    n_accounts = max(1, count // 5)
    accounts, contacts = [], []
    for a in range(1, n_accounts + 1):
        segment = "b2b" if a % 3 == 0 else "b2c"
        accounts.append(
            {
                "id": a,
                "name": f"{'Firma' if segment == 'b2b' else 'Kunde'} {a:06d} {rng.choice('ABC')}",
                "segment": segment,
                "owner_id": rng.choice(staff_ids),
                "annual_value": Decimal(rng.randrange(0, 2_000_000)),
                "created_at": now - dt.timedelta(days=400),
            }
        )
        for k in range(2 if segment == "b2b" else 1):
            contacts.append(
                {
                    "id": len(contacts) + 1,
                    "account_id": a,
                    "email": f"c{len(contacts) + 1}@example.com",
                    "name": f"Contact {len(contacts) + 1}",
                    "language": "da" if rng.random() < 0.7 else "en",
                    "is_decision_maker": k == 0 and segment == "b2b",
                    "created_at": now - dt.timedelta(days=400),
                }
            )
    by_account: dict[int, list[dict[str, t.Any]]] = {}
    for c in contacts:
        by_account.setdefault(c["account_id"], []).append(c)
    responses, answers, flags, cases, events = [], [], [], [], []
    for i in range(1, count + 1):
        account = accounts[rng.randrange(n_accounts)]
        contact = rng.choice(by_account[account["id"]])
        opened = now - dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        active = rng.random() < 0.1
        overdue = active and rng.random() < 0.33
        due = opened + dt.timedelta(hours=rng.choice([8, 24, 72]))
        if active:
            due = (
                now - dt.timedelta(hours=rng.randrange(1, 100))
                if overdue
                else now + dt.timedelta(hours=rng.randrange(1, 40))
            )
            opened = min(opened, due - dt.timedelta(hours=8))
        contacted = None if overdue else opened + dt.timedelta(hours=rng.uniform(0.5, 30))
        resolved = (
            None if active else (contacted or opened) + dt.timedelta(hours=rng.uniform(1, 90))
        )
        if contacted is not None and contacted > now:
            contacted = None
        severity = rng.choices([1, 2, 3, 4], weights=[50, 30, 15, 5])[0]
        language = contact["language"]
        responses.append(
            {
                "id": i,
                "source": "survey",
                "contact_id": contact["id"],
                "account_id": account["id"],
                "survey": "post-sale",
                "survey_version": 1,
                "language": language,
                "nps": rng.randrange(0, 7),
                "csat": rng.randrange(1, 6),
                "ces": rng.randrange(1, 8),
                "complete": True,
                "submitted_at": opened,
                "updated_at": opened,
            }
        )
        answers.append(
            {
                "response_id": i,
                "question": "reason",
                "text": rng.choice(COMMENTS[language]),
                "polarity": -0.5,
                "sentiment": "negative",
                "sentiment_language": language,
                "scorer_version": 1,
            }
        )
        status = "resolved"
        if active:
            status = (
                "open" if contacted is None else rng.choice(["in_progress", "waiting_on_customer"])
            )
        cases.append(
            {
                "id": i,
                "account_id": account["id"],
                "assignee_id": account["owner_id"] if rng.random() < 0.9 else None,
                "status": status,
                "outcome": None
                if active
                else rng.choice(["recovered", "not_recovered", "no_action_needed"]),
                "severity": severity,
                "opened_at": opened,
                "first_contact_due_at": due,
                "first_contact_at": contacted,
                "resolved_at": resolved,
                "updated_at": resolved or contacted or opened,
                "language": language,
            }
        )
        flags.append(
            {
                "response_id": i,
                "case_id": i,
                "rules": rng.choice(RULES),
                "severity": severity,
                "created_at": opened,
                "updated_at": opened,
            }
        )
        events.append({"case_id": i, "kind": "opened", "body": "Opened.", "created_at": opened})
        if contacted:
            events.append(
                {
                    "case_id": i,
                    "user_id": account["owner_id"],
                    "kind": "contact",
                    "body": "Called the customer.",
                    "detail": '{"channel": "phone"}',
                    "created_at": contacted,
                }
            )
        if resolved:
            events.append(
                {
                    "case_id": i,
                    "user_id": account["owner_id"],
                    "kind": "resolved",
                    "body": "Resolved.",
                    "created_at": resolved,
                }
            )
    for model, rows in [
        (Account, accounts),
        (Contact, contacts),
        (Response, responses),
        (Answer, answers),
        (Case, cases),
        (Flag, flags),
        (CaseEvent, events),
    ]:
        for start in range(0, len(rows), 5000):
            db.session.execute(sa.insert(model), rows[start : start + 5000])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            for table in (
                "accounts",
                "contacts",
                "responses",
                "answers",
                "cases",
                "flags",
                "case_events",
            ):
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
            conn.execute(sa.text("ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    active_cases = sum(c["status"] != "resolved" for c in cases)
    overdue_cases = sum(
        c["status"] != "resolved"
        and c["first_contact_at"] is None
        and c["first_contact_due_at"] <= now
        for c in cases
    )
    return {
        "staff_email": staff[0].email,
        "case_id": next(c["id"] for c in cases if c["status"] != "resolved"),
        "account_part": accounts[n_accounts // 2]["name"].split()[1][:4],
        "active": active_cases,
        "overdue": overdue_cases,
        "events": len(events),
    }


def timed_get(app, cookie_client, path: str) -> tuple[float, int, str]:
    """One request through the WSGI interface, timed from call to complete body."""
    started = time.perf_counter()
    reply = cookie_client.get(path)
    body = reply.get_data(as_text=True)
    elapsed = time.perf_counter() - started
    return elapsed * 1000, reply.status_code, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=200, help="per target")
    parser.add_argument("--warmup", type=int, default=10, help="requests per target first")
    parser.add_argument("--database-url", help="PostgreSQL URL; the database is WIPED")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-triage-") as folder:
        tmp = Path(folder)
        app = make_app(tmp, args.database_url)

        from loyalty.auth import role_required

        @app.get("/bench/bare")
        @role_required("admin", "support", "executive")
        def bare():
            from flask import render_template_string

            return render_template_string("<!doctype html><title>bare</title><p>Hello.</p>")

        with app.app_context():
            started = time.perf_counter()
            info = fill(args.cases)
            fill_seconds = time.perf_counter() - started
        dialect = "postgresql" if args.database_url else "sqlite"
        print(f"database: {dialect}; filled {args.cases} cases in {fill_seconds:.1f} s")
        print(
            f"  {info['active']} unresolved ({info['overdue']} overdue), "
            f"{info['events']} history lines"
        )

        client = app.test_client()
        login = client.post(
            "/login", data={"email": info["staff_email"], "password": "correct horse battery"}
        )
        assert login.status_code == 302, login.status_code

        # The 20th page of the default queue (or its last), through each page's cursor.
        path, depth = "/triage", 1
        for depth in range(2, 21):  # noqa: B007
            _, status, body = timed_get(app, client, path)
            match = re.search(r'href="(/triage\?[^"]+)" rel="next"', body)
            assert status == 200, status
            if not match:
                break
            path = match.group(1).replace("&amp;", "&")
        print(f"  the deep target is page {depth - 1 if not match else depth} of the queue")
        targets = {
            "bare": "/bench/bare",
            "queue": "/triage",
            "deep": path,
            "all": "/triage?status=all",
            "filtered": "/triage?language=da&segment=b2b&severity=2",
            "account": f"/triage?status=all&account={info['account_part']}",
            "case": f"/triage/{info['case_id']}",
        }
        times: dict[str, list[float]] = {name: [] for name in targets}
        for name, target in targets.items():
            for _ in range(args.warmup):
                _, status, body = timed_get(app, client, target)
                assert status == 200, (name, status, body[:300])
        rounds = 10
        per_round = max(1, args.requests // rounds)
        for _ in range(rounds):
            for name, target in targets.items():
                for _ in range(per_round):
                    ms, status, _ = timed_get(app, client, target)
                    assert status == 200, (name, status)
                    times[name].append(ms)
        rows = _, status, body = timed_get(app, client, "/triage")
        shown = len(re.findall(r'data-case="', rows[2]))

        print(f"\nserver time per request, ms ({rounds} rounds x {per_round} requests a target):")
        print(f"  {'target':<10} {'p50':>8} {'p99':>8} {'mean':>8}")
        result: dict[str, t.Any] = {}
        for name, values in times.items():
            p50, p99 = percentile(values, 50), percentile(values, 99)
            result[name] = {"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "n": len(values)}
            print(f"  {name:<10} {p50:8.2f} {p99:8.2f} {statistics.fmean(values):8.2f}")
        queue, bare_ = result["queue"], result["bare"]
        ratio50 = queue["p50_ms"] / bare_["p50_ms"]
        ratio99 = queue["p99_ms"] / bare_["p99_ms"]
        print(
            f"\nqueue page ({shown} cases shown of {info['active']} unresolved): "
            f"p50 {queue['p50_ms']:.1f} ms, p99 {queue['p99_ms']:.1f} ms; "
            f"bare signed-in page p50 {bare_['p50_ms']:.1f} ms, p99 {bare_['p99_ms']:.1f} ms; "
            f"ratio p50 {ratio50:.1f}x, p99 {ratio99:.1f}x"
        )
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        print(
            json.dumps(
                {
                    "benchmark": "triage",
                    "database": dialect,
                    "cases": args.cases,
                    "unresolved": info["active"],
                    "overdue": info["overdue"],
                    "queue_p50_ms": queue["p50_ms"],
                    "queue_p99_ms": queue["p99_ms"],
                    "baseline_p50_ms": bare_["p50_ms"],
                    "baseline_p99_ms": bare_["p99_ms"],
                    "ratio_p50": round(ratio50, 2),
                    "ratio_p99": round(ratio99, 2),
                    "targets": result,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
