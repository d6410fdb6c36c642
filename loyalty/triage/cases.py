"""Cases: flagged feedback a support lead owns until the loop is closed.

Every staff action below (assign, note, contact, status, resolve, reopen, reply) records a
line in the case's history with who and when; callers (views, commands) commit. How an
answer becomes a flag and a case is :mod:`.flagging`; the SLA clock's questions (overdue?
how many business hours?) are answered here.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import checks, emails
from ..accounts.rollup import mark_stale
from ..db import db
from ..i18n import text as ui_text
from ..models import (
    ACT_ROLES,
    CASE_OUTCOMES,
    CASE_STATES,
    Case,
    CaseEvent,
    Contact,
    User,
    utcnow,
)
from .settings import settings

ACTIVE_STATES = ("open", "in_progress", "waiting_on_customer")
CONTACT_CHANNELS = ("phone", "email", "meeting", "other")
NOTE_MAX_LENGTH = 5_000
STATE_NAMES = {
    "open": "Open",
    "in_progress": "In progress",
    "waiting_on_customer": "Waiting on customer",
    "resolved": "Resolved",
}
OUTCOME_NAMES = {
    "recovered": "Recovered",
    "not_recovered": "Not recovered",
    "no_action_needed": "No action needed",
}


#: the ``Session.info`` key of the cases whose assignee is emailed once the session commits
NOTIFY_AFTER_COMMIT = "loyalty.notify_cases"


class CaseError(ValueError):
    """A staff action that cannot be done; the message says why, for the person."""


def queue_notification(case: Case) -> None:
    """Email the assignee once the transaction commits, if the case is severe enough.

    The case waits in its session's ``info``; :mod:`.notifications` sends after the commit
    (and forgets it on a rollback), so nobody hears of a case that was never stored.
    """
    if case.notified_at is None and case.severity >= settings().notify_min_severity:
        session = Session.object_session(case) or db.session()
        session.info.setdefault(NOTIFY_AFTER_COMMIT, []).append(case)


# --- the SLA clock -------------------------------------------------------------------------


def is_overdue(case: Case, now: dt.datetime | None = None) -> bool:
    """Past its first-contact target with nobody having contacted the customer yet."""
    return (
        case.status in ACTIVE_STATES
        and case.first_contact_at is None
        and case.first_contact_due_at <= (now or utcnow())
    )


def overdue_clause(now: dt.datetime) -> sa.ColumnElement[bool]:
    """:func:`is_overdue` as SQL."""
    return sa.and_(
        Case.status.in_(ACTIVE_STATES),
        Case.first_contact_at.is_(None),
        Case.first_contact_due_at <= now,
    )


def business_hours(start: dt.datetime, end: dt.datetime | None) -> float | None:
    return None if end is None else settings().calendar.between(start, end)


# --- staff actions -------------------------------------------------------------------------


def add_history(
    case: Case,
    kind: str,
    actor: User | None,
    body: str | None = None,
    *,
    now: dt.datetime | None = None,
    **detail: t.Any,
) -> CaseEvent:
    # Setting the case (not appending to case.history) leaves an unloaded history unloaded:
    # a busy case's whole history is not read just to add a line to it.
    event = CaseEvent(
        case=case,
        kind=kind,
        user=actor,
        body=body,
        detail=json.dumps(detail, ensure_ascii=False, default=str) if detail else None,
        created_at=now or utcnow(),
    )
    db.session.add(event)
    return event


def _require_actor(actor: User) -> None:
    if actor.role not in ACT_ROLES:
        raise CaseError("Only support and admin staff can act on cases.")


def _clean_text(value: str | None, what: str, *, required: bool = True) -> str:
    text = (value or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise CaseError(f"Please write the {what}.")
    if len(text) > NOTE_MAX_LENGTH:
        raise CaseError(f"The {what} is {len(text)} characters; at most {NOTE_MAX_LENGTH} fit.")
    if not checks.is_free_text(text):
        raise CaseError(f"The {what} contains control characters; please type it again.")
    return text


def _touch(case: Case, now: dt.datetime) -> None:
    case.updated_at = now
    mark_stale(case.account_id)  # open, overdue and lost cases count in account health


def assign(
    case: Case, actor: User, assignee: User | None, *, now: dt.datetime | None = None
) -> None:
    _require_actor(actor)
    now = now or utcnow()
    if assignee is not None and (not assignee.active or assignee.role not in ACT_ROLES):
        raise CaseError("Cases can only be assigned to active support or admin staff.")
    if case.assignee_id == (assignee.id if assignee else None):
        return
    old = case.assignee
    case.assignee = assignee
    _touch(case, now)
    add_history(
        case,
        "assigned",
        actor,
        f"Assigned to {assignee.email if assignee else 'nobody'}"
        f" (was {old.email if old else 'nobody'}).",
        now=now,
        assignee_id=assignee.id if assignee else None,
        old_assignee_id=old.id if old else None,
    )


def add_note(case: Case, actor: User, body: str, *, now: dt.datetime | None = None) -> CaseEvent:
    _require_actor(actor)
    now = now or utcnow()
    event = add_history(case, "note", actor, _clean_text(body, "note"), now=now)
    _touch(case, now)
    return event


def _first_contact(case: Case, actor: User, now: dt.datetime) -> None:
    """The SLA clock's first stop; an open case is now in progress."""
    if case.first_contact_at is None:
        case.first_contact_at = now
    if case.status == "open":
        set_status(case, actor, "in_progress", now=now)


def log_contact(
    case: Case, actor: User, channel: str, body: str, *, now: dt.datetime | None = None
) -> CaseEvent:
    """Record a phone call, meeting or other contact with the customer."""
    _require_actor(actor)
    if channel not in CONTACT_CHANNELS:
        raise CaseError(f"Choose how you contacted the customer: {', '.join(CONTACT_CHANNELS)}.")
    if case.status == "resolved":
        raise CaseError("The case is resolved; reopen it first.")
    now = now or utcnow()
    event = add_history(
        case,
        "contact",
        actor,
        _clean_text(body, "summary of the contact"),
        now=now,
        channel=channel,
    )
    _first_contact(case, actor, now)
    _touch(case, now)
    return event


def set_status(case: Case, actor: User, status: str, *, now: dt.datetime | None = None) -> None:
    """Move an unresolved case between open, in progress and waiting on the customer."""
    _require_actor(actor)
    if status not in ACTIVE_STATES:
        raise CaseError(
            "Choose open, in progress or waiting on customer; resolve with an outcome instead."
        )
    if case.status == "resolved":
        raise CaseError("The case is resolved; reopen it first.")
    if case.status == status:
        return
    now = now or utcnow()
    old, case.status = case.status, status
    _touch(case, now)
    add_history(
        case,
        "status",
        actor,
        f"{STATE_NAMES[old]} → {STATE_NAMES[status]}",
        now=now,
        old=old,
        new=status,
    )


def resolve(
    case: Case,
    actor: User | None,
    outcome: str,
    note: str = "",
    *,
    now: dt.datetime | None = None,
) -> None:
    """Close the loop; ``actor`` None is the system (nothing left to do, see flag_response)."""
    if actor is not None:
        _require_actor(actor)
    if outcome not in CASE_OUTCOMES:
        raise CaseError("Choose an outcome: recovered, not recovered or no action needed.")
    if case.status == "resolved":
        raise CaseError("The case is already resolved.")
    now = now or utcnow()
    text = _clean_text(note, "note", required=False)
    old = case.status
    case.status, case.outcome, case.resolved_at = "resolved", outcome, now
    _touch(case, now)
    add_history(
        case,
        "resolved",
        actor,
        f"Resolved: {OUTCOME_NAMES[outcome]}." + (f"\n{text}" if text else ""),
        now=now,
        outcome=outcome,
        old=old,
    )


def reopen(
    case: Case, actor: User | None, reason: str = "", *, now: dt.datetime | None = None
) -> None:
    """Open a resolved case again; ``actor`` None is the system (the customer's new answer)."""
    if actor is not None:
        _require_actor(actor)
    if case.status != "resolved":
        raise CaseError("Only a resolved case can be reopened.")
    now = now or utcnow()
    text = _clean_text(reason, "reason", required=False)
    old_outcome = case.outcome
    case.status, case.outcome, case.resolved_at = "open", None, None
    _touch(case, now)
    add_history(
        case,
        "reopened",
        actor,
        "Reopened." + (f"\n{text}" if text else ""),
        now=now,
        old_outcome=old_outcome,
    )


# --- closing the loop by email -------------------------------------------------------------


def reply_contacts(case: Case) -> list[Contact]:
    """Who a reply can go to: the customers whose answers the case holds, first to last."""
    seen: dict[int, Contact] = {}
    for flag in case.flags:
        contact = flag.response.contact
        if contact.erased_at is None:
            seen.setdefault(contact.id, contact)
    return list(seen.values())


def default_reply(contact: Contact) -> str:
    """The reply's starting text in the customer's language; the support lead edits it."""
    return ui_text("case_reply_body", contact.language)


def send_reply(
    case: Case, actor: User, contact: Contact, body: str, *, now: dt.datetime | None = None
) -> CaseEvent:
    """Email the customer through the configured transport and record it.

    Sent before anything is recorded: a refused message leaves the case as it was and raises
    :class:`~loyalty.mailer.MailError` for the caller to show.
    """
    _require_actor(actor)
    if contact.id not in {c.id for c in reply_contacts(case)}:
        raise CaseError("Replies go to a customer whose answer is in this case.")
    text = _clean_text(body, "reply")
    message = emails.case_reply(actor, contact, text)
    emails.transport().send(message)
    now = now or utcnow()
    event = add_history(
        case,
        "email_sent",
        actor,
        text,
        now=now,
        to=contact.email,
        contact_id=contact.id,
        language=contact.language,
        subject=str(message["Subject"]),
        message_id=str(message["Message-ID"]),
    )
    _first_contact(case, actor, now)
    _touch(case, now)
    return event


# --- reading -------------------------------------------------------------------------------


def event_detail(event: CaseEvent) -> dict[str, t.Any]:
    try:
        return json.loads(event.detail) if event.detail else {}
    except ValueError:
        return {}


def assignable_users() -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.active.is_(True), User.role.in_(ACT_ROLES))
            .order_by(User.email)
        )
    )


def state_names() -> dict[str, str]:
    return {state: STATE_NAMES[state] for state in CASE_STATES}
