"""Account health at scale: the weekly rebuild, the incremental update and the /accounts page,
against a raw aggregate over the responses as the baseline, in one run.

Fills a fresh database (SQLite in a temporary folder, or the PostgreSQL database named by
``--database-url``, which is WIPED) with the simulated portfolio of ``tests/simulation.py``
(``--accounts`` accounts, their contacts, two years of invitations, answers with scored
comments, cases and churn), then measures:

* ``baseline``: one raw aggregate query over every response (count, NPS sums per account),
  the cheapest honest read of all the data a rebuild reads;
* ``rebuild``: ``rollup.rebuild`` of the last ``--weeks`` weeks for every account;
* ``incremental``: ``--new-answers`` new answers from random accounts, then the dispatcher's
  health pass (``rollup.refresh_stale``): only the accounts that changed are recomputed;
* ``accounts_page`` (when the ``/accounts`` page exists): server time of the default list, a
  filtered one and a deep page, through the WSGI interface as a signed-in support lead.

Human-readable lines first; the last line is one JSON object. Only ratios measured in the
same run mean much on a shared machine (2 cores).

    .venv/bin/python tests/benchmarks/bench_health.py [--accounts 2000] [--scale 4]
        [--weeks 12] [--new-answers 1000] [--requests 50] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
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
sys.path.insert(0, str(ROOT / "tests"))

from loyalty import create_app  # noqa: E402
from loyalty.accounts import rollup  # noqa: E402
from loyalty.db import db  # noqa: E402
from loyalty.models import Account, Contact, Invitation, Response  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def make_app(tmp: Path, database_url: str | None):
    from flask_migrate import upgrade

    url = database_url or f"sqlite:///{tmp / 'bench.db'}"
    app = create_app(
        {
            "SECRET_KEY": "bench-health-secret",
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


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def baseline() -> int:
    """Every response read once, aggregated per account: what no rebuild can beat."""
    rows = db.session.execute(
        sa.select(
            Response.account_id,
            sa.func.count(Response.id),
            sa.func.sum(sa.case((Response.nps >= 9, 1), else_=0)),
            sa.func.sum(sa.case((Response.nps <= 6, 1), else_=0)),
        ).group_by(Response.account_id)
    ).all()
    return len(rows)


def new_answers(count: int, seed: int = 11) -> set[int]:
    """``count`` answers from random contacts, stored as the survey stores them."""
    from flask import current_app

    from loyalty.specs import surveys
    from loyalty.survey.responses import save_response

    rng = random.Random(seed)
    survey = surveys(current_app)["post-sale"]
    contacts = db.session.execute(
        sa.select(Contact.id, Contact.account_id).where(Contact.erased_at.is_(None))
    ).all()
    touched = set()
    now = dt.datetime.now(dt.UTC)
    for n in range(count):
        contact_id, account_id = rng.choice(contacts)
        contact = db.session.get(Contact, contact_id)
        invitation = Invitation(
            contact=contact,
            survey="post-sale",
            token_nonce=f"bench-{n}",
            token_hash=f"bench-{n}",
            status="sent",
            due_at=now,
            sent_at=now,
            expires_at=now + dt.timedelta(days=30),
        )
        db.session.add(invitation)
        db.session.flush()
        values = {"nps": rng.randint(0, 10), "csat": rng.randint(1, 5), "ces": 4}
        save_response(invitation, survey, values, complete=True, now=now)
        touched.add(account_id)
    db.session.commit()
    return touched


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=4.0, help="invitations per contact, x")
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--new-answers", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50, help="per page target")
    parser.add_argument("--database-url", help="PostgreSQL URL; the database is WIPED")
    args = parser.parse_args()

    from simulation import simulate

    with tempfile.TemporaryDirectory(prefix="bench-health-") as folder:
        app = make_app(Path(folder), args.database_url)
        with app.app_context():
            fill_s, portfolio = timed(simulate, accounts=args.accounts, seed=7, scale=args.scale)
            rows = portfolio.rows  # type: ignore[attr-defined]
            responses = db.session.scalar(sa.select(sa.func.count(Response.id))) or 0
            contacts = db.session.scalar(sa.select(sa.func.count(Contact.id))) or 0
            print(
                f"filled {args.accounts} accounts, {contacts} contacts, {responses} responses "
                f"in {fill_s:.1f} s ({rows})"
            )
            base_s, _ = timed(baseline)
            base_s = min(base_s, timed(baseline)[0])  # warm
            now = dt.datetime.now(dt.UTC)
            ends = rollup.week_ends(
                (now - dt.timedelta(weeks=args.weeks)).date(), now.date(), dt.UTC
            )
            rebuild_s, (written, raised) = timed(rollup.rebuild, ends)
            print(
                f"baseline aggregate {base_s * 1000:.0f} ms; rebuild of {len(ends)} weeks "
                f"{rebuild_s:.1f} s ({written} snapshots, {raised} warnings)"
            )
            refresh_all_s, _ = timed(
                lambda: [rollup.refresh_stale(limit=1000) for _ in range(args.accounts // 1000 + 1)]
            )
            db.session.commit()
            answers_s, touched = timed(new_answers, args.new_answers)
            stale = db.session.scalar(
                sa.select(sa.func.count(Account.id)).where(Account.health_stale.is_(True))
            )
            incremental_s, _ = timed(
                lambda: [rollup.refresh_stale(limit=1000) for _ in range(len(touched) // 1000 + 1)]
            )
            db.session.commit()
            print(
                f"{args.new_answers} new answers in {answers_s:.1f} s marked {stale} accounts "
                f"stale ({len(touched)} touched); their refresh {incremental_s:.2f} s "
                f"(all accounts: {refresh_all_s:.1f} s)"
            )
        pages = page_times(app, args.requests)
    result = {
        "benchmark": "health",
        "database": "postgresql" if args.database_url else "sqlite",
        "accounts": args.accounts,
        "contacts": contacts,
        "responses": responses,
        "fill_s": round(fill_s, 1),
        "baseline_aggregate_ms": round(base_s * 1000, 1),
        "rebuild_weeks": len(ends),
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_over_baseline": round(rebuild_s / base_s, 1) if base_s else None,
        "snapshots": written,
        "warnings": raised,
        "refresh_all_s": round(refresh_all_s, 2),
        "new_answers": args.new_answers,
        "stale_after_answers": stale,
        "touched_accounts": len(touched),
        "incremental_s": round(incremental_s, 3),
        "pages": pages,
    }
    print(json.dumps(result))
    return 0


def page_times(app, requests: int) -> dict[str, dict[str, float]] | None:
    """p50/p99 server time of /accounts views, if the page exists."""
    if "accounts" not in app.blueprints:
        print("no /accounts page in this tree: page times skipped")
        return None
    from loyalty.auth import create_user

    with app.app_context():
        create_user("bench@example.com", "support", "correct horse battery")
        db.session.commit()
    client = app.test_client()
    login = client.post(
        "/login", data={"email": "bench@example.com", "password": "correct horse battery"}
    )
    assert login.status_code == 302, login.status_code
    targets = {
        "default": "/accounts",
        "filtered": "/accounts?band=at_risk&segment=b2b",
        "search": "/accounts?q=A%2FS",
    }
    out = {}
    for name, path in targets.items():
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            reply = client.get(path)
            reply.get_data()
            times.append((time.perf_counter() - started) * 1000)
            assert reply.status_code == 200, (path, reply.status_code)
        out[name] = {
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(percentile(times, 99), 2),
        }
        print(f"  {path}: p50 {out[name]['p50_ms']} ms, p99 {out[name]['p99_ms']} ms")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
