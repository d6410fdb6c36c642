"""Telling staff about cases: at once for severe new ones, and a daily digest for everyone.

A severe case's assignee is emailed right after the transaction that opened (or worsened)
the case commits, never before, so nobody is told about a case that was rolled back. The
email goes from a background thread, so a slow mail server never delays the customer's
thank-you page. Each email is claimed first (``notified_at``, ``digest_sent_at`` set in a
committed update), so two dispatchers never send the same one; a refused email releases its
claim and the next dispatcher pass (the ``dispatch_tick`` signal) tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import typing as t
from concurrent import futures

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session, selectinload

from .. import emails
from ..accounts import warnings as account_warnings
from ..db import db, rowcount
from ..mailer import MailError
from ..models import Case, CaseEvent, Flag, Response, User, utcnow
from . import cases
from .flags import severity_name

if t.TYPE_CHECKING:
    from email.message import EmailMessage

    from flask import Flask
    from werkzeug.local import LocalProxy

    from ..mailer import Transport

log = logging.getLogger(__name__)

#: How far back the dispatcher looks for severe cases whose email has not gone out yet.
RETRY_WINDOW = dt.timedelta(days=2)
DIGEST_LIMIT = 50


# --- at once -------------------------------------------------------------------------------


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint was released; the commit is to come
        return
    pending = session.info.pop(cases.NOTIFY_AFTER_COMMIT, None)
    if not pending:
        return
    # The committed session cannot run SQL here, and its objects are expired: read each
    # case's primary key from its identity instead of loading the attribute.
    ids = sorted({state.identity[0] for state in map(sa.inspect, pending) if state.identity})
    try:
        app = t.cast("LocalProxy[Flask]", current_app)._get_current_object()
    except RuntimeError:  # committed outside an app (a script): the dispatcher will send
        return
    global _sender
    with _sender_lock:
        if _sender is None:  # made on first use, so each forked server worker has its own
            _sender = futures.ThreadPoolExecutor(1, thread_name_prefix="loyalty-notify")
        sending = _sender.submit(_notify_in_background, app, ids)
        _in_flight.add(sending)
    sending.add_done_callback(_in_flight.discard)


_sender: futures.ThreadPoolExecutor | None = None
_sender_lock = threading.Lock()
_in_flight: set[futures.Future[None]] = set()


def _notify_in_background(app: Flask, ids: list[int]) -> None:
    with app.app_context():
        for case_id in ids:
            try:
                notify_assignee(case_id, app=app)
            except Exception:  # a refused or failed email is retried by the dispatcher
                log.exception("notifying the assignee of case %s failed; will retry", case_id)


def wait_for_background_emails(timeout: float = 30.0) -> bool:
    """Wait until the emails handed to the background thread are sent; False on timeout.

    For tests and for shutting down cleanly; the thread pool also finishes its queue when
    the interpreter exits.
    """
    _, pending = futures.wait(list(_in_flight), timeout=timeout)
    return not pending


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: t.Any) -> None:
    session.info.pop(cases.NOTIFY_AFTER_COMMIT, None)


def notify_assignee(
    case_id: int, *, app: Flask | None = None, mail: Transport | None = None
) -> bool:
    """Email a severe case's assignee once; True when this call sent it.

    Runs in its own session so it works right after another session's commit.
    """
    conf = cases.settings(app)
    with Session(db.engine) as session:
        case = session.get(Case, case_id)
        if (
            case is None
            or case.notified_at is not None
            or case.severity < conf.notify_min_severity
            or case.assignee is None
            or not case.assignee.active
        ):
            return False
        now = utcnow()
        claimed = rowcount(
            session.execute(
                sa.update(Case)
                .where(Case.id == case_id, Case.notified_at.is_(None))
                .values(notified_at=now)
            )
        )
        session.commit()
        if claimed != 1:
            return False

        def release() -> bool:
            """Give the claim back, so the next dispatcher pass tries again."""
            session.execute(sa.update(Case).where(Case.id == case_id).values(notified_at=None))
            session.commit()
            return False

        case = session.get(Case, case_id)  # loaded afresh: the commit expired it
        assignee = None if case is None else case.assignee
        if case is None or assignee is None:  # unassigned since the check: tell the next one
            return release()
        try:
            (mail or emails.transport()).send(emails.case_assigned(case))
        except MailError as exc:
            log.warning("case %s: email to %s refused: %s", case_id, assignee.email, exc)
            return release()
        case.history.append(
            CaseEvent(
                kind="notified",
                body=f"Emailed {assignee.email} about this {severity_name(case.severity)} case.",
                created_at=now,
            )
        )
        session.commit()
        return True


def notify_pending(*, now: dt.datetime | None = None, mail: Transport | None = None) -> int:
    """Send the severe-case emails that did not go out at once (mail server down, say)."""
    now = now or utcnow()
    conf = cases.settings()
    ids = db.session.scalars(
        sa.select(Case.id).where(
            Case.notified_at.is_(None),
            Case.severity >= conf.notify_min_severity,
            Case.assignee_id.is_not(None),
            Case.status.in_(cases.ACTIVE_STATES),
            Case.opened_at >= now - RETRY_WINDOW,
        )
    ).all()
    db.session.commit()  # end the read, so the claims below see fresh rows
    return sum(notify_assignee(case_id, mail=mail) for case_id in ids)


# --- the daily digest ----------------------------------------------------------------------


def latest_digest_time(now: dt.datetime) -> dt.datetime | None:
    """The most recent working day's ``DIGEST_HOUR`` at or before ``now`` (UTC)."""
    calendar = cases.settings().calendar
    hour = cases.settings().digest_hour
    day = now.astimezone(calendar.tz).date()
    for _ in range(60):
        if calendar.is_working_day(day):
            moment = dt.datetime.combine(day, dt.time(hour), calendar.tz).astimezone(dt.UTC)
            if moment <= now:
                return moment
        day -= dt.timedelta(days=1)
    return None


def digest_recipients(boundary: dt.datetime | None) -> list[User]:
    """Active staff in ``DIGEST_ROLES`` without a digest since ``boundary`` (None: all)."""
    query = sa.select(User).where(
        User.active.is_(True), User.role.in_(cases.settings().digest_roles)
    )
    if boundary is not None:
        query = query.where(sa.or_(User.digest_sent_at.is_(None), User.digest_sent_at < boundary))
    return list(db.session.scalars(query.order_by(User.id)))


def digest_content(since: dt.datetime, now: dt.datetime) -> tuple[list[Case], list[Case], int, int]:
    """New cases since ``since`` and overdue cases now (first DIGEST_LIMIT of each, worst
    first), with the full counts."""
    load = (
        selectinload(Case.account),
        selectinload(Case.assignee),
        selectinload(Case.flags).selectinload(Flag.response).selectinload(Response.answers),
    )
    new_where = Case.opened_at >= since
    overdue_where = cases.overdue_clause(now)
    order = (Case.severity.desc(), Case.opened_at, Case.id)

    def fetch(where: t.Any) -> tuple[list[Case], int]:
        rows = db.session.scalars(
            sa.select(Case).where(where).options(*load).order_by(*order).limit(DIGEST_LIMIT)
        ).all()
        total = db.session.execute(sa.select(sa.func.count(Case.id)).where(where)).scalar_one()
        return list(rows), total

    new, new_total = fetch(new_where)
    overdue, overdue_total = fetch(overdue_where)
    return new, overdue, new_total, overdue_total


def digest_message(user: User, since: dt.datetime, now: dt.datetime) -> EmailMessage | None:
    """The digest for ``user``, or None on a day with nothing to tell: no new or overdue
    case, and no quieter health warning about an account they own."""
    new, overdue, new_total, overdue_total = digest_content(since, now)
    quiet = account_warnings.for_digest(user, now)
    if not new and not overdue and not quiet:
        return None
    message = emails.digest(
        user,
        new=new,
        overdue=overdue,
        new_total=new_total,
        overdue_total=overdue_total,
        tz=cases.settings().calendar.tz,
        warnings=[(w, account_warnings.warning_reasons(w)) for w in quiet],
    )
    account_warnings.mark_told(quiet, now)  # committed with the claim once it is sent
    return message


def send_digests(
    *, now: dt.datetime | None = None, force: bool = False, mail: Transport | None = None
) -> int:
    """Send today's digest to everyone who has not had it; returns how many were sent.

    Nothing goes out before ``DIGEST_HOUR`` on a working day unless ``force``; a digest
    with nothing new and nothing overdue is skipped (and counts as sent).
    """
    now = now or utcnow()
    boundary = None if force else latest_digest_time(now)
    if boundary is None and not force:
        return 0
    with mail or emails.transport() as mail:  # one SMTP connection for all of them
        return _send_digests(boundary, now, force, mail)


def _send_digests(
    boundary: dt.datetime | None, now: dt.datetime, force: bool, mail: Transport
) -> int:
    sent = 0
    for user in digest_recipients(boundary):
        previous = user.digest_sent_at
        where = [User.id == user.id]
        if not force:
            where.append(sa.or_(User.digest_sent_at.is_(None), User.digest_sent_at < boundary))
        claimed = rowcount(
            db.session.execute(sa.update(User).where(*where).values(digest_sent_at=now))
        )
        db.session.commit()
        if claimed != 1:
            continue
        since = previous or now - dt.timedelta(days=1)
        message = digest_message(user, since, now)
        if message is None:
            continue
        try:
            mail.send(message)
        except MailError as exc:
            log.warning("digest to %s refused: %s", user.email, exc)
            db.session.rollback()  # the warnings it told of are not told
            db.session.execute(
                sa.update(User).where(User.id == user.id).values(digest_sent_at=previous)
            )
            db.session.commit()
            continue
        db.session.commit()
        sent += 1
    return sent


def on_dispatch_tick(sender: t.Any, *, now: dt.datetime | None = None, **_: t.Any) -> None:
    """On ``dispatch_tick``: retry severe-case emails and send the digests that are due."""
    try:
        notify_pending(now=now)
        send_digests(now=now)
    except Exception:  # the invitations must keep going out whatever happens here
        db.session.rollback()
        log.exception("case notifications failed in this dispatcher pass")
