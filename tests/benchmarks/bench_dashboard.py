"""The dashboard at scale: /dashboard and the metrics API read the rollups, against the raw
aggregate over the responses (monthly NPS per segment) as the baseline, in one run.

Fills a fresh database (SQLite in a temporary folder, or the PostgreSQL database named by
``--database-url``, which is WIPED) by bulk insert: ``--accounts`` accounts with owners and
two contacts each, ``--responses`` answered invitations (and a fifth more unanswered) over
``--months`` months, a third with a scored comment; ``--weeks`` weeks of health snapshots of
every account and ``--cases`` cases of detractors (the dashboard's health and
responsiveness charts read them). Then measures:

* ``baseline``: the raw query, monthly NPS per segment over every response;
* ``rebuild``: ``rollups.rebuild``, every day counted from scratch, and the cases' SLA clock
  figures counted (``clock.refresh``);
* ``dashboard`` default and filtered, and ``api`` (``/api/v1/metrics/nps?grain=month``):
  server time p50/p99 through the WSGI interface, signed in / with a key;
* ``report``: ``/reports/executive-monthly`` and the self-contained file it renders to;
* ``refresh``: ``--new-answers`` answers saved as the survey saves them, then the stale
  days counted again (what the next page view does first).

The requests are measured as a gunicorn worker serves them, with the objects that live for
the process's life frozen out of the garbage collector's sight (``gc.freeze``, as
``gunicorn.conf.py`` does). Human-readable lines first; the last line is one JSON object.
Only ratios measured in the same run mean much on a shared machine (2 cores).

    .venv/bin/python tests/benchmarks/bench_dashboard.py [--accounts 10000]
        [--responses 1000000] [--months 24] [--requests 30] [--new-answers 1000]
        [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from loyalty import create_app  # noqa: E402
from loyalty.dashboard import rollups  # noqa: E402
from loyalty.db import db  # noqa: E402
from loyalty.models import Account, Answer, Contact, Invitation, Response, User  # noqa: E402
from loyalty.triage import clock  # noqa: E402

BATCH = 20_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def make_app(tmp: Path, database_url: str | None):
    from flask_migrate import upgrade

    app = create_app(
        {
            "SECRET_KEY": "bench-dashboard-secret",
            "DATABASE_URL": database_url or f"sqlite:///{tmp / 'bench.db'}",
            "INSTANCE_PATH": tmp,
            "MAIL_URL": f"outbox:{tmp / 'outbox'}",
            "WTF_CSRF_ENABLED": False,
            "FOLLOW_UPS_IN_APP": False,  # done in new_answers, as `flask work` would
            "RATELIMIT_ENABLED": False,  # throughput is measured, not the API's rate limit
        }
    )
    with app.app_context():
        if database_url:
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
    return app


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def _insert(model, rows: list[dict]) -> None:
    for start in range(0, len(rows), BATCH):
        db.session.execute(sa.insert(model), rows[start : start + BATCH])
    db.session.commit()


def fill(accounts: int, responses: int, months: int, seed: int = 5) -> None:
    """Bulk rows, as plain dicts: no ORM objects, no signals (the rebuild counts them)."""
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(days=30.4 * months)
    span = (now - start).total_seconds()
    owners = [
        {"id": i, "email": f"owner{i}@example.com", "password_hash": "x", "role": "support"}
        for i in range(1, 11)
    ]
    _insert(User, owners)
    _insert(
        Account,
        [
            {
                "id": i,
                "name": f"Account {i} A/S",
                "segment": "b2b" if i % 3 == 0 else "b2c",
                "owner_id": rng.choice([None, *range(1, 11)]),
                "annual_value": rng.randint(1, 500) * 1000,
                "health_stale": False,
            }
            for i in range(1, accounts + 1)
        ],
    )
    _insert(
        Contact,
        [
            {
                "id": i,
                "account_id": (i - 1) // 2 + 1,
                "email": f"c{i}@example.com",
                "name": f"Contact {i}",
                "language": "da" if i % 2 else "en",
            }
            for i in range(1, 2 * accounts + 1)
        ],
    )
    invitations, answered, answers = [], [], []
    total = int(responses * 1.2)
    for i in range(1, total + 1):
        contact = rng.randint(1, 2 * accounts)
        due = start + dt.timedelta(seconds=rng.random() * span)
        invitations.append(
            {
                "id": i,
                "contact_id": contact,
                "survey": "post-sale",
                "token_nonce": f"n{i}",
                "token_hash": f"h{i}",
                "status": "sent",
                "due_at": due,
                "sent_at": due,
                "expires_at": due + dt.timedelta(days=30),
                "answered_at": due + dt.timedelta(hours=5) if i <= responses else None,
            }
        )
        if i <= responses:
            at = due + dt.timedelta(hours=5)
            answered.append(
                {
                    "id": i,
                    "invitation_id": i,
                    "contact_id": contact,
                    "account_id": (contact - 1) // 2 + 1,
                    "survey": "post-sale",
                    "survey_version": 1,
                    "language": "da" if contact % 2 else "en",
                    "nps": rng.choice([rng.randint(0, 10), rng.randint(7, 10)]),
                    "csat": rng.choice([None, rng.randint(1, 5)]),
                    "ces": rng.choice([None, rng.randint(1, 7)]),
                    "submitted_at": at,
                    "updated_at": at,
                }
            )
            if i % 3 == 0:
                polarity = round(rng.uniform(-1, 1), 3)
                label = (
                    "negative" if polarity < -0.1 else "positive" if polarity > 0.1 else "neutral"
                )
                answers.append(
                    {
                        "response_id": i,
                        "question": "improve",
                        "text": "Leveringen kunne være hurtigere.",
                        "polarity": polarity,
                        "sentiment": label,
                        "scorer_version": 3,
                    }
                )
        if len(invitations) >= BATCH:
            _insert(Invitation, invitations)
            _insert(Response, answered)
            _insert(Answer, answers)
            invitations, answered, answers = [], [], []
    _insert(Invitation, invitations)
    _insert(Response, answered)
    _insert(Answer, answers)


def fill_health_and_cases(accounts: int, weeks: int, cases: int, seed: int = 7) -> None:
    """Weekly health snapshots of every account (a random walk) for ``weeks`` weeks, and
    ``cases`` cases, each with the flag of a detractor's answer, so the health and
    responsiveness charts have real rows to read."""
    from loyalty.accounts.rollup import week_ends
    from loyalty.models import Case, Flag, HealthSnapshot

    rng = random.Random(seed)
    tz = rollups.tz()
    today = dt.datetime.now(dt.UTC).date()
    ends = week_ends(today - dt.timedelta(weeks=weeks), today, tz)
    rows = []
    for account in range(1, accounts + 1):
        score = rng.randint(20, 95)
        for at in ends:
            score = max(0, min(100, score + rng.randint(-6, 6)))
            band = "healthy" if score >= 70 else "watch" if score >= 40 else "at_risk"
            rows.append(
                {"account_id": account, "at": at, "score": score, "band": band,
                 "contributions": "[]"}
            )  # fmt: skip
        if len(rows) >= BATCH:
            _insert(HealthSnapshot, rows)
            rows = []
    _insert(HealthSnapshot, rows)
    detractors = db.session.execute(
        sa.select(Response.id, Response.account_id, Response.submitted_at)
        .where(Response.nps <= 6)
        .order_by(Response.id)
        .limit(cases)
    ).all()
    case_rows, flag_rows = [], []
    for n, (response_id, account_id, at) in enumerate(detractors, 1):
        contacted = at + dt.timedelta(hours=rng.uniform(0.5, 30))
        resolved = contacted + dt.timedelta(hours=rng.uniform(1, 120)) if n % 4 else None
        case_rows.append(
            {"id": n, "account_id": account_id, "severity": 2, "opened_at": at,
             "updated_at": at, "first_contact_due_at": at + dt.timedelta(hours=8),
             "first_contact_at": contacted, "resolved_at": resolved,
             "status": "resolved" if resolved else "in_progress",
             "outcome": "recovered" if resolved else None}
        )  # fmt: skip
        flag_rows.append(
            {"response_id": response_id, "case_id": n, "rules": "detractor", "severity": 2,
             "created_at": at}
        )  # fmt: skip
    _insert(Case, case_rows)
    _insert(Flag, flag_rows)


def advance_sequences() -> None:
    """The bulk rows carry their own ids; PostgreSQL's sequences must start after them."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for table in ("users", "accounts", "contacts", "invitations", "responses", "cases"):
        db.session.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"
            )
        )
    db.session.commit()


def baseline() -> int:
    """Monthly NPS per segment straight from the responses: the query the rollups replace."""
    if db.session.get_bind().dialect.name == "postgresql":
        month = sa.func.to_char(Response.submitted_at, "YYYY-MM")
    else:
        month = sa.func.strftime("%Y-%m", Response.submitted_at)
    rows = db.session.execute(
        sa.select(
            month,
            Account.segment,
            sa.func.count(Response.nps),
            sa.func.sum(sa.case((Response.nps >= 9, 1), else_=0)),
            sa.func.sum(sa.case((Response.nps <= 6, 1), else_=0)),
        )
        .join(Account, Account.id == Response.account_id)
        .group_by(month, Account.segment)
    ).all()
    return len(rows)


def new_answers(count: int, seed: int = 11) -> None:
    from flask import current_app

    from loyalty.specs import surveys
    from loyalty.survey.responses import save_response

    rng = random.Random(seed)
    survey = surveys(current_app)["post-sale"]
    top = db.session.scalar(sa.select(sa.func.max(Contact.id))) or 1
    now = dt.datetime.now(dt.UTC)
    for n in range(count):
        invitation = Invitation(
            contact=db.session.get(Contact, rng.randint(1, top)),
            survey="post-sale",
            token_nonce=f"new-{n}",
            token_hash=f"new-{n}",
            status="sent",
            due_at=now - dt.timedelta(days=rng.randint(0, 6)),
            sent_at=now,
            expires_at=now + dt.timedelta(days=30),
        )
        db.session.add(invitation)
        db.session.flush()
        values = {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5), "ces": 4}
        save_response(invitation, survey, values, complete=True, now=now)
    db.session.commit()
    # Their follow-ups (flags, cases, and marking their days stale), as `flask work` does
    # seconds later; the refresh measured next counts the days they marked.
    from loyalty.survey.follow_ups import process_pending

    while process_pending():
        pass


def request_times(client, path: str, requests: int, headers=None) -> dict[str, float]:
    """Server time per request (wall clock), and this process's CPU time per request,
    which the other work on a shared machine disturbs less."""
    times, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        reply = client.get(path, headers=headers or {})
        reply.get_data()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert reply.status_code == 200, (path, reply.status_code)
    figures = {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(percentile(times, 99), 2),
        "cpu_p50_ms": round(statistics.median(cpu), 2),
    }
    print(
        f"  {path}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms "
        f"(CPU p50 {figures['cpu_p50_ms']} ms)"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--new-answers", type=int, default=1000)
    parser.add_argument("--weeks", type=int, default=52, help="weeks of health snapshots")
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--database-url", help="PostgreSQL URL; the database is WIPED")
    args = parser.parse_args()

    from loyalty.api.keys import create_key
    from loyalty.auth import create_user

    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        app = make_app(Path(folder), args.database_url)
        with app.app_context():
            fill_s, _ = timed(fill, args.accounts, args.responses, args.months)
            print(f"filled {args.accounts} accounts, {args.responses} responses in {fill_s:.1f} s")
            extra_s, _ = timed(fill_health_and_cases, args.accounts, args.weeks, args.cases)
            print(f"  and {args.weeks} weeks of health, {args.cases} cases in {extra_s:.1f} s")
            advance_sequences()
            base_s = min(timed(baseline)[0] for _ in range(3))
            rebuild_s, days = timed(rollups.rebuild)
            rows = db.session.scalar(sa.text("SELECT count(*) FROM metric_days"))
            print(
                f"raw monthly NPS per segment {base_s * 1000:.0f} ms; rebuild of {days} days "
                f"{rebuild_s:.1f} s ({rows} rollup rows)"
            )
            clock_s, counted = timed(clock.refresh)
            print(f"SLA clock figures of {counted} cases counted in {clock_s:.1f} s")
            create_user("ceo@example.com", "executive", "correct horse battery")
            _, key = create_key("bench")
            db.session.commit()
        # As gunicorn's post_worker_init does in each worker (gunicorn.conf.py): what lives
        # for the process's life is out of the garbage collector's sight, so a full
        # collection during a request scans only that request's objects.
        gc.collect()
        gc.freeze()
        client = app.test_client()
        login = client.post(
            "/login", data={"email": "ceo@example.com", "password": "correct horse battery"}
        )
        assert login.status_code == 302, login.status_code
        pages = {
            "dashboard": request_times(client, "/dashboard", args.requests),
            "dashboard_filtered": request_times(
                client, "/dashboard?grain=week&segment=b2b&language=da&owner=3", args.requests
            ),
            "api_nps_month": request_times(
                client,
                "/api/v1/metrics/nps?grain=month",
                args.requests,
                {"Authorization": f"Bearer {key}"},
            ),
        }
        pages["report_page"] = request_times(
            client, "/reports/executive-monthly", max(3, args.requests // 5)
        )
        with app.app_context():
            from loyalty import periods
            from loyalty.dashboard import reports as rendering
            from loyalty.specs import reports

            spec = reports(app)["executive-monthly"]
            today = periods.today(rollups.tz())
            period = periods.Period(today - dt.timedelta(days=spec.days - 1), today)
            renders = [
                timed(rendering.render_html, spec, period, standalone=True)[0] for _ in range(3)
            ]
            render_s = statistics.median(renders)
            print(f"report render (self-contained file): {render_s:.2f} s (median of 3)")
            answers_s, _ = timed(new_answers, args.new_answers)
            stale = db.session.scalar(sa.text("SELECT count(DISTINCT day) FROM metric_stale_days"))
            refresh_s, _ = timed(rollups.refresh_stale)
            print(
                f"{args.new_answers} new answers in {answers_s:.1f} s marked {stale} days stale; "
                f"counted again in {refresh_s * 1000:.0f} ms"
            )
    p99 = pages["dashboard"]["p99_ms"]
    result = {
        "benchmark": "dashboard",
        "database": "postgresql" if args.database_url else "sqlite",
        "accounts": args.accounts,
        "responses": args.responses,
        "fill_s": round(fill_s, 1),
        "baseline_raw_monthly_nps_ms": round(base_s * 1000, 1),
        "rebuild_s": round(rebuild_s, 2),
        "case_clock_count_s": round(clock_s, 2),
        "rollup_rows": rows,
        "pages": pages,
        "dashboard_p50_speedup_over_raw": round(base_s * 1000 / pages["dashboard"]["p50_ms"], 1),
        "dashboard_p99_ms": p99,
        "new_answers": args.new_answers,
        "stale_days": stale,
        "refresh_ms": round(refresh_s * 1000, 1),
        "report_render_s": round(render_s, 3),
        "weeks_of_health": args.weeks,
        "cases": args.cases,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
