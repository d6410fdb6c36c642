"""The triage queue's query: filters, a keyset cursor and the rows of one page.

The queue lists cases worst first: overdue, then severity, then age. It pages by keyset (a
cursor of the last row's sort key), so the thousandth page costs what the first does, and
loads each page's accounts, assignees, flags and comments in a fixed number of queries.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa

from .. import checks
from ..db import db
from ..models import (
    LANGUAGES,
    SEGMENTS,
    Account,
    Answer,
    Case,
    Contact,
    Flag,
    Response,
    User,
    utcnow,
)
from . import cases
from .flags import SEVERITY_NAMES

PAGE_SIZE = 50
STATUS_FILTERS = {
    "active": "Not resolved",
    "open": "Open",
    "in_progress": "In progress",
    "waiting_on_customer": "Waiting on customer",
    "resolved": "Resolved",
    "all": "All",
}
#: Larger ids cannot be stored (SQLite and PostgreSQL integers), so they are simply unknown.
MAX_ID = 2**31 - 1
_CURSOR = re.compile(r"^([01])\.([0-9]{1,2})\.([0-9]{1,19})\.([0-9]{1,19})$")


@dataclass(frozen=True)
class Filters:
    status: str = "active"
    assignee: str = ""  # "", "me", "none" or a user id
    account: str = ""  # part of the account's name
    segment: str = ""
    language: str = ""
    severity: int = 0  # at least this severe

    def args(self) -> dict[str, str]:
        """The filters as query arguments, leaving out the defaults."""
        values = {
            "status": self.status if self.status != "active" else "",
            "assignee": self.assignee,
            "account": self.account,
            "segment": self.segment,
            "language": self.language,
            "severity": str(self.severity) if self.severity else "",
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last row shown: the next page starts after it."""

    overdue: int
    severity: int
    opened_at: dt.datetime
    id: int

    def encode(self) -> str:
        micros = int(self.opened_at.timestamp() * 1_000_000)
        return f"{self.overdue}.{self.severity}.{micros}.{self.id}"

    @classmethod
    def decode(cls, value: str) -> Cursor:
        match = _CURSOR.match(value)
        if not match:
            raise cases.CaseError("That page link is not valid; start again from the first page.")
        overdue, severity, micros, case_id = (int(g) for g in match.groups())
        if case_id > MAX_ID:
            raise cases.CaseError("That page link is not valid; start again.")
        try:
            opened = dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise cases.CaseError("That page link is not valid; start again.") from None
        return cls(overdue, severity, opened, case_id)


@dataclass(frozen=True)
class QueueRow:
    """What the queue shows of one case; read with plain SQL rows, not ORM objects, so
    a page of fifty costs a few milliseconds."""

    id: int
    overdue: bool
    severity: int
    status: str
    opened_at: dt.datetime
    first_contact_due_at: dt.datetime
    first_contact_at: dt.datetime | None
    account: str
    segment: str
    assignee: str | None
    contact: str = ""
    language: str = ""
    answers: int = 0
    rules: tuple[str, ...] = ()
    excerpt: str = ""


@dataclass
class QueuePage:
    rows: list[QueueRow]
    total: int
    next_cursor: str | None


def parse_filters(args: t.Mapping[str, str]) -> Filters:
    """Read the queue's filters from a query string; raise CaseError naming a bad one."""
    status = args.get("status", "") or "active"
    if status not in STATUS_FILTERS:
        raise cases.CaseError(f"Unknown status {status!r}; choose one of the listed statuses.")
    assignee = args.get("assignee", "").strip()
    if assignee not in ("", "me", "none") and not (assignee.isdigit() and len(assignee) < 10):
        raise cases.CaseError("Unknown assignee; choose one from the list.")
    segment = args.get("segment", "")
    if segment and segment not in SEGMENTS:
        raise cases.CaseError(f"Segment must be one of {', '.join(SEGMENTS)}.")
    language = args.get("language", "")
    if language and language not in LANGUAGES:
        raise cases.CaseError(f"Language must be one of {', '.join(LANGUAGES)}.")
    raw_severity = args.get("severity", "") or "0"
    if not raw_severity.isdigit() or int(raw_severity) not in SEVERITY_NAMES:
        raise cases.CaseError("Severity must be one of the listed levels.")
    account = args.get("account", "").strip()
    if len(account) > 200 or not checks.is_one_line(account):
        raise cases.CaseError("The account search is at most 200 characters, on one line.")
    return Filters(status, assignee, account, segment, language, int(raw_severity))


def _filtered(query: sa.Select, filters: Filters, user_id: int | None) -> sa.Select:
    if filters.status == "active":
        query = query.where(Case.status.in_(cases.ACTIVE_STATES))
    elif filters.status != "all":
        query = query.where(Case.status == filters.status)
    if filters.assignee == "me":
        query = query.where(Case.assignee_id == user_id)
    elif filters.assignee == "none":
        query = query.where(Case.assignee_id.is_(None))
    elif filters.assignee:
        query = query.where(Case.assignee_id == int(filters.assignee))
    if filters.severity:
        query = query.where(Case.severity >= filters.severity)
    if filters.account:  # few accounts match a name: look them up first
        needle = filters.account.lower().replace("\\", "\\\\")
        needle = needle.replace("%", "\\%").replace("_", "\\_")
        matching = sa.select(Account.id).where(
            sa.func.lower(Account.name).like(f"%{needle}%", escape="\\")
        )
        query = query.where(Case.account_id.in_(matching))
    if filters.segment:  # half the accounts match a segment: check each case's account
        query = query.where(
            sa.select(Account.id)
            .where(Account.id == Case.account_id, Account.segment == filters.segment)
            .exists()
        )
    if filters.language:
        query = query.where(Case.language == filters.language)
    return query


def queue_page(
    filters: Filters,
    *,
    user_id: int | None = None,
    after: Cursor | None = None,
    now: dt.datetime | None = None,
    limit: int = PAGE_SIZE,
) -> QueuePage:
    """One page of the queue, worst first: overdue, then severity, then oldest."""
    now = now or utcnow()
    overdue = sa.case((cases.overdue_clause(now), 1), else_=0)
    total = db.session.scalar(_filtered(sa.select(sa.func.count(Case.id)), filters, user_id))
    # First the page's ids from the sort key alone (the queue index covers it, so the
    # database never reads whole rows to sort), then the page's cases with what they show.
    keys = _filtered(
        sa.select(Case.id, overdue.label("overdue"), Case.severity, Case.opened_at),
        filters,
        user_id,
    )
    if after is not None:
        keys = keys.where(
            sa.or_(
                overdue < after.overdue,
                sa.and_(
                    overdue == after.overdue,
                    sa.or_(
                        Case.severity < after.severity,
                        sa.and_(
                            Case.severity == after.severity,
                            sa.or_(
                                Case.opened_at > after.opened_at,
                                sa.and_(Case.opened_at == after.opened_at, Case.id > after.id),
                            ),
                        ),
                    ),
                ),
            )
        )
    keys = keys.order_by(overdue.desc(), Case.severity.desc(), Case.opened_at, Case.id)
    found = db.session.execute(keys.limit(limit + 1)).all()
    page_keys = found[:limit]
    rows = _queue_rows([k.id for k in page_keys], {k.id: bool(k.overdue) for k in page_keys})
    next_cursor = None
    if len(found) > limit:
        last = page_keys[-1]
        next_cursor = Cursor(int(last.overdue), last.severity, last.opened_at, last.id).encode()
    return QueuePage(rows, total, next_cursor)


def _queue_rows(ids: list[int], overdue: dict[int, bool]) -> list[QueueRow]:
    """The page's cases, accounts and assignees; then their flags, customers and comments."""
    if not ids:
        return []
    cases_ = db.session.execute(
        sa.select(
            Case.id,
            Case.severity,
            Case.status,
            Case.opened_at,
            Case.first_contact_due_at,
            Case.first_contact_at,
            Account.name,
            Account.segment,
            User.email,
        )
        .join(Account, Case.account_id == Account.id)
        .outerjoin(User, Case.assignee_id == User.id)
        .where(Case.id.in_(ids))
    ).all()
    flagged = db.session.execute(
        sa.select(Flag.case_id, Flag.id, Flag.rules, Response.language, Contact.name, Answer.text)
        .join(Response, Flag.response_id == Response.id)
        .join(Contact, Response.contact_id == Contact.id)
        .outerjoin(Answer, sa.and_(Answer.response_id == Response.id, Answer.text.is_not(None)))
        .where(Flag.case_id.in_(ids))
        .order_by(Flag.case_id, Flag.id, Answer.id)
    ).all()
    details: dict[int, dict[str, t.Any]] = {}
    for case_id, flag_id, rules, language, contact, text in flagged:
        assert case_id is not None  # the query asks for the flags of these cases
        detail = details.setdefault(
            case_id, {"contact": contact, "language": language, "rules": [], "flags": set()}
        )
        detail["flags"].add(flag_id)
        detail["rules"] += [r for r in rules.split(",") if r and r not in detail["rules"]]
        if text and "excerpt" not in detail:
            detail["excerpt"] = text
    by_id = {}
    for row in cases_:
        detail = details.get(row.id, {})
        by_id[row.id] = QueueRow(
            id=row.id,
            overdue=overdue[row.id],
            severity=row.severity,
            status=row.status,
            opened_at=row.opened_at,
            first_contact_due_at=row.first_contact_due_at,
            first_contact_at=row.first_contact_at,
            account=row.name,
            segment=row.segment,
            assignee=row.email,
            contact=detail.get("contact", ""),
            language=detail.get("language", ""),
            answers=len(detail.get("flags", ())),
            rules=tuple(detail.get("rules", ())),
            excerpt=detail.get("excerpt", ""),
        )
    return [by_id[i] for i in ids if i in by_id]
