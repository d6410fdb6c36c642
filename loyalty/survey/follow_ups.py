"""An answer's follow-ups, done after the customer has their reply: a durable outbox.

:func:`queue` adds a ``follow_ups`` row in the transaction that stores the answer, so the
row is committed with the answer or not at all. :func:`process_pending` takes due rows and,
for each, sends ``response_committed`` (flag and case, webhook deliveries, rollups, health)
and removes the row in one transaction:

* never lost: the row stays until the transaction that did its work commits; a worker
  killed half-way leaves the row and none of its work (the database rolls the unfinished
  transaction back), and the next run does it all;
* never done twice: two workers never hold one row (PostgreSQL: ``FOR UPDATE SKIP LOCKED``
  on the rows, held until commit; SQLite: the claim is an ``UPDATE``, which takes the one
  write lock, held until commit), and a row's work commits together with its removal;
* retried: a batch runs in one savepoint with one flush at its end; if a row's receivers
  raise, the batch is done again row by row, each in its own savepoint, and the failing
  row alone rolls back and waits (:data:`RETRY_DELAYS`) while the others commit.

What leaves the database is itself an outbox: a webhook is a ``webhook_deliveries`` row
posted by the dispatcher or ``flask work``; an assignee's email is claimed by its case's
``notified_at`` after the commit. Who runs this: each app process in a background thread
right after the commit (``FOLLOW_UPS_IN_APP``, on by default, so a one-machine install needs
nothing more), ``flask work`` every ``WORK_INTERVAL`` seconds, and the dispatcher's pass.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import typing as t

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, selectinload

from ..db import db
from ..models import FollowUp, Response, utcnow
from ..signals import response_committed

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.local import LocalProxy

log = logging.getLogger(__name__)

#: waits after the 1st, 2nd, ... failed try; then every hour, for as long as it takes
RETRY_DELAYS = tuple(dt.timedelta(seconds=s) for s in (5, 30, 120, 600, 3600))
#: rows taken in one transaction: one commit (one disk sync) for many answers under load
BATCH = 50
#: on SQLite: a transaction holds the one write lock from its claim to its commit, while the
#: customers' saves queue behind it (``loyalty.write_lock``). 50 rows held it 80-140 ms under
#: load (bench_survey, 16 clients), a submit's own transaction 2-6 ms; batches this small
#: hold it a few ms each, and the saves waiting meanwhile go between two batches
SQLITE_BATCH = 8
#: the pause between two full SQLite batches, in which a waiting save takes the lock
SQLITE_YIELD_SECONDS = 0.002
#: the app's thread waits this long after being woken, so that under load the answers of
#: that moment are followed up in one transaction (one write lock, one disk sync) rather
#: than each in its own, which would keep the customers' saves waiting for the lock
GATHER_SECONDS = 0.25
_QUEUED = "loyalty.follow_ups_queued"


def queue_on_save(
    sender: t.Any, *, response_id: int, created: bool, now: dt.datetime, **_: t.Any
) -> None:
    """On ``response_saved``: the follow-up row, in the transaction storing the answer."""
    db.session.connection().execute(
        _QUEUE,
        {"response_id": response_id, "created": created, "saved_at": now, "next_attempt_at": now},
    )
    db.session.info[_QUEUED] = True


_QUEUE = sa.insert(t.cast(sa.Table, FollowUp.__table__))  # built once


def retry_delay(attempts: int) -> dt.timedelta:
    return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]


def pending_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(FollowUp.id))) or 0


def process_pending(*, now: dt.datetime | None = None, limit: int | None = None) -> int:
    """Do the due follow-ups, a batch per transaction; how many were done.

    ``limit`` stops after about that many (a batch is finished). Failed rows are counted
    as not done and wait for their next attempt.
    """
    done = 0
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    size = SQLITE_BATCH if sqlite else BATCH
    while limit is None or done < limit:
        taken, succeeded = _process_batch(now or utcnow(), size)
        done += succeeded
        if taken < size:
            return done
        if sqlite:
            time.sleep(SQLITE_YIELD_SECONDS)
    return done


def _claim(now: dt.datetime, size: int) -> list[int]:
    """Take up to ``size`` due rows for this transaction (see the module's docstring)."""
    due = (
        sa.select(FollowUp.id)
        .where(FollowUp.next_attempt_at <= now)
        .order_by(FollowUp.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    )
    claimed = db.session.execute(
        sa.update(FollowUp)
        .where(FollowUp.id.in_(due.scalar_subquery()))
        .values(claimed_at=now)
        .returning(FollowUp.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    return sorted(claimed)


def _process_batch(now: dt.datetime, size: int) -> tuple[int, int]:
    app = t.cast("LocalProxy[Flask]", current_app)._get_current_object()
    session = db.session()
    try:
        ids = _claim(now, size)
        if not ids:
            session.commit()
            return 0, 0
        rows = {
            row.id: row for row in session.scalars(sa.select(FollowUp).where(FollowUp.id.in_(ids)))
        }
        responses = {
            r.id: r
            for r in session.scalars(
                sa.select(Response)
                .where(Response.id.in_({row.response_id for row in rows.values()}))
                .options(
                    selectinload(Response.answers),
                    selectinload(Response.account),
                    selectinload(Response.contact),
                    selectinload(Response.invitation),
                )
            )
        }
        # By account: a row may lock its account (a case opened or joined), and two batches
        # taking their accounts in one order cannot deadlock (PostgreSQL).
        accounts = {
            row_id: getattr(responses.get(rows[row_id].response_id), "account_id", 0) or 0
            for row_id in ids
        }
        order = sorted(ids, key=lambda row_id: (accounts[row_id], row_id))
        before = _hooks_state(session)
        try:
            # All rows in one savepoint and one flush: the usual batch, where nothing fails.
            with session.begin_nested(), session.no_autoflush:
                for row_id in order:
                    _follow_up(app, rows[row_id], responses)
            done = order
        except Exception:  # noqa: BLE001 - one of them failed: find it, let the others through
            _restore_hooks_state(session, before)
            done = _one_at_a_time(app, session, order, rows, responses, now)
        if done:  # its work and its removal commit together
            session.execute(sa.delete(FollowUp).where(FollowUp.id.in_(done)))
        session.commit()
        return len(ids), len(done)
    except BaseException:
        session.rollback()
        raise


def _follow_up(app: Flask, row: FollowUp, responses: dict[int, Response]) -> None:
    response = responses.get(row.response_id)
    if response is not None:  # erased meanwhile: nothing left to follow up
        response_committed.send(app, response=response, created=row.created, now=row.saved_at)


def _hooks_state(session: Session) -> dict[str, t.Any]:
    """What the after-commit hooks were handed so far (emails to send once this commits),
    so that rows rolled back to their savepoint take back only their own."""
    return {k: list(v) if isinstance(v, list) else v for k, v in session.info.items()}


def _restore_hooks_state(session: Session, state: dict[str, t.Any]) -> None:
    session.info.clear()
    session.info.update(state)


def _one_at_a_time(
    app: Flask,
    session: Session,
    order: list[int],
    rows: dict[int, FollowUp],
    responses: dict[int, Response],
    now: dt.datetime,
) -> list[int]:
    """The batch again, each row in its own savepoint: a failed row waits for its next try
    (:data:`RETRY_DELAYS`), the others are done. Returns the rows done."""
    done = []
    for row_id in order:
        row = rows[row_id]
        before = _hooks_state(session)
        try:
            with session.begin_nested():
                _follow_up(app, row, responses)
        except Exception as exc:  # noqa: BLE001 - this row waits; the batch goes on
            _restore_hooks_state(session, before)
            attempts = row.attempts + 1
            log.exception(
                "follow-up of response %s failed (try %s); trying again",
                row.response_id,
                attempts,
            )
            session.execute(
                sa.update(FollowUp)
                .where(FollowUp.id == row_id)
                .values(
                    attempts=attempts,
                    next_attempt_at=now + retry_delay(attempts),
                    last_error=f"{type(exc).__name__}: {exc}"[:500],
                )
                .execution_options(synchronize_session=False)
            )
        else:
            done.append(row_id)
    return done


# --- who runs it -----------------------------------------------------------------------------


def on_dispatch_tick(sender: t.Any, *, now: dt.datetime | None = None, **_: t.Any) -> None:
    """On ``dispatch_tick``: what no app thread or worker has done yet. Never raises."""
    try:
        process_pending(now=now)
    except Exception:  # noqa: BLE001 - logged; the next pass tries again
        db.session.rollback()
        log.exception("follow-ups failed in this dispatcher pass")


def run_loop(
    interval: float,
    *,
    stop: threading.Event,
    also: t.Callable[[], t.Any] = lambda: None,
    echo: t.Callable[[str], t.Any] = print,
) -> None:
    """``flask work``: due follow-ups, then ``also`` (the due webhooks), every ``interval``
    seconds until ``stop`` is set; a failed pass (a database restart) is logged and retried."""
    while not stop.is_set():
        try:
            done = process_pending()
            also()
        except Exception:  # noqa: BLE001 - a long-running process logs and carries on
            db.session.rollback()
            current_app.logger.exception("work pass failed; trying again in %ss", interval)
        else:
            if done:
                echo(f"{utcnow():%Y-%m-%d %H:%M:%S} follow-ups done: {done}")
        db.session.remove()
        stop.wait(interval)


class _InApp:
    """The app process's own follow-up thread, woken after each commit that queued one.

    Started on first use in each process (gunicorn forks its workers after the app is
    built), so each worker has its own; a daemon, because a row it had not finished stays
    in the outbox for the next run, anywhere.
    """

    def __init__(self) -> None:
        self.wake = threading.Condition()
        self.due = False
        self.busy = False
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.app: Flask | None = None

    def kick(self, app: Flask) -> None:
        with self.wake:
            self.due, self.app = True, app  # the app that committed (tests make many)
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.pid = os.getpid()
                self.thread = threading.Thread(
                    target=self._run, name="loyalty-follow-ups", daemon=True
                )
                self.thread.start()
            self.wake.notify()

    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.due:
                    self.wake.wait()
                self.busy = True
            time.sleep(GATHER_SECONDS)  # more answers arrive meanwhile; due stays set
            with self.wake:
                self.due, app = False, self.app
            assert app is not None
            try:
                with app.app_context():
                    try:
                        process_pending()
                    except Exception:  # noqa: BLE001 - the row stays; a worker or the next kick does it
                        log.exception("follow-ups failed in the app's thread")
                    finally:
                        db.session.remove()
            finally:
                with self.wake:
                    self.busy = False
                    self.wake.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and shutdown: until nothing is due or being done; False on timeout."""
        with self.wake:
            return self.wake.wait_for(lambda: not self.due and not self.busy, timeout)


in_app = _InApp()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released; the commit is to come
        return
    if not session.info.pop(_QUEUED, False):
        return
    try:
        app = t.cast("LocalProxy[Flask]", current_app)._get_current_object()
    except RuntimeError:  # committed outside an app (a script): a worker or the dispatcher
        return
    if app.config["FOLLOW_UPS_IN_APP"]:
        in_app.kick(app)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: t.Any) -> None:
    if not session.in_transaction():
        session.info.pop(_QUEUED, None)
