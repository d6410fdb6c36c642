"""The invitation funnel for staff: what happened to the invitations due in a period.

Per survey and segment: how many were made, skipped (and why), are still waiting, failed,
were delivered, reminded and answered, and the response rate, answered / delivered (the
definition in DESIGN.md). Answered means a response exists, a score tapped in the email
included. An invitation counts in the period its due time falls in.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from .auth import role_required
from .db import db
from .models import Account, Contact, Invitation, Response, utcnow
from .scheduling import SKIP_REASONS

bp = Blueprint("funnel", __name__)

DEFAULT_DAYS = 30


@dataclass
class Stage:
    """The counts of one row of the funnel."""

    survey: str
    segment: str
    total: int = 0
    waiting: int = 0
    sent: int = 0
    failed: int = 0
    reminded: int = 0
    answered: int = 0
    delivered: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    @property
    def response_rate(self) -> float | None:
        return self.answered / self.delivered if self.delivered else None

    def share(self, count: int) -> float:
        """``count`` as a percentage of all invitations in the row, for the bars."""
        return round(100 * count / self.total, 1) if self.total else 0.0

    def add(self, other: Stage) -> None:
        for name in ("total", "waiting", "sent", "failed", "reminded", "answered", "delivered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)


def funnel(start: dt.datetime, end: dt.datetime) -> tuple[list[Stage], Stage]:
    """The rows (one per survey and segment) and their total, for invitations due in
    ``[start, end)``."""
    query = (
        sa.select(
            Invitation.survey,
            Account.segment,
            Invitation.status,
            Invitation.skip_reason,
            sa.func.count(Invitation.id),
            sa.func.count(Invitation.reminder_sent_at),
            sa.func.count(Response.id),
        )
        .join(Contact, Contact.id == Invitation.contact_id)
        .join(Account, Account.id == Contact.account_id)
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(Invitation.due_at >= start, Invitation.due_at < end)
        .group_by(Invitation.survey, Account.segment, Invitation.status, Invitation.skip_reason)
    )
    rows: dict[tuple[str, str], Stage] = {}
    for survey, segment, status, reason, count, reminded, responses in db.session.execute(query):
        stage = rows.setdefault((survey, segment), Stage(survey, segment))
        stage.total += count
        stage.reminded += reminded
        stage.answered += responses
        if status == "skipped":
            stage.skipped[reason or "unknown"] += count
        elif status in ("scheduled", "sending"):
            stage.waiting += count
        elif status == "failed":
            stage.failed += count
        else:
            stage.sent += count
        # An answer proves delivery, even for an invitation whose send was cut off.
        stage.delivered += count if status == "sent" else responses
    ordered = [rows[key] for key in sorted(rows)]
    total = Stage("all surveys", "all")
    for stage in ordered:
        total.add(stage)
    return ordered, total


class PeriodError(ValueError):
    pass


def period(args: dict[str, str], today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day asked for (both included); the last 30 days by default."""
    try:
        end = dt.date.fromisoformat(args["end"]) if args.get("end") else today
        start = (
            dt.date.fromisoformat(args["start"])
            if args.get("start")
            else end - dt.timedelta(days=DEFAULT_DAYS - 1)
        )
    except ValueError:
        raise PeriodError("Write dates as YYYY-MM-DD, e.g. 2026-11-22.") from None
    if start > end:
        raise PeriodError("The first day must not be after the last day.")
    return start, end


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@bp.get("/funnel")
@role_required("admin", "support", "executive")
def index():
    """Invitations due in a period: scheduled, skipped by reason, sent, failed, answered."""
    today = utcnow().date()
    status, message = 200, None
    try:
        start, end = period(request.args, today)
    except PeriodError as exc:
        status, message = 400, str(exc)
        start, end = period({}, today)
    stages, total = funnel(_midnight(start), _midnight(end + dt.timedelta(days=1)))
    return render_template(
        "funnel/index.html",
        stages=stages,
        total=total,
        start=start,
        end=end,
        message=message,
        reasons=SKIP_REASONS,
    ), status
