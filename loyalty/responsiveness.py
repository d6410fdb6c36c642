"""How responsive the company really is: SLA clock figures and recovery, for a period.

For the cases opened in a period: median and 90th percentile business hours to first
contact and to resolution, the share within the SLA targets, per assignee, per segment and
in total, and the recovery rate (detractors whose next answer after their case was resolved
is passive or promoter). The same per-case facts feed the page (``/responsiveness``) and the
CSV (``flask --app loyalty export cases``), so the two always agree.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import typing as t
from dataclasses import dataclass, field

import click
import sqlalchemy as sa
from flask import Blueprint, render_template, request

from . import cases
from .auth import role_required
from .db import db
from .models import Account, Case, Flag, Response, User, utcnow
from .responses import spreadsheet_safe

if t.TYPE_CHECKING:
    from flask import Flask

bp = Blueprint("responsiveness", __name__)

DEFAULT_DAYS = 90


def init_app(app: Flask) -> None:
    from .cli import export_cli

    export_cli.add_command(export_cases)


# --- pure maths ------------------------------------------------------------------------------


def percentile(values: t.Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks.

    The same definition as numpy's default and spreadsheets' PERCENTILE.INC; None when empty.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


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
class Clock:
    """One clock's figures (hours) over a group of cases."""

    hours: list[float] = field(default_factory=list)
    in_sla: int = 0
    judged: int = 0

    @property
    def median(self) -> float | None:
        return percentile(self.hours, 50)

    @property
    def p90(self) -> float | None:
        return percentile(self.hours, 90)

    @property
    def share_in_sla(self) -> float | None:
        return self.in_sla / self.judged if self.judged else None


@dataclass
class Group:
    """The figures for one assignee, one segment, or everything."""

    label: str
    cases: int = 0
    first_contact: Clock = field(default_factory=Clock)
    resolution: Clock = field(default_factory=Clock)
    answered_again: int = 0
    recovered: int = 0

    @property
    def recovery_rate(self) -> float | None:
        return self.recovered / self.answered_again if self.answered_again else None

    def add(self, fact: CaseFacts) -> None:
        self.cases += 1
        for clock, hours, in_sla in (
            (self.first_contact, fact.hours_to_first_contact, fact.first_contact_in_sla),
            (self.resolution, fact.hours_to_resolution, fact.resolution_in_sla),
        ):
            if hours is not None:
                clock.hours.append(hours)
            if in_sla is not None:
                clock.judged += 1
                clock.in_sla += in_sla
        self.answered_again += fact.detractors_answered_again
        self.recovered += fact.detractors_recovered


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
    start: dt.datetime | None, end: dt.datetime | None, *, now: dt.datetime | None = None
) -> list[CaseFacts]:
    """Every case opened in ``[start, end)`` (open-ended when None), oldest first.

    Read as plain rows (no ORM objects), since a year can hold tens of thousands of cases.
    """
    now = now or utcnow()
    conf = cases.settings()
    calendar = conf.calendar
    period = []
    if start is not None:
        period.append(Case.opened_at >= start)
    if end is not None:
        period.append(Case.opened_at < end)
    found = db.session.execute(
        sa.select(
            Case.id,
            Case.status,
            Case.outcome,
            Case.severity,
            Case.opened_at,
            Case.first_contact_due_at,
            Case.first_contact_at,
            Case.resolved_at,
            Account.name,
            Account.segment,
            User.email,
        )
        .join(Account, Case.account_id == Account.id)
        .outerjoin(User, Case.assignee_id == User.id)
        .where(*period)
        .order_by(Case.opened_at, Case.id)
    ).all()
    flagged = db.session.execute(
        sa.select(Flag.case_id, Flag.rules, Response.contact_id, Response.nps)
        .join(Response, Flag.response_id == Response.id)
        .join(Case, Flag.case_id == Case.id)
        .where(*period)
    ).all()
    rules: dict[int, set[str]] = {}
    detractors: dict[int, set[int]] = {}
    for case_id, flag_rules, contact_id, nps in flagged:
        rules.setdefault(case_id, set()).update(r for r in flag_rules.split(",") if r)
        if nps is not None and nps <= 6:
            detractors.setdefault(case_id, set()).add(contact_id)
    recovery = _recovery(
        [
            (row.id, contact_id, row.resolved_at)
            for row in found
            if row.resolved_at is not None
            for contact_id in detractors.get(row.id, ())
        ]
    )
    facts = []
    between, active = calendar.between, cases.ACTIVE_STATES
    for row in found:
        (case_id, status, outcome, severity, opened, due, contacted, resolved) = row[:8]
        to_contact = between(opened, contacted) if contacted else None
        to_resolve = between(opened, resolved) if resolved else None
        if contacted is not None:
            contact_ok: bool | None = contacted <= due
        elif status in active and due <= now:
            contact_ok = False
        else:
            contact_ok = None  # not due yet, or resolved with no contact needed
        if to_resolve is not None:
            resolve_ok: bool | None = to_resolve <= conf.resolution_hours
        elif between(opened, now) > conf.resolution_hours:
            resolve_ok = False
        else:
            resolve_ok = None
        answered, recovered = recovery.get(case_id, (0, 0))
        account, segment, assignee = row[8:]
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
                contact_ok,
                resolve_ok,
                answered,
                recovered,
            )  # fmt: skip
        )
    return facts


def _recovery(pending: list[tuple[int, int, dt.datetime]]) -> dict[int, tuple[int, int]]:
    """For (case, detractor contact, resolved at): per case, the detractors who answered
    again after it was resolved, and how many of them answered passive or promoter."""
    if not pending:
        return {}
    later: dict[int, list[tuple[dt.datetime, int]]] = {}
    contact_ids = sorted({c for _, c, _ in pending})
    for chunk in range(0, len(contact_ids), 500):
        rows = db.session.execute(  # by contact: each has a handful of answers
            sa.select(Response.contact_id, Response.submitted_at, Response.nps)
            .where(
                Response.contact_id.in_(contact_ids[chunk : chunk + 500]),
                Response.nps.is_not(None),
            )
            .order_by(Response.submitted_at, Response.id)
        )
        for contact_id, submitted_at, nps in rows:
            later.setdefault(contact_id, []).append((submitted_at, nps))
    result: dict[int, tuple[int, int]] = {}
    for case_id, contact_id, resolved_at in pending:
        following = next((nps for at, nps in later.get(contact_id, []) if at > resolved_at), None)
        if following is None:
            continue
        answered, recovered = result.get(case_id, (0, 0))
        result[case_id] = (answered + 1, recovered + (following >= 7))
    return result


# --- the period ----------------------------------------------------------------------------


def parse_period(
    start: str | None, end: str | None, *, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """``from``/``to`` dates (inclusive), defaulting to the last 90 days; ValueError if bad."""
    today = today or dt.datetime.now(cases.settings().calendar.tz).date()
    try:
        last = dt.date.fromisoformat(end) if end else today
        first = dt.date.fromisoformat(start) if start else last - dt.timedelta(days=DEFAULT_DAYS)
    except ValueError:
        raise ValueError("Dates are written like 2026-03-31.") from None
    if first.year < 2000 or last.year > 2999:
        raise ValueError("Dates are between the years 2000 and 2999.")
    if first > last:
        raise ValueError("The period must start before it ends.")
    if (last - first).days > 3660:
        raise ValueError("The period can be at most ten years long.")
    return first, last


def period_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Local midnight of ``first`` to local midnight after ``last``, in UTC."""
    tz = cases.settings().calendar.tz
    start = dt.datetime.combine(first, dt.time(), tz).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    return start, end


@bp.get("/responsiveness")
@role_required("admin", "support", "executive")
def page():
    """Time to first contact and resolution, share within SLA, and recovery, for a period."""
    error, status = None, 200
    try:
        first, last = parse_period(request.args.get("from"), request.args.get("to"))
    except ValueError as exc:
        error, status = str(exc), 400
        first, last = parse_period(None, None)
    facts = case_facts(*period_bounds(first, last))
    return render_template(
        "responsiveness/index.html",
        groups=summarize(facts),
        first=first,
        last=last,
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
        return value.isoformat()
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


@click.command("cases")
@click.option("--from", "start", help="First day (YYYY-MM-DD) of cases opened; default: all.")
@click.option("--to", "end", help="Last day (YYYY-MM-DD), inclusive; default: today.")
@click.option("--summary", is_flag=True, help="The responsiveness figures instead of cases.")
def export_cases(start: str | None, end: str | None, summary: bool) -> None:
    """Write cases with their SLA clock figures (or --summary) as CSV to standard output."""
    import sys

    try:
        if start is None:  # everything up to the end day
            last = parse_period(end, end)[1] if end else parse_period(None, None)[1]
            bounds: tuple[dt.datetime | None, dt.datetime] = (None, period_bounds(last, last)[1])
        else:
            bounds = period_bounds(*parse_period(start, end))
    except ValueError as exc:
        message = str(exc) if start else "Dates are written like 2026-03-31."
        raise click.UsageError(message) from None
    facts = case_facts(*bounds)
    writer = csv.writer(sys.stdout)
    rows = summary_rows(summarize(facts)) if summary else case_rows(facts)
    writer.writerows(rows)
