"""How responsive the company really is: SLA clock figures and recovery, for a period.

For the cases opened in a period: median and 90th percentile business hours to first
contact and to resolution, the share within the SLA targets, per assignee, per segment and
in total, and the recovery rate (detractors whose next answer after their case was resolved
is passive or promoter). The same per-case facts feed the page (``/responsiveness``) and the
CSV (``flask --app loyalty export cases``), so the two always agree.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from .. import metrics, periods
from ..auth import role_required
from ..checks import spreadsheet_safe
from ..db import db
from ..models import READ_ROLES, Account, Case, Flag, User, utcnow
from . import cases, clock

bp = Blueprint("responsiveness", __name__)

#: the default period: the last 13 weeks (a quarter), today included
DEFAULT_DAYS = 91


# --- pure maths ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """One case as the responsiveness figures see it."""

    id: int
    account: str
    segment: str
    assignee: str
    status: str
    outcome: str | None
    severity: int
    rules: str
    opened_at: dt.datetime
    first_contact_due_at: dt.datetime
    first_contact_at: dt.datetime | None
    resolved_at: dt.datetime | None
    hours_to_first_contact: float | None
    hours_to_resolution: float | None
    #: None while it cannot be known yet (not due, or no contact needed)
    first_contact_in_sla: bool | None
    resolution_in_sla: bool | None
    #: detractors in the case whose next answer came after it was resolved, and how many of
    #: those answered passive or promoter
    detractors_answered_again: int = 0
    detractors_recovered: int = 0


@dataclass
class Group:
    """The figures for one assignee, one segment, or everything."""

    label: str
    cases: int = 0
    first_contact: metrics.Durations = field(default_factory=metrics.Durations)
    resolution: metrics.Durations = field(default_factory=metrics.Durations)
    answered_again: int = 0
    recovered: int = 0

    @property
    def recovery_rate(self) -> float | None:
        return metrics.recovery(self.answered_again, self.recovered).value

    def add(self, fact: CaseFacts) -> None:
        self.count(
            fact.hours_to_first_contact,
            fact.first_contact_in_sla,
            fact.hours_to_resolution,
            fact.resolution_in_sla,
            fact.detractors_answered_again,
            fact.detractors_recovered,
        )

    def count(
        self,
        to_contact: float | None,
        contact_in_sla: bool | None,
        to_resolve: float | None,
        resolve_in_sla: bool | None,
        answered_again: int,
        recovered: int,
    ) -> None:
        """One case, from its figures alone (the dashboard reads no more of it)."""
        self.cases += 1
        self.first_contact.add(to_contact, contact_in_sla)
        self.resolution.add(to_resolve, resolve_in_sla)
        self.answered_again += answered_again
        self.recovered += recovered


def summarize(facts: t.Iterable[CaseFacts]) -> dict[str, list[Group]]:
    """Groups for the total, each assignee and each segment, each list sorted by label."""
    total = Group("All cases")
    by: dict[str, dict[str, Group]] = {"assignee": {}, "segment": {}}
    for fact in facts:
        total.add(fact)
        for kind, label in (("assignee", fact.assignee), ("segment", fact.segment.upper())):
            by[kind].setdefault(label, Group(label)).add(fact)
    return {
        "total": [total],
        "assignee": sorted(by["assignee"].values(), key=lambda g: g.label),
        "segment": sorted(by["segment"].values(), key=lambda g: g.label),
    }


# --- reading the cases -----------------------------------------------------------------------


def case_facts(
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    now: dt.datetime | None = None,
    segment: str | None = None,
    owner_id: int | None = None,
    account_id: int | None = None,
) -> list[CaseFacts]:
    """Every case opened in ``[start, end)`` (open-ended when None), oldest first; only
    those of accounts in ``segment``, owned by ``owner_id``, or of ``account_id`` when given.

    Read as plain rows (no ORM objects), since a year can hold tens of thousands of cases;
    their clock figures are the ones kept on each case (:mod:`.clock`), counted first if
    stale."""
    now = now or utcnow()
    clock.refresh()
    period = case_filters(start, end, segment=segment, owner_id=owner_id, account_id=account_id)
    found = db.session.execute(
        sa.select(
            Case.id,
            Account.name,
            Account.segment,
            User.email,
            Case.status,
            Case.outcome,
            Case.severity,
            Case.opened_at,
            Case.first_contact_due_at,
            Case.first_contact_at,
            Case.resolved_at,
            Case.hours_to_first_contact,
            Case.hours_to_resolution,
            clock.first_contact_in_sla(now),
            clock.resolution_in_sla(now, cases.settings().resolution_hours),
            Case.detractors_answered_again,
            Case.detractors_recovered,
        )
        .join(Account, Case.account_id == Account.id)
        .outerjoin(User, Case.assignee_id == User.id)
        .where(*period)
        .order_by(Case.opened_at, Case.id)
    ).all()
    flagged = db.session.execute(
        sa.select(Case.id, Flag.rules)
        .join(Case, Flag.case_id == Case.id)
        .join(Account, Case.account_id == Account.id)
        .where(*period)
    ).all()
    rules: dict[int, set[str]] = {}
    for case_id, flag_rules in flagged:
        rules.setdefault(case_id, set()).update(r for r in flag_rules.split(",") if r)
    judged = clock.judged
    facts = []
    for (
        case_id, account, segment, assignee, status, outcome, severity, opened, due, contacted,
        resolved, to_contact, to_resolve, contact_ok, resolve_ok, answered, recovered,
    ) in found:  # fmt: skip
        facts.append(
            CaseFacts(
                case_id,
                account,
                segment,
                assignee or "unassigned",
                status,
                outcome,
                severity,
                ",".join(sorted(rules.get(case_id, ()))),
                opened,
                due,
                contacted,
                resolved,
                to_contact,
                to_resolve,
                judged(contact_ok),
                judged(resolve_ok),
                answered,
                recovered,
            )  # fmt: skip
        )
    return facts


def case_filters(
    start: dt.datetime | None,
    end: dt.datetime | None,
    *,
    segment: str | None = None,
    owner_id: int | None = None,
    account_id: int | None = None,
) -> list[sa.ColumnElement[bool]]:
    """The conditions that choose the cases opened in ``[start, end)`` of the accounts
    asked for; those on the segment or owner need the query joined to the accounts."""
    period = []
    if start is not None:
        period.append(Case.opened_at >= start)
    if end is not None:
        period.append(Case.opened_at < end)
    if segment is not None:
        period.append(Account.segment == segment)
    if owner_id is not None:  # 0: no owner, as the rollups key it
        period.append(Account.owner_id.is_(None) if owner_id == 0 else Account.owner_id == owner_id)
    if account_id is not None:
        period.append(Case.account_id == account_id)
    return period


# --- the period ----------------------------------------------------------------------------


def parse_period(
    start: str | None, end: str | None, *, today: dt.date | None = None
) -> periods.Period:
    """``from``/``to`` days (both included), by default the last 13 weeks; ValueError if bad."""
    today = today or periods.today(cases.settings().calendar.tz)
    return periods.parse({"from": start, "to": end}, today=today, default_days=DEFAULT_DAYS)


def period_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight of ``first`` to local midnight after ``last``, in UTC."""
    return periods.Period(first, last).bounds(cases.settings().calendar.tz)


@bp.get("/responsiveness")
@role_required(*READ_ROLES)
def page():
    """Time to first contact and resolution, share within SLA, and recovery, for a period."""
    tz = cases.settings().calendar.tz
    today = periods.today(tz)
    error, status = None, 200
    try:
        chosen = periods.parse(request.args, today=today, default_days=DEFAULT_DAYS)
    except periods.PeriodError as exc:
        error, status = str(exc), 400
        chosen = periods.parse({}, today=today, default_days=DEFAULT_DAYS)
    facts = case_facts(*chosen.bounds(tz))
    return render_template(
        "responsiveness/index.html",
        groups=summarize(facts),
        period=chosen,
        first=chosen.first,
        last=chosen.last,
        error=error,
        conf=cases.settings(),
    ), status


# --- CSV -------------------------------------------------------------------------------------

CASE_COLUMNS = [
    "case_id", "account", "segment", "assignee", "status", "outcome", "severity", "rules",
    "opened_at", "first_contact_due_at", "first_contact_at", "resolved_at",
    "business_hours_to_first_contact", "business_hours_to_resolution",
    "first_contact_within_sla", "resolution_within_sla",
    "detractors_answered_again", "detractors_recovered",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "group", "label", "cases",
    "first_contact_median_hours", "first_contact_p90_hours", "first_contact_share_within_sla",
    "resolution_median_hours", "resolution_p90_hours", "resolution_share_within_sla",
    "detractors_answered_again", "detractors_recovered", "recovery_rate",
]  # fmt: skip


def _cell(value: t.Any) -> t.Any:
    if isinstance(value, dt.datetime):
        return periods.csv_time(value)
    if isinstance(value, float):
        return round(value, 2)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def case_rows(facts: t.Iterable[CaseFacts]) -> t.Iterator[list[t.Any]]:
    yield CASE_COLUMNS
    for f in facts:
        row = [
            f.id, f.account, f.segment, f.assignee, f.status, f.outcome, f.severity, f.rules,
            f.opened_at, f.first_contact_due_at, f.first_contact_at, f.resolved_at,
            f.hours_to_first_contact, f.hours_to_resolution,
            f.first_contact_in_sla, f.resolution_in_sla,
            f.detractors_answered_again, f.detractors_recovered,
        ]  # fmt: skip
        yield [spreadsheet_safe(_cell(v)) for v in row]


def summary_rows(groups: dict[str, list[Group]]) -> t.Iterator[list[t.Any]]:
    yield SUMMARY_COLUMNS
    for kind, items in groups.items():
        for g in items:
            row = [
                kind, g.label, g.cases,
                g.first_contact.median, g.first_contact.p90, g.first_contact.share_in_sla,
                g.resolution.median, g.resolution.p90, g.resolution.share_in_sla,
                g.answered_again, g.recovered, g.recovery_rate,
            ]  # fmt: skip
            yield [spreadsheet_safe(_cell(v)) for v in row]
