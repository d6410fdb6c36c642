"""Reports emailed on a schedule (``REPORT_SCHEDULE``): each entry names a report of
``reports/``, how often (every week, month or quarter), the staff roles it goes to, its
language and the local hour after which it is due.

When a week, month or quarter has ended, its report is due: the self-contained HTML file
attached, and in the body the NPS of the period that ended, with its margin of error,
against the period before and whether the change is beyond the noise. A
:class:`~loyalty.models.ReportDelivery` row is claimed before anything is sent, so a report
goes out once per period whoever gets there first (the dispatcher's pass, or
``flask --app loyalty report send NAME`` from cron) and whatever restarts in between. Each
recipient is recorded as their message is handed over; a refused send gives the claim up,
so the next pass sends it to those who did not get it, and nobody gets it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from .. import emails, periods
from ..db import db
from ..mailer import MailError, Transport
from ..models import ROLES, ReportDelivery, User, utcnow
from ..specs import REPORT_LANGUAGES, ReportSpec, reports
from . import queries, rollups
from . import reports as rendering

log = logging.getLogger(__name__)

#: A report's schedule when an entry leaves these out.
DEFAULT_LANGUAGE = "en"
DEFAULT_HOUR = 7
#: a claim this old whose sending never finished belongs to a process that died
CLAIM_TIMEOUT = dt.timedelta(minutes=30)
_FIELDS = {"report", "every", "roles", "language", "hour"}


class ScheduleError(ValueError):
    """A ``REPORT_SCHEDULE`` entry that cannot be used; the message names it and the field."""


@dataclass(frozen=True)
class Scheduled:
    report: str
    every: str
    roles: tuple[str, ...]
    language: str = DEFAULT_LANGUAGE
    hour: int = DEFAULT_HOUR


def parse(entries: t.Any, known: t.Collection[str]) -> list[Scheduled]:
    """The checked schedule; ``known``: the report ids of ``reports/``."""
    if not isinstance(entries, list | tuple):
        raise ScheduleError("REPORT_SCHEDULE: must be a list of entries")
    found = []
    for index, entry in enumerate(entries):
        where = f"REPORT_SCHEDULE[{index}]"
        if not isinstance(entry, dict):
            raise ScheduleError(f"{where}: must be a mapping (report, every, roles, …)")
        unknown = set(entry) - _FIELDS
        if unknown:
            raise ScheduleError(f"{where}: unknown fields {sorted(unknown)}")
        report, every, roles = entry.get("report"), entry.get("every"), entry.get("roles")
        if report not in known:
            raise ScheduleError(
                f"{where}.report: {report!r} is not in reports/ ({', '.join(sorted(known))})"
            )
        if every not in periods.GRAINS:
            raise ScheduleError(f"{where}.every: must be one of {', '.join(periods.GRAINS)}")
        if not isinstance(roles, list | tuple) or not roles or set(roles) - set(ROLES):
            raise ScheduleError(f"{where}.roles: a non-empty list of {', '.join(ROLES)}")
        language = entry.get("language", DEFAULT_LANGUAGE)
        if language not in REPORT_LANGUAGES:
            raise ScheduleError(f"{where}.language: must be one of {', '.join(REPORT_LANGUAGES)}")
        hour = entry.get("hour", DEFAULT_HOUR)
        if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
            raise ScheduleError(f"{where}.hour: a whole hour from 0 to 23")
        found.append(Scheduled(str(report), every, tuple(roles), language, hour))
    return found


def schedule() -> list[Scheduled]:
    return parse(current_app.config["REPORT_SCHEDULE"], reports(current_app))


def last_period(every: str, today: dt.date) -> periods.Period:
    """The last whole week, month or quarter before ``today``."""
    current = periods.bucket_start(today, every)
    previous = periods.bucket_start(current - dt.timedelta(days=1), every)
    return periods.Period(previous, current - dt.timedelta(days=1))


def delivered(report: str, period: periods.Period) -> ReportDelivery | None:
    """The delivery of ``report`` for ``period``, if one was claimed."""
    query = sa.select(ReportDelivery).where(
        ReportDelivery.report == report, ReportDelivery.period_first == period.first
    )
    return db.session.scalar(query)


def recipients(roles: t.Iterable[str]) -> list[User]:
    query = sa.select(User).where(User.active.is_(True), User.role.in_(tuple(roles)))
    return list(db.session.scalars(query.order_by(User.email)))


def send_due(
    *, now: dt.datetime | None = None, only: str | None = None, mail: Transport | None = None
) -> list[ReportDelivery]:
    """Send every scheduled report whose period ended and that has not gone out for it (or
    only the report ``only``, due whatever the hour); the deliveries made."""
    now = now or utcnow()
    tz = rollups.tz()
    local = now.astimezone(tz)
    sent = []
    for entry in schedule():
        if only is not None and entry.report != only:
            continue
        period = last_period(entry.every, local.date())
        due_at = periods.midnight(period.last + dt.timedelta(days=1), tz)
        if only is None and now < due_at + dt.timedelta(hours=entry.hour):
            continue
        people = recipients(entry.roles)
        if not people:
            continue  # due when someone has the role
        delivery = _claim(entry, period, now)
        if delivery is None:
            continue  # it went out for this period already, or is going out now
        try:
            _send(entry, period, people, mail, delivery)
        except (MailError, OSError) as exc:
            log.warning("report %s for %s not sent: %s", entry.report, period.first, exc)
            db.session.rollback()
            delivery.claimed_at = None  # given up: the next pass sends to the others
            db.session.commit()
            continue
        delivery.sent_at, delivery.recipients = utcnow(), len(delivery.delivered())
        db.session.commit()
        sent.append(delivery)
    return sent


def _claim(entry: Scheduled, period: periods.Period, now: dt.datetime) -> ReportDelivery | None:
    """This period's delivery of the report, claimed for this process; None when it went
    out already or another process is sending it. A claim given up (a refusal), or taken
    longer ago than :data:`CLAIM_TIMEOUT` by a process that died, is taken up again."""
    delivery = ReportDelivery(
        report=entry.report, period_first=period.first, period_last=period.last, claimed_at=now
    )
    db.session.add(delivery)
    try:
        db.session.commit()
        return delivery
    except IntegrityError:
        db.session.rollback()
    this = (ReportDelivery.report == entry.report, ReportDelivery.period_first == period.first)
    taken = db.session.execute(
        sa.update(ReportDelivery)
        .where(
            *this,
            ReportDelivery.sent_at.is_(None),
            sa.or_(
                ReportDelivery.claimed_at.is_(None),
                ReportDelivery.claimed_at < now - CLAIM_TIMEOUT,
            ),
        )
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if t.cast(t.Any, taken).rowcount != 1:
        return None
    return db.session.scalar(sa.select(ReportDelivery).where(*this))


def _send(
    entry: Scheduled,
    period: periods.Period,
    people: list[User],
    mail: Transport | None,
    delivery: ReportDelivery,
) -> None:
    """Render the report over its own length of days up to the period's last day, and mail
    it to each of ``people`` who has not had it, recording each one as it is handed over."""
    spec: ReportSpec = reports(current_app)[entry.report]
    shown = periods.Period(period.last - dt.timedelta(days=spec.days - 1), period.last)
    html = rendering.render_html(spec, shown, language=entry.language, standalone=True)
    before = last_period(entry.every, period.first)
    about = queries.summary(period, before, min_n=current_app.config["MIN_N"])
    done = delivery.delivered()
    with mail or emails.transport() as transport:
        for user in people:
            if user.id in done:
                continue
            transport.send(emails.scheduled_report(user, spec, entry.language, about, html))
            done.add(user.id)
            delivery.delivered_to = ",".join(str(i) for i in sorted(done))
            db.session.commit()


def on_dispatch_tick(sender: t.Any, *, now: dt.datetime | None = None, **_: t.Any) -> None:
    """After each dispatcher pass: the scheduled reports that are due."""
    try:
        send_due(now=now)
    except Exception:  # the invitations must keep going out whatever happens here
        db.session.rollback()
        log.exception("scheduled reports failed in this dispatcher pass")
