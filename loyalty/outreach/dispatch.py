"""Sending invitations and reminders that are due, each at most once.

One pass (:func:`send_due`) claims due invitations one at a time: a committed update
(``scheduled`` -> ``sending``) taken before the email goes out, so a second dispatcher or
a restarted one never sends it again. On PostgreSQL the claim picks its row with
``FOR UPDATE SKIP LOCKED``, so several dispatchers share the work without waiting on each
other; SQLite runs one writer at a time and the same conditional update is enough.

Claiming one row at a time (not a batch) means a dispatcher killed mid-pass leaves at most
one invitation in ``sending``. Just before the SMTP transaction begins, ``send_began_at``
is committed. After :data:`SENDING_TIMEOUT` a claim without it goes back to the queue (no
email can have left); one with it may have been delivered, so it is never retried but
marked failed, saying a person should check.

A failed delivery goes back to ``scheduled`` with a growing delay until the last attempt,
after which it is ``failed`` with the server's answer. Reminders are claimed the same way
(``reminder_due_at`` moved on by :data:`SENDING_TIMEOUT`, a lease), and ``reminder_sent_at``
is committed just before the send: a reminder whose dispatcher died before that is due
again once the lease is over, one whose send began is never sent again, so none is lost
to a crash before its send and none is sent twice.
Webhook deliveries are an outbox too and are posted in the same pass.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import typing as t
from dataclasses import dataclass, fields

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from .. import emails
from ..db import db, rowcount
from ..mailer import MailError, Transport
from ..models import Invitation, UTCDateTime, utcnow
from ..signals import dispatch_tick
from ..specs import surveys
from . import scheduling, webhooks

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.local import LocalProxy


MAX_ATTEMPTS = 4
RETRY_DELAYS = (dt.timedelta(minutes=5), dt.timedelta(minutes=30), dt.timedelta(hours=2))
REMINDER_MAX_ATTEMPTS = 3
#: an invitation still ``sending`` this long after its claim was cut off mid-send
SENDING_TIMEOUT = dt.timedelta(minutes=15)


@dataclass
class DispatchResult:
    sent: int = 0
    skipped: int = 0
    retrying: int = 0
    failed: int = 0
    reminded: int = 0
    interrupted: int = 0
    webhooks_delivered: int = 0
    webhooks_retrying: int = 0
    webhooks_failed: int = 0

    def __str__(self) -> str:
        return ", ".join(
            f"{f.name.replace('_', ' ')} {getattr(self, f.name)}" for f in fields(self)
        )

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


def _claim(due: sa.ColumnElement[bool], order: t.Sequence[t.Any], **values: t.Any) -> int | None:
    """Take the first invitation matching ``due`` with one committed, conditional update;
    None when there is none left (or another dispatcher holds every one)."""
    first = (
        sa.select(Invitation.id)
        .where(due)
        .order_by(*order)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == first, due)
        .values(**values)
        .returning(Invitation.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    db.session.commit()
    return claimed


def send_due(
    *,
    now: dt.datetime | None = None,
    mail: Transport | None = None,
    stop: t.Callable[[], bool] = lambda: False,
) -> DispatchResult:
    """One pass: send every invitation and reminder due now, post due webhooks, then tell
    ``dispatch_tick`` listeners. ``stop`` is asked between messages."""
    now = now or utcnow()
    with mail or emails.transport() as mail:  # one SMTP connection for the whole pass
        result = _send_all_due(now, mail, stop)
    hooks = webhooks.deliver_due(now=now, stop=stop)
    result.webhooks_delivered, result.webhooks_retrying = hooks.delivered, hooks.retrying
    result.webhooks_failed = hooks.failed
    dispatch_tick.send(t.cast("LocalProxy[Flask]", current_app)._get_current_object(), now=now)
    return result


def _send_all_due(now: dt.datetime, mail: Transport, stop: t.Callable[[], bool]) -> DispatchResult:
    result = DispatchResult()
    result.interrupted = _fail_interrupted(now)
    due = sa.and_(Invitation.status == "scheduled", Invitation.due_at <= now)
    while not stop():
        invitation_id = _claim(
            due,
            (Invitation.due_at, Invitation.id),
            status="sending",
            attempts=Invitation.attempts + 1,
            # when taken, not when the pass began: a long pass's claim is not "old" to a
            # dispatcher starting meanwhile, which would queue it again and send it too
            claimed_at=utcnow(),
        )
        if invitation_id is None:
            break
        _send(_claimed(invitation_id), now, mail, result)
    reminder_due = sa.and_(
        Invitation.status == "sent",
        Invitation.reminder_due_at.is_not(None),
        Invitation.reminder_due_at <= now,
        Invitation.reminder_sent_at.is_(None),  # one whose send began is never tried again
    )
    while not stop():
        invitation_id = _claim(
            reminder_due,
            (Invitation.reminder_due_at, Invitation.id),
            # A lease, not a removal: a dispatcher killed before the send began leaves the
            # reminder due again once the lease is over, so it is sent, once.
            reminder_due_at=utcnow() + SENDING_TIMEOUT,
            reminder_attempts=Invitation.reminder_attempts + 1,
        )
        if invitation_id is None:
            break
        _remind(_claimed(invitation_id), now, mail, result)
    return result


_WITH_CONTACT = [joinedload(Invitation.contact)]


def _claimed(invitation_id: int) -> Invitation:
    """The invitation :func:`_claim` just took, with its contact."""
    invitation = db.session.get(Invitation, invitation_id, options=_WITH_CONTACT)
    if invitation is None:  # cannot happen: claimed by id just now, and never deleted
        raise LookupError(f"invitation {invitation_id} is gone right after its claim")
    return invitation


def _send(invitation: Invitation, now: dt.datetime, mail: Transport, result: DispatchResult):
    contact = invitation.contact
    if not contact.reachable:  # unsubscribed, bounced or erased since it was scheduled
        invitation.status, invitation.skip_reason = "skipped", contact.unreachable_reason
        result.skipped += 1
    elif now >= invitation.expires_at:
        invitation.status, invitation.skip_reason = "skipped", "expired"
        result.skipped += 1
    else:
        try:
            message = emails.invitation(invitation)
        except Exception as exc:  # noqa: BLE001 - recorded on the invitation, not lost
            current_app.logger.exception("invitation %s: building the email failed", invitation.id)
            invitation.status, invitation.last_error = "failed", f"building the email: {exc}"
            result.failed += 1
            db.session.commit()
            return
        # read before the commit: after it, reading them would need the database
        invitation_id, expires_at, survey_id = (
            invitation.id,
            invitation.expires_at,
            invitation.survey,
        )
        invitation.send_began_at = utcnow()
        db.session.commit()  # from here on the email may leave
        try:
            mail.send(message)
        except MailError as exc:
            invitation.last_error = str(exc)[:2000]
            if invitation.attempts >= MAX_ATTEMPTS:
                invitation.status = "failed"
                result.failed += 1
            else:
                invitation.status, invitation.send_began_at = "scheduled", None
                invitation.due_at = now + RETRY_DELAYS[invitation.attempts - 1]
                result.retrying += 1
        else:
            reminder = scheduling.reminder_due(now, expires_at, _reminder_after(survey_id))
            _record_delivered(
                invitation_id, {"status": "sent", "sent_at": now, "reminder_due_at": reminder}
            )
            result.sent += 1
            return
    db.session.commit()


#: seconds between tries to record an email the mail server took, while the database is away
RECORD_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def _record_delivered(invitation_id: int, values: dict[str, t.Any]) -> None:
    """Record an email the mail server has accepted, waiting out a database that is away
    for a moment (a restart, a failover: about half a minute in all).

    The email has left, so the invitation must say ``sent``: left in ``sending`` it would be
    marked failed later ("may have been delivered, check the mail server's log") although
    the dispatcher knew it was delivered. Found by ``tests/benchmarks/bench_faults.py``
    with PostgreSQL restarted mid-load.
    """
    update = (
        sa.update(Invitation)
        .where(Invitation.id == invitation_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for delay in (*RECORD_RETRY_DELAYS, None):
        try:
            db.session.execute(update)
            db.session.commit()
            return
        except OperationalError:
            db.session.rollback()
            if delay is None:
                raise
            current_app.logger.warning(
                "invitation %s was delivered but the database is away; recording it in %s s",
                invitation_id,
                delay,
            )
            time.sleep(delay)


def _reminder_after(survey_id: str) -> dt.timedelta:
    survey = surveys(current_app).get(survey_id)
    if survey and survey.schedule and survey.schedule.reminder_after is not None:
        return survey.schedule.reminder_after
    return dt.timedelta(days=int(current_app.config["REMINDER_DAYS"]))


def _remind(invitation: Invitation, now: dt.datetime, mail: Transport, result: DispatchResult):
    """Send the one reminder, unless the invitation was answered, has expired or its
    contact can no longer be reached; then no reminder is ever sent."""
    if (
        invitation.response is not None
        or now >= invitation.expires_at
        or not invitation.contact.reachable
    ):
        invitation.reminder_sent_at = None
        invitation.reminder_due_at = None
    else:
        message = emails.invitation(invitation, reminder=True)
        invitation.reminder_sent_at = now  # the send begins: never tried again after this
        db.session.commit()
        try:
            mail.send(message)
        except MailError as exc:
            invitation.reminder_sent_at = None
            invitation.last_error = f"reminder: {exc}"[:2000]
            invitation.reminder_due_at = None
            if invitation.reminder_attempts < REMINDER_MAX_ATTEMPTS:
                retry = now + RETRY_DELAYS[invitation.reminder_attempts - 1]
                invitation.reminder_due_at = retry if retry < invitation.expires_at else None
        else:
            invitation.reminder_due_at = None
            result.reminded += 1
    db.session.commit()


def _fail_interrupted(now: dt.datetime) -> int:
    """Invitations left in ``sending`` by a dispatcher that died: one whose send never began
    goes back to the queue; one whose send began may have gone out, so it is not tried again
    but marked failed, saying why. Answers how many were marked failed."""
    stale = sa.and_(
        Invitation.status == "sending",
        sa.or_(Invitation.claimed_at.is_(None), Invitation.claimed_at < now - SENDING_TIMEOUT),
    )
    db.session.execute(
        sa.update(Invitation)
        .where(stale, Invitation.send_began_at.is_(None))
        .values(status="scheduled", claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    count = rowcount(
        db.session.execute(
            sa.update(Invitation)
            .where(stale)
            .values(
                status="failed",
                last_error="interrupted: the dispatcher stopped while sending this invitation; "
                "it may have been delivered, so it is not sent again: check with the mail "
                "server's log whether it left",
            )
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    return count


def mark_answered(
    sender: Flask,
    *,
    invitation_id: int | None,
    complete: bool,
    now: dt.datetime,
    **_: t.Any,
) -> None:
    """On ``response_saved``: the invitation is answered (when complete), and an answer,
    even a tapped score, means no reminder.

    In the answer's own transaction, not in its follow-up: a dispatcher pass between the
    answer's commit and its follow-up would otherwise remind someone who has answered (the
    reminder's claim reads ``reminder_due_at``, so once this commits no pass can take it)."""
    if invitation_id is None:
        return
    # One Core statement, built once: the ORM's bulk update cost a submit more than all its
    # other writes together.
    statement = _ANSWERED if complete else _ANSWERED_IN_PART
    db.session.connection().execute(statement, {"b_id": invitation_id, "b_now": now})
    loaded = db.session.identity_map.get(identity_key(Invitation, invitation_id))
    if loaded is not None:  # saved through the ORM: its object learns of it too
        set_committed_value(loaded, "reminder_due_at", None)
        if complete:
            set_committed_value(loaded, "answered_at", now)


_INVITATIONS = t.cast(sa.Table, Invitation.__table__)
_ANSWERED_IN_PART = (
    sa.update(_INVITATIONS)
    .where(_INVITATIONS.c.id == sa.bindparam("b_id"), _INVITATIONS.c.reminder_due_at.is_not(None))
    .values(reminder_due_at=None)
)
_ANSWERED = (
    sa.update(_INVITATIONS)
    .where(_INVITATIONS.c.id == sa.bindparam("b_id"))
    .values(reminder_due_at=None, answered_at=sa.bindparam("b_now", type_=UTCDateTime()))
)


# --- Running it --------------------------------------------------------------------------


def run_loop(
    interval: float, *, stop: threading.Event, echo: t.Callable[[str], t.Any] = print
) -> None:
    """Pass after pass until ``stop`` is set; a pass that fails is logged and retried at
    the next turn, so a database restart does not end the dispatcher."""
    while not stop.is_set():
        try:
            result = send_due(stop=stop.is_set)
        except Exception:  # noqa: BLE001 - a long-running process logs and carries on
            db.session.rollback()
            current_app.logger.exception("dispatch pass failed; trying again in %ss", interval)
        else:
            if result:
                echo(f"{utcnow():%Y-%m-%d %H:%M:%S} {result}")
        db.session.remove()
        stop.wait(interval)
