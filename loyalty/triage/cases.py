"""Cases: flagged feedback a support lead owns until the loop is closed.

A saved response is checked against the flag rules inside its own transaction (the
``response_saved`` signal), so a response is never stored without its flag and case. A new
flag joins its account's open case opened within ``CASE_JOIN_HOURS``, or opens one assigned
to the account's owner with a first-contact target on the business-hours clock. Every staff
action below records a history line; callers (views, commands) commit.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import checks, emails
from ..db import db
from ..i18n import text as ui_text
from ..models import (
    ACT_ROLES,
    CASE_OUTCOMES,
    CASE_STATES,
    Account,
    Case,
    CaseEvent,
    Contact,
    Flag,
    Response,
    User,
    utcnow,
)
from . import flags
from .settings import settings

#: Who may act on cases (executives only read): the one definition is in the models.
ACTING_ROLES = ACT_ROLES
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


def flag_on_save(
    sender: t.Any,
    *,
    response: Response,
    created: bool,
    now: dt.datetime | None = None,
    **_: t.Any,
) -> None:
    """On ``response_saved``: raise, change or clear the response's flag and its case."""
    flag_response(response, now=now, created=created)


# --- flags -------------------------------------------------------------------------------


def facts_for(response: Response) -> flags.Facts:
    """What the rules read of a response: its scores, its comments' sentiment, who sent it."""
    comments = tuple(
        flags.Comment(a.polarity, tuple(c for c in (a.cues or "").split(",") if c))
        for a in response.answers
        if a.text
    )
    account, contact = response.account, response.contact
    return flags.Facts(
        nps=response.nps,
        csat=response.csat,
        ces=response.ces,
        comments=comments,
        annual_value=account.annual_value if account.annual_value is not None else Decimal(0),
        segment=account.segment,
        decision_maker=bool(contact.is_decision_maker),
    )


def verdict_for(response: Response) -> flags.Verdict:
    conf = settings()
    return flags.evaluate(facts_for(response), conf.rules, conf.severity)


def flag_response(
    response: Response, *, now: dt.datetime | None = None, created: bool = False
) -> Flag | None:
    """Raise, update or clear the response's flag, opening or joining a case as needed.

    Imported history is never flagged: it is old news, and nobody can act on it now.
    ``created`` says the response is new, so it cannot have a flag yet (one query less
    on every survey submit).
    """
    if response.source != "survey":
        return None
    now = now or utcnow()
    verdict = verdict_for(response)
    flag = None
    if not created:
        flag = db.session.scalar(sa.select(Flag).where(Flag.response_id == response.id))
    rules = ",".join(verdict.rules)
    # What was decided is stored, so the case page shows why then, not what today's
    # settings would say.
    reasons = json.dumps(list(verdict.reasons), ensure_ascii=False) if verdict.flagged else None
    if flag is None:
        if not verdict.flagged:
            return None
        flag = Flag(
            response=response,
            rules=rules,
            severity=verdict.severity,
            reasons=reasons,
            created_at=now,
            updated_at=now,
        )
        db.session.add(flag)
        _attach(flag, now)
        return flag
    if (flag.rules, flag.severity) == (rules, verdict.severity):
        if verdict.flagged and flag.reasons != reasons:
            flag.reasons = reasons
        return flag
    old_rules, old_severity = flag.rules, flag.severity
    flag.rules, flag.severity, flag.updated_at = rules, verdict.severity, now
    flag.reasons = reasons if verdict.flagged else flag.reasons
    case = flag.case
    if case is None:
        if verdict.flagged:
            _attach(flag, now)
        return flag
    before = set(old_rules.split(",")) - {""}
    _record(
        case,
        "flag_changed",
        None,
        _flag_change_text(before, verdict),
        now=now,
        response_id=response.id,
        rules=list(verdict.rules),
        old_rules=sorted(before),
        severity=verdict.severity,
        old_severity=old_severity,
    )
    case.severity = max(f.severity for f in case.flags)
    case.updated_at = now
    worse = bool(set(verdict.rules) - before) or verdict.severity > old_severity
    if case.status == "resolved" and verdict.flagged and worse:
        reopen(case, None, "The customer changed their answer for the worse.", now=now)
    elif not verdict.flagged and _nothing_left_to_do(case):
        note = (
            "No answer in it is flagged any more and nobody had worked on it: resolved by itself."
        )
        resolve(case, None, "no_action_needed", note, now=now)
    _queue_notification(case)
    return flag


def _nothing_left_to_do(case: Case) -> bool:
    """True when no answer in the case is flagged any more and nobody has worked on it.

    A score tapped in the invitation email is saved at once and can open a case; when the
    customer then gives a better answer, the case should not wait for a person to close it.
    Once staff have done anything (status, note, contact), closing it stays their call.
    """
    if case.status != "open" or case.first_contact_at is not None:
        return False
    if any(f.rules for f in case.flags):
        return False
    return not db.session.scalar(
        sa.select(sa.func.count(CaseEvent.id)).where(
            CaseEvent.case_id == case.id, CaseEvent.user_id.is_not(None)
        )
    )


def _flag_change_text(before: set[str], verdict: flags.Verdict) -> str:
    if not verdict.flagged:
        return "The customer changed their answer; no rule fires any more."
    return (
        f"The customer changed their answer: {', '.join(verdict.rules)} "
        f"(before: {', '.join(sorted(before)) or 'none'}), "
        f"severity {flags.severity_name(verdict.severity)}."
    )


def _attach(flag: Flag, now: dt.datetime) -> Case:
    """Join the account's recent open case, or open a new one."""
    conf = settings()
    account_id = flag.response.account_id
    # The pending flag has no bearing on which case is open: don't flush it to ask.
    with db.session.no_autoflush:
        # Two answers from one account saved at the same moment must not open two cases.
        # PostgreSQL: lock the account's row until this transaction ends, so the second
        # waits and then finds the first one's case. SQLite has one writer at a time, and
        # the response is already written (flushed) by now, so it is serialised already.
        db.session.execute(sa.select(Account.id).where(Account.id == account_id).with_for_update())
        case = db.session.scalar(
            sa.select(Case)
            .where(
                Case.account_id == account_id,
                Case.status.in_(ACTIVE_STATES),
                Case.opened_at >= now - conf.join_window,
            )
            .order_by(Case.opened_at.desc(), Case.id.desc())
            .limit(1)
        )
    if case is None:
        return open_case(flag, now=now)
    flag.case = case
    case.severity = max(case.severity, flag.severity)
    case.updated_at = now
    _record(
        case,
        "flag_joined",
        None,
        f"Another flagged answer from {flag.response.contact.name}: {_rules_text(flag.rules)}.",
        now=now,
        response_id=flag.response_id,
        rules=flag.rules.split(","),
        severity=flag.severity,
    )
    _queue_notification(case)
    return case


def default_assignee(account: Account) -> User | None:
    """The account's owner when they can act on cases, else ``CASE_DEFAULT_ASSIGNEE``."""
    owner = account.owner
    if owner is not None and owner.active and owner.role in ACTING_ROLES:
        return owner
    email = settings().default_assignee
    if email:
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None and user.active and user.role in ACTING_ROLES:
            return user
    return None


def open_case(flag: Flag, *, now: dt.datetime | None = None) -> Case:
    """Open a case for ``flag``; the first-contact clock starts now."""
    now = now or utcnow()
    conf = settings()
    account = db.session.get(Account, flag.response.account_id)
    assignee = default_assignee(account)
    case = Case(
        account=account,
        assignee=assignee,
        status="open",
        severity=flag.severity,
        opened_at=now,
        first_contact_due_at=conf.calendar.add(now, conf.first_contact_hours),
        updated_at=now,
        language=flag.response.language,
    )
    db.session.add(case)
    flag.case = case
    _record(
        case,
        "opened",
        None,
        f"Opened for {flag.response.contact.name}: {_rules_text(flag.rules)}; "
        f"assigned to {assignee.email if assignee else 'nobody'}.",
        now=now,
        response_id=flag.response_id,
        rules=flag.rules.split(","),
        severity=flag.severity,
        assignee_id=assignee.id if assignee else None,
    )
    _queue_notification(case)
    return case


def _rules_text(rules: str) -> str:
    return ", ".join(r.replace("_", " ") for r in rules.split(",") if r) or "no rule"


def _queue_notification(case: Case) -> None:
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


def _record(
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
    if actor.role not in ACTING_ROLES:
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


def assign(
    case: Case, actor: User, assignee: User | None, *, now: dt.datetime | None = None
) -> None:
    _require_actor(actor)
    now = now or utcnow()
    if assignee is not None and (not assignee.active or assignee.role not in ACTING_ROLES):
        raise CaseError("Cases can only be assigned to active support or admin staff.")
    if case.assignee_id == (assignee.id if assignee else None):
        return
    old = case.assignee
    case.assignee = assignee
    _touch(case, now)
    _record(
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
    event = _record(case, "note", actor, _clean_text(body, "note"), now=now)
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
    event = _record(
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
    _record(
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
    _record(
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
    _record(
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
    event = _record(
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


def flag_reasons(flag: Flag) -> tuple[str, ...]:
    """Why the flag's severity is what it is, as decided when it was raised or changed."""
    try:
        reasons = json.loads(flag.reasons) if flag.reasons else []
    except ValueError:
        return ()
    return tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()


def event_detail(event: CaseEvent) -> dict[str, t.Any]:
    try:
        return json.loads(event.detail) if event.detail else {}
    except ValueError:
        return {}


def assignable_users() -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.active.is_(True), User.role.in_(ACTING_ROLES))
            .order_by(User.email)
        )
    )


def state_names() -> dict[str, str]:
    return {state: STATE_NAMES[state] for state in CASE_STATES}
