"""The tables of the triage loop: flags, cases and their history lines, with the SLA clock's
figures kept on each case (see :mod:`loyalty.triage.clock`). Re-exported by
:mod:`loyalty.models`."""

from __future__ import annotations

import datetime as dt
import typing as t

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Model
from .models import UTCDateTime, _choice, utcnow

if t.TYPE_CHECKING:
    from .models import Account, Response, User

CASE_STATES = ("open", "in_progress", "waiting_on_customer", "resolved")
CASE_OUTCOMES = ("recovered", "not_recovered", "no_action_needed")
#: the columns the dashboard reads of each case, opening time first
CLOCK_COLUMNS = (
    "opened_at",
    "account_id",
    "status",
    "first_contact_due_at",
    "first_contact_at",
    "hours_to_first_contact",
    "resolved_at",
    "resolution_due_at",
    "hours_to_resolution",
    "detractors_answered_again",
    "detractors_recovered",
)


class Flag(Model):
    """Why a response needs a person's attention: the rules that fired and how badly."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"), unique=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    #: comma-separated rule names, e.g. "detractor,churn_cue"
    rules: Mapped[str] = mapped_column(sa.String(200))
    severity: Mapped[int] = mapped_column(sa.SmallInteger)
    #: why the severity is what it is, as decided when the flag was raised or last changed
    #: (a JSON list of lines, "+1 B2B decision maker"); empty for flags older than this column
    reasons: Mapped[str | None] = mapped_column(sa.Text)
    #: indexed: the dashboard lists the latest flags first
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    response: Mapped[Response] = relationship()
    case: Mapped[Case | None] = relationship(back_populates="flags")


class Case(Model):
    """Flagged feedback a support lead owns until the loop is closed."""

    __tablename__ = "cases"
    __table_args__ = (
        _choice("status", CASE_STATES),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('recovered', 'not_recovered', 'no_action_needed')",
            name="outcome",
        ),
        sa.Index("ix_cases_status_first_contact_due_at", "status", "first_contact_due_at"),
        # Covers the triage queue's sort key (overdue, severity, age) for each status.
        sa.Index(
            "ix_cases_queue",
            "status",
            "severity",
            "opened_at",
            "first_contact_due_at",
            "first_contact_at",
        ),
        # Covers what the dashboard reads of a year of cases (their clock figures and what
        # judges them), so the read is one range of this index and no row of the table.
        sa.Index("ix_cases_clock", *CLOCK_COLUMNS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(24), default="open")
    outcome: Mapped[str | None] = mapped_column(sa.String(24))
    severity: Mapped[int] = mapped_column(sa.SmallInteger, index=True)
    #: indexed as the first column of ix_cases_clock
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_contact_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    first_contact_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the assignee was emailed about this high-severity case (empty: not yet)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: the language of the answer that opened the case (the queue filters on it)
    language: Mapped[str | None] = mapped_column(sa.String(2))

    # The SLA clock's figures, kept so that a year of cases is read, not recounted, by every
    # chart and page (:mod:`loyalty.triage.clock` keeps them; all are the calendar's business
    # hours). ``clock_key`` names the clock settings they were counted under; empty or
    # another key: count them again. ``clock_mark`` goes up with every change that makes
    # them stale, so a count of old values never overwrites a newer mark.
    hours_to_first_contact: Mapped[float | None]
    hours_to_resolution: Mapped[float | None]
    #: when resolution is due (the resolution target after opening, in business hours)
    resolution_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: detractors in the case who answered again after it was resolved; and how many of
    #: those answered passive or promoter (the recovery rate's numbers)
    detractors_answered_again: Mapped[int] = mapped_column(default=0)
    detractors_recovered: Mapped[int] = mapped_column(default=0)
    clock_key: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    clock_mark: Mapped[int] = mapped_column(default=0)

    account: Mapped[Account] = relationship()
    assignee: Mapped[User | None] = relationship()
    flags: Mapped[list[Flag]] = relationship(back_populates="case", order_by="Flag.id")
    history: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )


class CaseEvent(Model):
    """One line of a case's history: who did what, when."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    #: opened, flag_joined, flag_changed, assigned, status, note, contact (phone/email/
    #: meeting/other), email_sent, notified, resolved, reopened
    kind: Mapped[str] = mapped_column(sa.String(32))
    body: Mapped[str | None] = mapped_column(sa.Text)
    #: small structured detail as JSON text (old/new status, channel, ...)
    detail: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="history")
    user: Mapped[User | None] = relationship()
