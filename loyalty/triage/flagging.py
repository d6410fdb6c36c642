"""From a saved answer to a flag and a case: the rules, the severity, and who gets it.

A saved response is checked against the flag rules by its follow-up (the
``response_committed`` signal, connected in ``create_app``), seconds after the customer's
reply, in the transaction that removes the follow-up's outbox row: a response committed
always gets its flag and case, once. A new flag joins its account's open case opened within
``CASE_JOIN_HOURS``, or opens one assigned to the account's owner with a first-contact
target on the business-hours clock. What was decided (the rules that fired, the severity
and why) is stored with the flag, so the case page shows it as it was decided.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from decimal import Decimal

import sqlalchemy as sa

from ..db import db, once_per_transaction
from ..models import ACT_ROLES, Account, Case, CaseEvent, Flag, Response, User, utcnow
from ..survey.responses import stored_themes
from . import cases, flags
from .settings import settings


def flag_on_save(
    sender: t.Any,
    *,
    response: Response,
    created: bool,
    now: dt.datetime | None = None,
    **_: t.Any,
) -> None:
    """On ``response_committed``: raise, change or clear the response's flag and its case.

    ``created`` is not passed on: follow-ups of one response may run out of order (two
    workers), so its flag is always looked up rather than assumed not to exist yet."""
    flag_response(response, now=now)


# --- flags -------------------------------------------------------------------------------


def facts_for(response: Response) -> flags.Facts:
    """What the rules read of a response: its scores, its comments' sentiment, who sent it."""
    comments = tuple(
        flags.Comment(
            a.polarity,
            tuple(c for c in (a.cues or "").split(",") if c),
            tuple((th["id"], str(th.get("sentiment"))) for th in stored_themes(a)),
        )
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
        flag = _made_here(("flag", response.id)) or db.session.scalar(
            sa.select(Flag).where(Flag.response_id == response.id)
        )
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
        _made_here()[("flag", response.id)] = flag
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
    cases.add_history(
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
        cases.reopen(case, None, "The customer changed their answer for the worse.", now=now)
    elif not verdict.flagged and _nothing_left_to_do(case):
        note = (
            "No answer in it is flagged any more and nobody had worked on it: resolved by itself."
        )
        cases.resolve(case, None, "no_action_needed", note, now=now)
    cases.queue_notification(case)
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


def lock_account(account_id: int) -> None:
    """Hold the account's row until this transaction ends (PostgreSQL; SQLite ignores it).

    FOR NO KEY UPDATE: the account's customers keep saving their answers meanwhile (their
    rows' foreign keys take FOR KEY SHARE on it), though a follow-up batch holds it until it
    commits; a second locker waits."""
    db.session.execute(
        sa.select(Account.id).where(Account.id == account_id).with_for_update(key_share=True)
    )


def _attach(flag: Flag, now: dt.datetime) -> Case:
    """Join the account's recent open case, or open a new one."""
    conf = settings()
    account_id = flag.response.account_id
    # A case this transaction opened or joined for the account is the one (a follow-up
    # batch flushes once, at its end: a query would not see a case opened a row before).
    case = _made_here(("case", account_id))
    if case is not None and not (
        case.status in cases.ACTIVE_STATES and case.opened_at >= now - conf.join_window
    ):
        case = None
    if case is None:
        # The pending flag has no bearing on which case is open: don't flush it to ask.
        with db.session.no_autoflush:
            # Two answers from one account saved at the same moment must not open two
            # cases. PostgreSQL: lock the account's row until this transaction ends, so the
            # second waits and then finds the first one's case. SQLite has one writer at a
            # time, and the response is already written by now, so it is serialised.
            lock_account(account_id)
            case = db.session.scalar(
                sa.select(Case)
                .where(
                    Case.account_id == account_id,
                    Case.status.in_(cases.ACTIVE_STATES),
                    Case.opened_at >= now - conf.join_window,
                )
                .order_by(Case.opened_at.desc(), Case.id.desc())
                .limit(1)
            )
    if case is None:
        case = open_case(flag, now=now)
        _made_here()[("case", account_id)] = case
        return case
    _made_here()[("case", account_id)] = case
    flag.case = case
    case.severity = max(case.severity, flag.severity)
    case.updated_at = now
    cases.add_history(
        case,
        "flag_joined",
        None,
        f"Another flagged answer from {flag.response.contact.name}: {_rules_text(flag.rules)}.",
        now=now,
        response_id=flag.response_id,
        rules=flag.rules.split(","),
        severity=flag.severity,
    )
    cases.queue_notification(case)
    return case


def _made_here(key: tuple[str, int] | None = None) -> t.Any:
    """The flags (by response) and cases (by account) this transaction made or joined, or
    the one under ``key`` if it is still in the session (a savepoint rolled back drops
    what it made)."""
    made = once_per_transaction("triage.made_here", dict)
    if key is None:
        return made
    found = made.get(key)
    return found if found is not None and found in db.session else None


def default_assignee(account: Account) -> User | None:
    """The account's owner when they can act on cases, else ``CASE_DEFAULT_ASSIGNEE``."""
    owner = account.owner
    if owner is not None and owner.active and owner.role in ACT_ROLES:
        return owner
    email = settings().default_assignee
    if email:
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None and user.active and user.role in ACT_ROLES:
            return user
    return None


def triage_lead_warning() -> str | None:
    """Why a case of an account with no owner would go to nobody, or None when it would
    reach someone: said at start-up (``make run``), not found out from a silent case."""
    email = settings().default_assignee
    setting = "LOYALTY_CASE_DEFAULT_ASSIGNEE (or CASE_DEFAULT_ASSIGNEE in instance/config.py)"
    if not email:
        return (
            "Warning: no triage lead is set, so a case of an account with no owner is assigned "
            f"to nobody and emails nobody. Set {setting} to the email of a support or admin user."
        )
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None or not user.active or user.role not in ACT_ROLES:
        return (
            f"Warning: the triage lead {email} is not an active support or admin user, so a "
            f"case of an account with no owner is assigned to nobody. Create that user or "
            f"change {setting}."
        )
    return None


def open_case(flag: Flag, *, now: dt.datetime | None = None) -> Case:
    """Open a case for ``flag``; the first-contact clock starts now."""
    now = now or utcnow()
    conf = settings()
    account = db.session.get(Account, flag.response.account_id)
    assert account is not None  # a response's account_id is a non-null foreign key
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
    cases.add_history(
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
    cases.queue_notification(case)
    return case


def _rules_text(rules: str) -> str:
    return ", ".join(r.replace("_", " ") for r in rules.split(",") if r) or "no rule"


def flag_reasons(flag: Flag) -> tuple[str, ...]:
    """Why the flag's severity is what it is, as decided when it was raised or changed."""
    try:
        reasons = json.loads(flag.reasons) if flag.reasons else []
    except ValueError:
        return ()
    return tuple(str(r) for r in reasons) if isinstance(reasons, list) else ()
