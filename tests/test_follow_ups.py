"""The follow-up outbox: an answer is committed with its outbox row before the reply; its
flag, case, webhooks and rollups follow once, even when the worker is killed half-way."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_URL, csrf_from, follow_up
from test_webhooks import Receiver

from loyalty import signals
from loyalty.db import db
from loyalty.models import (
    Account,
    Case,
    Flag,
    FollowUp,
    MetricStaleDay,
    Response,
    WebhookDelivery,
    utcnow,
)
from loyalty.outreach.webhooks import add_webhook, deliver_due
from loyalty.survey import follow_ups
from loyalty.triage import flagging

ROOT = Path(__file__).resolve().parent.parent
ANGRY = {"nps": "1", "csat": "1", "ces": "1", "reason": "Terrible. We will cancel the contract."}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def webhook(app, receiver):
    hook = add_webhook(receiver.url)
    db.session.commit()
    return hook


def submit(client, token: str, **fields: str):
    html = client.get(f"/s/{token}").get_data(as_text=True)
    reply = client.post(f"/s/{token}", data={"csrf_token": csrf_from(html), **ANGRY, **fields})
    assert reply.status_code == 303, reply.get_data(as_text=True)


def count(model) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def test_the_answer_is_committed_with_its_outbox_row_and_followed_up_once(
    client, invite, webhook, receiver
):
    _, token = invite()
    submit(client, token)
    # The customer has their reply: answer and sentiment stored, the follow-up queued.
    response = db.session.scalars(sa.select(Response)).one()
    assert {a.sentiment for a in response.answers} == {"negative"}
    assert (count(FollowUp), count(Flag), count(Case), count(WebhookDelivery)) == (1, 0, 0, 0)
    assert follow_up() == 1
    assert (count(FollowUp), count(Flag), count(Case), count(WebhookDelivery)) == (0, 1, 1, 1)
    assert db.session.get(Account, response.account_id).health_stale
    assert count(MetricStaleDay) >= 1
    # Run again (a second worker, the dispatcher's pass): nothing is done twice.
    assert follow_up() == 0
    follow_ups.on_dispatch_tick(None, now=utcnow() + dt.timedelta(hours=1))
    assert (count(Flag), count(Case), count(WebhookDelivery)) == (1, 1, 1)
    assert deliver_due().delivered == 1 and len(receiver.requests) == 1


@pytest.mark.skipif(not PG_URL, reason="row locks are PostgreSQL's")
def test_a_follow_up_holding_its_account_does_not_hold_up_the_accounts_customers(
    app, client, invite
):
    """A batch keeps the account it opened a case on locked until it commits; meanwhile
    another contact of that account saves an answer at once (its foreign key's lock)."""
    first, _ = invite()
    _, token = invite()
    account_id = first.contact.account_id
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        with app.app_context():
            flagging.lock_account(account_id)
            locked.set()
            done.wait(10)  # a save that waited for it would take this long
            db.session.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        started = time.monotonic()
        html = client.get(f"/s/{token}").get_data(as_text=True)
        reply = client.post(f"/s/{token}", data={"csrf_token": csrf_from(html), **ANGRY})
        assert reply.status_code == 303 and time.monotonic() - started < 5
    finally:
        done.set()
        holder.join(30)


def test_a_changed_answer_is_followed_up_again_and_joins_its_flag(client, invite):
    _, token = invite()
    submit(client, token, reason="Slow.")
    submit(client, token, reason="Terrible. We will cancel the contract.")
    assert count(FollowUp) == 2
    assert follow_up() == 2
    flag = db.session.scalars(sa.select(Flag)).one()
    assert "churn_cue" in flag.rules and count(Case) == 1


def test_the_reminder_is_called_off_in_the_answers_own_transaction(client, invite):
    """No dispatcher pass between the commit and the follow-up may remind an answerer."""
    invitation, token = invite()
    invitation.status, invitation.reminder_due_at = "sent", utcnow() - dt.timedelta(minutes=1)
    db.session.commit()
    submit(client, token)
    db.session.expire_all()
    assert invitation.reminder_due_at is None and count(FollowUp) == 1


def test_a_follow_up_that_fails_rolls_back_alone_and_is_retried(app, client, invite):
    _, bad = invite(email="bad@example.com")
    _, good = invite(email="good@example.com", account="Other ApS")
    submit(client, bad)
    submit(client, good)
    failing = {"bad@example.com"}

    def flaky(sender, *, response, **_):
        if response.contact.email in failing:
            db.session.add(MetricStaleDay(day=dt.date(2000, 1, 1)))
            db.session.flush()  # some of its work written, then it fails
            raise RuntimeError("the receiver fell over")

    signals.response_committed.connect(flaky, app)
    try:
        assert follow_up() == 1
    finally:
        signals.response_committed.disconnect(flaky, app)
    db.session.expire_all()
    row = db.session.scalars(sa.select(FollowUp)).one()
    assert row.attempts == 1 and "fell over" in row.last_error
    assert row.next_attempt_at > utcnow()
    # The good one is done; nothing of the failed one's half-done work remains.
    flags = db.session.scalars(sa.select(Flag)).all()
    assert [f.response.contact.email for f in flags] == ["good@example.com"]
    assert not db.session.scalar(
        sa.select(MetricStaleDay.id).where(MetricStaleDay.day == dt.date(2000, 1, 1))
    )
    assert follow_up() == 0  # not yet due
    assert follow_ups.process_pending(now=utcnow() + dt.timedelta(seconds=6)) == 1
    assert count(FollowUp) == 0 and count(Flag) == 2 and count(Case) == 2


def test_two_answers_of_one_account_in_one_batch_share_its_case(app, client, invite):
    # A batch flushes once, at its end: the second answer must still find the case the
    # first one opened a moment before, not open a second.
    _, first = invite(email="first@example.com", account="Same ApS")
    _, second = invite(email="second@example.com", account="Same ApS")
    submit(client, first)
    submit(client, second)
    assert follow_up() == 2
    assert count(Case) == 1 and count(Flag) == 2
    case = db.session.scalars(sa.select(Case)).one()
    assert sorted(f.response.contact.email for f in case.flags) == [
        "first@example.com",
        "second@example.com",
    ]
    assert [event.kind for event in case.history] == ["opened", "flag_joined"]


def test_the_apps_own_thread_opens_the_case_within_seconds(app, client, invite, auth):
    """No worker runs (``make run``): the app's thread does the follow-up after the reply,
    and the triage queue shows the case within 5 seconds."""
    app.config["FOLLOW_UPS_IN_APP"] = True
    _, token = invite()
    started = time.monotonic()
    submit(client, token)
    try:
        while count(Case) == 0 and time.monotonic() - started < 5:
            time.sleep(0.05)
    finally:
        assert follow_ups.in_app.wait_idle(10)
    assert count(Case) == 1 and count(FollowUp) == 0
    auth.login("support")
    page = client.get("/triage").get_data(as_text=True)
    assert "Contact 1" in page or "Acme A/S" in page


# --- a real worker, killed ------------------------------------------------------------------


def worker(database_url: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """``flask --app loyalty work`` in its own process, as systemd runs it."""
    env = {
        **os.environ,
        "LOYALTY_DATABASE_URL": database_url,
        "LOYALTY_SECRET_KEY": "test-secret-key",
        "LOYALTY_MAIL_URL": f"outbox:{tmp_path / 'worker-outbox'}",
        "LOYALTY_INSTANCE_PATH": str(tmp_path / "worker"),
        "LOYALTY_BASE_URL": "http://survey.test",
        "LOYALTY_REPORT_SCHEDULE": "[]",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "loyalty", "work", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Blocker:
    """Holds what the worker needs next, so it can be killed at that point: on SQLite the
    write lock (the worker waits at its claim), on PostgreSQL the account's row (the worker
    waits half-way, its claim taken and the flag written, before opening the case)."""

    def __init__(self, database_url: str, account_id: int) -> None:
        if PG_URL:
            self.engine = sa.create_engine(database_url)
            self.conn = self.engine.connect()
            self.conn.execute(
                sa.text("SELECT id FROM accounts WHERE id = :id FOR UPDATE"), {"id": account_id}
            )
        else:
            self.engine = None
            self.raw = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=15)
            self.raw.isolation_level = None
            self.raw.execute("BEGIN IMMEDIATE")

    def waiting(self) -> bool:
        """Whether a worker is waiting on what this holds."""
        if not PG_URL:
            return True  # SQLite cannot tell; the caller gives the worker time to get there
        with self.engine.connect() as probe:
            return bool(
                probe.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND query ILIKE '%accounts%'"
                    )
                )
            )

    def release(self) -> None:
        if self.engine is not None:
            self.conn.rollback()
            self.conn.close()
            self.engine.dispose()
        else:
            self.raw.rollback()
            self.raw.close()


def test_a_worker_killed_between_commit_and_follow_up_loses_nothing_and_repeats_nothing(
    client, invite, webhook, receiver, database_url, tmp_path
):
    invitation, token = invite()
    account_id = invitation.contact.account_id
    submit(client, token)  # committed, the customer thanked; nobody has followed it up
    db.session.remove()
    blocker = Blocker(database_url, account_id)
    run = worker(database_url, tmp_path, "--interval", "0.1")
    try:
        assert "working every 0.1 s" in run.stderr.readline()
        deadline = time.monotonic() + 20
        while not blocker.waiting() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # at its claim (SQLite) or half-way through (PostgreSQL)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        run.kill()
        run.communicate(timeout=30)
        blocker.release()
    assert run.returncode == -signal.SIGKILL
    # Killed: nothing of its work remains, and the follow-up is still there.
    assert (count(FollowUp), count(Flag), count(Case), count(WebhookDelivery)) == (1, 0, 0, 0)

    again = worker(database_url, tmp_path, "--once")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "follow-ups done: 1; webhooks delivered: 1" in out
    assert (count(FollowUp), count(Flag), count(Case), count(WebhookDelivery)) == (0, 1, 1, 1)
    ((headers, body),) = receiver.requests
    assert json.loads(body)["event"] == "response.created"

    # A second run (or a second worker) does nothing again.
    twice = worker(database_url, tmp_path, "--once")
    out, err = twice.communicate(timeout=60)
    assert "follow-ups done: 0; webhooks delivered: 0" in out, err
    assert (count(Flag), count(Case), count(WebhookDelivery)) == (1, 1, 1)
    assert len(receiver.requests) == 1


def test_two_workers_at_once_do_each_follow_up_once(app, invite, database_url, tmp_path):
    from loyalty.specs import surveys
    from loyalty.survey.responses import save_response

    survey = surveys(app)["post-sale"]
    for n in range(30):
        invitation, _ = invite(account=f"Account {n % 4}")
        save_response(invitation, survey, {"nps": n % 11}, complete=True)
    db.session.commit()
    db.session.remove()
    runs = [worker(database_url, tmp_path, "--once") for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    done = [int(out.split("follow-ups done: ")[1].split(";")[0]) for out, _ in outputs]
    assert sum(done) == 30
    assert count(FollowUp) == 0
    flagged = count(Flag)
    responses = db.session.scalars(sa.select(Response)).all()
    assert flagged == sum(1 for r in responses if r.nps <= 6)
    assert count(Case) == 4  # one per account: the detractors of each joined one case


def test_threads_of_one_worker_do_not_double_up(app, invite):
    """Two threads process at once (the app's thread beside a request's): each row once."""
    from loyalty.specs import surveys
    from loyalty.survey.responses import save_response

    survey = surveys(app)["post-sale"]
    for n in range(20):
        invitation, _ = invite(account=f"Account {n}")
        save_response(invitation, survey, {"nps": 2}, complete=True)
    db.session.commit()
    done: list[int] = []

    def run() -> None:
        with app.app_context():
            done.append(follow_ups.process_pending())
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(done) == 20 and count(Flag) == 20 and count(Case) == 20
