"""What one account's page shows besides the account itself: its health and why, its
history chart, contacts with their latest answers, and one timeline of answers, cases and
warnings.

Apart from the routes (:mod:`.views`) and the list (:mod:`.listing`) because it is a
different read: many small queries about one account rather than one query over many. The
charts come from :mod:`loyalty.dashboard.charts`, each with its numbers as a table too.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import joinedload, selectinload

from ..dashboard import charts
from ..db import db
from ..emails import WARNING_NAMES
from ..models import (
    Account,
    Case,
    Contact,
    HealthSnapshot,
    HealthWarning,
    Response,
    User,
    utcnow,
)
from ..specs import themes
from ..triage.cases import OUTCOME_NAMES, STATE_NAMES
from ..triage.flags import severity_name
from ..triage.settings import settings
from . import rollup, services, warnings
from .listing import BAND_NAMES, owners, scores_then
from .theme_mentions import ThemeShare, theme_shares

SIGNAL_NAMES = {
    "nps": "NPS",
    "nps_trend": "NPS trend",
    "csat": "CSAT",
    "sentiment": "Comment sentiment",
    "churn_cues": "Churn cues",
    "cases": "Open cases",
    "not_recovered": "Not recovered",
    "silence": "Silence",
    "recency": "Recency",
    "contacts": "Contacts",
}


@dataclass(frozen=True)
class TimelineItem:
    at: dt.datetime
    kind: str  # response, case_opened, case_resolved, warning, warning_acted
    title: str
    body: tuple[str, ...] = ()
    link: str | None = None
    tone: str = ""


@dataclass
class ContactView:
    contact: Contact
    latest: Response | None
    comments: list[str] = field(default_factory=list)


@dataclass
class AccountView:
    """Everything the account page shows besides the account itself."""

    contributions: list[dict[str, t.Any]]
    base: float
    bands: dict[str, int]
    snapshots: list[HealthSnapshot]
    warnings: list[HealthWarning]
    open_warnings: list[HealthWarning]
    reasons: dict[int, list[str]]
    contacts: list[ContactView]
    timeline: list[TimelineItem]
    contributions_chart: t.Any
    history_chart: t.Any
    staff: list[User]
    change30: int | None
    change90: int | None
    since: dt.date | None
    #: what its customers talk about, the themes of most negative mentions first
    themes: list[ThemeShare] = field(default_factory=list)


TIMELINE_SIZE = 150


def account_view(account: Account, now: dt.datetime | None = None) -> AccountView:
    now = now or utcnow()
    conf = rollup.rules()
    tz = settings().calendar.tz
    contributions = [
        c
        for c in rollup.contributions(account.health_contributions)
        if isinstance(c, dict) and isinstance(c.get("points"), int | float)
    ]
    snapshots = list(
        db.session.scalars(
            sa.select(HealthSnapshot)
            .where(HealthSnapshot.account_id == account.id)
            .order_by(HealthSnapshot.at)
        )
    )
    warning_rows = list(
        db.session.scalars(
            sa.select(HealthWarning)
            .where(HealthWarning.account_id == account.id)
            .options(joinedload(HealthWarning.acted_by))
            .order_by(HealthWarning.raised_at.desc(), HealthWarning.id.desc())
        )
    )
    contacts = list(
        db.session.scalars(
            sa.select(Contact)
            .where(Contact.account_id == account.id)
            .order_by(Contact.is_decision_maker.desc(), Contact.name, Contact.id)
        )
    )
    responses = list(
        db.session.scalars(
            sa.select(Response)
            .where(Response.account_id == account.id)
            .options(selectinload(Response.answers), joinedload(Response.contact))
            .order_by(Response.submitted_at.desc(), Response.id.desc())
            .limit(TIMELINE_SIZE)
        ).unique()
    )
    latest = _latest_answers([c.id for c in contacts])
    cases = list(
        db.session.scalars(
            sa.select(Case)
            .where(Case.account_id == account.id)
            .options(joinedload(Case.assignee))
            .order_by(Case.opened_at.desc())
            .limit(TIMELINE_SIZE)
        )
    )
    then = {d: scores_then([account.id], now - dt.timedelta(days=d)) for d in (30, 90)}
    changes = {
        d: (
            account.health_score - then[d][account.id]
            if account.health_score is not None and account.id in then[d]
            else None
        )
        for d in (30, 90)
    }
    first = services.first_known(account)
    return AccountView(
        contributions=contributions,
        base=conf["base"],
        bands=dict(conf["bands"]),
        snapshots=snapshots,
        warnings=warning_rows,
        open_warnings=[w for w in warning_rows if w.status != "resolved"],
        reasons={w.id: warnings.warning_reasons(w) for w in warning_rows},
        contacts=[
            ContactView(
                c,
                latest.get(c.id),
                [a.text for a in latest[c.id].answers if a.text] if c.id in latest else [],
            )
            for c in contacts
        ],
        timeline=_timeline(responses, cases, warning_rows),
        contributions_chart=contributions_chart(contributions, account, conf["base"]),
        history_chart=history_chart(account, snapshots, warning_rows, conf["bands"], tz, now),
        staff=owners(),
        change30=changes[30],
        change90=changes[90],
        since=first.astimezone(tz).date() if first else None,
        themes=theme_shares(account.id, themes(current_app), now=now),
    )


def _latest_answers(contact_ids: list[int]) -> dict[int, Response]:
    if not contact_ids:
        return {}
    latest = (
        sa.select(Response.contact_id, sa.func.max(Response.submitted_at).label("at"))
        .where(Response.contact_id.in_(contact_ids))
        .group_by(Response.contact_id)
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(Response)
        .join(
            latest,
            sa.and_(
                Response.contact_id == latest.c.contact_id, Response.submitted_at == latest.c.at
            ),
        )
        .options(selectinload(Response.answers))
    )
    return {r.contact_id: r for r in rows}


def _scores_text(response: Response) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (("NPS", response.nps), ("CSAT", response.csat), ("CES", response.ces))
        if value is not None
    ]
    return " · ".join(parts) or "no scores"


def _timeline(
    responses: list[Response], cases: list[Case], warning_rows: list[HealthWarning]
) -> list[TimelineItem]:
    """Answers, cases and warnings, newest first, on one line."""
    items = [
        TimelineItem(
            r.submitted_at,
            "response",
            f"{r.contact.name} answered: {_scores_text(r)}"
            + ("" if r.complete else " (score tapped in the email only)"),
            tuple(a.text for a in r.answers if a.text),
            tone="negative" if r.nps is not None and r.nps <= 6 else "",
        )
        for r in responses
    ]
    for case in cases:
        link = url_for("triage.case", case_id=case.id)
        assignee = case.assignee.email if case.assignee else "nobody"
        items.append(
            TimelineItem(
                case.opened_at,
                "case_opened",
                f"Case #{case.id} opened ({severity_name(case.severity)}), assigned to {assignee}",
                (f"Now: {STATE_NAMES.get(case.status, case.status)}",),
                link,
                "negative",
            )
        )
        if case.resolved_at is not None:
            outcome = OUTCOME_NAMES.get(case.outcome or "", case.outcome or "")
            items.append(
                TimelineItem(
                    case.resolved_at,
                    "case_resolved",
                    f"Case #{case.id} resolved: {outcome}",
                    (),
                    link,
                )
            )
    for w in warning_rows:
        name = WARNING_NAMES.get(w.kind, w.kind)
        items.append(
            TimelineItem(
                w.raised_at,
                "warning",
                f"Warning: {name} (health {w.score})",
                tuple(warnings.warning_reasons(w)),
                f"#warning-{w.id}",
                "negative",
            )
        )
        if w.acted_at is not None and w.status != "open":
            who = w.acted_by.email if w.acted_by else "Loyalty"
            verb = "resolved" if w.status == "resolved" else "acknowledged"
            items.append(
                TimelineItem(
                    w.acted_at,
                    "warning_acted",
                    f"Warning {verb} by {who}: {name}",
                    (w.note,) if w.note else (),
                )
            )
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:TIMELINE_SIZE]


# --- the charts ----------------------------------------------------------------------------


def contributions_chart(
    contributions: list[dict[str, t.Any]], account: Account, base: float
) -> t.Any:
    bars = [
        charts.Bar(
            SIGNAL_NAMES.get(str(c.get("signal")), str(c.get("signal"))),
            float(c["points"]),
            f"{c.get('detail', '')}: {float(c['points']):+g} points",
        )
        for c in contributions
    ]
    score = "not scored yet" if account.health_score is None else f"{account.health_score}"
    return charts.figure_json(
        charts.bar_chart(
            bars,
            title=f"Why {account.name} scores {score} (base {base:g})",
            axis_title="points",
        )
    )


def history_chart(
    account: Account,
    snapshots: list[HealthSnapshot],
    warning_rows: list[HealthWarning],
    bands: t.Mapping[str, int],
    tz: dt.tzinfo,
    now: dt.datetime,
) -> t.Any:
    points = [
        charts.Point(
            s.at.astimezone(tz).date(),
            s.score,
            f"{s.at.astimezone(tz):%Y-%m-%d}: {s.score} ({BAND_NAMES.get(s.band, s.band)})",
        )
        for s in snapshots
    ]
    if account.health_score is not None and account.health_at is not None:
        at = account.health_at.astimezone(tz)
        points.append(
            charts.Point(at.date(), account.health_score, f"today: {account.health_score}")
        )
    markers = [
        charts.Point(
            w.raised_at.astimezone(tz).date(),
            w.score,
            " · ".join(
                [f"{WARNING_NAMES.get(w.kind, w.kind)} ({w.raised_at.astimezone(tz):%Y-%m-%d})"]
                + warnings.warning_reasons(w)
            ),
        )
        for w in warning_rows
    ]
    return charts.figure_json(
        charts.line_chart(
            [charts.Series(f"Health of {account.name}", points)],
            thresholds=[
                charts.Threshold(bands["healthy"], f"healthy from {bands['healthy']}", charts.GOOD),
                charts.Threshold(bands["at_risk"], f"at risk below {bands['at_risk']}", charts.BAD),
            ],
            markers=markers,
            marker_name="warnings",
            title=f"Health of {account.name}",
            axis_title="health",
            value_range=(0, 100),
        )
    )
