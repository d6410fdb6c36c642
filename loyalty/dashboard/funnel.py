"""The invitation funnel for staff: what happened to the invitations due in a period.

Per survey and segment: how many were made, skipped (and why), are still waiting, failed,
were delivered, reminded and answered, and the response rate, answered / delivered (the
definition in DESIGN.md). Answered means a response exists, a score tapped in the email
included. An invitation counts in the period its due time falls in.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from .. import metrics, periods
from ..auth import role_required
from ..db import db
from ..models import READ_ROLES, Account, Contact, Invitation, Response
from ..outreach.scheduling import SKIP_REASONS
from ..periods import PeriodError
from ..triage.settings import settings

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
        return metrics.response_rate(self.answered, self.delivered)

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


def period(args: t.Mapping[str, str], today: dt.date) -> periods.Period:
    """The days asked for (both included); the last 30 days by default."""
    return periods.parse(args, today=today, default_days=DEFAULT_DAYS)


@bp.get("/funnel")
@role_required(*READ_ROLES)
def index():
    """Invitations due in a period: scheduled, skipped by reason, sent, failed, answered."""
    tz = settings().calendar.tz
    today = periods.today(tz)
    status, message = 200, None
    try:
        chosen = period(request.args, today)
    except PeriodError as exc:
        status, message = 400, str(exc)
        chosen = period({}, today)
    stages, total = funnel(*chosen.bounds(tz))
    return render_template(
        "funnel/index.html",
        stages=stages,
        total=total,
        period=chosen,
        tz=tz,
        message=message,
        reasons=SKIP_REASONS,
    ), status
