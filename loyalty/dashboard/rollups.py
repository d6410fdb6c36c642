"""The metric rollups: each local day's answers and invitations counted once, per segment,
language, survey and account owner (:class:`~loyalty.models.MetricDay`), so a trend over two
years reads a few thousand rows instead of a million responses; and each day's rows summed
(:class:`~loyalty.models.MetricDayTotal`), written with them, so a trend or total with no
filter and no split reads one row a day.

Kept current by marking days stale and counting them again from the raw rows, which is
simple and always right: a new or changed answer marks its day (and its invitation's), an
account whose owner or segment changes marks every day it has rows on, and each dispatcher
pass marks the last days (invitations went out). :func:`refresh_stale` recounts what is
marked; readers call it first, so a chart is never behind. :func:`rebuild` counts every day
from scratch (``flask --app loyalty rollups rebuild``; on PostgreSQL in one pass grouped
by local day), with the health band rollup (:mod:`.health_rollup`). Days are local days in the SLA
clock's time zone; after changing it, rebuild.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import metrics, periods
from ..db import db, write_before_commit
from ..models import (
    Account,
    Answer,
    Contact,
    Invitation,
    MetricDay,
    MetricDayTotal,
    MetricStaleDay,
    Response,
    utcnow,
)
from ..triage.settings import settings
from . import health_rollup

#: The columns of a :class:`MetricDay` that are counts (everything but the key).
COUNTS = (
    "responses",
    "promoters",
    "passives",
    "detractors",
    "csat_n",
    "csat_satisfied",
    "ces_n",
    "ces_sum",
    "ces_squares",
    "commented",
    "comments_scored",
    "polarity_sum",
    "polarity_squares",
    "comments_negative",
    "delivered",
    "answered",
)
KEY = ("segment", "language", "survey", "owner_id")
#: Days the dispatcher's pass marks stale: today and the two before (invitations going out).
TICK_DAYS = 3


def tz() -> dt.tzinfo:
    return settings().calendar.tz


def local_day(at: dt.datetime, zone: dt.tzinfo | None = None) -> dt.date:
    return at.astimezone(zone or tz()).date()


# --- marking ----------------------------------------------------------------------------------


def mark_days(days: Iterable[dt.date]) -> None:
    """Mark ``days`` stale, in the caller's transaction. A plain append: two answers saved
    at once never wait on each other's marks (a unique day would lock, and deadlock)."""
    rows = [{"day": day} for day in sorted(set(days))]
    if rows:
        db.session.execute(sa.insert(MetricStaleDay), rows)


def on_response_saved(sender: t.Any, *, response: Response, **_: t.Any) -> None:
    """An answer was stored or changed: its day, and its invitation's, count again (marked
    once for a whole follow-up batch)."""
    zone = tz()
    days = [local_day(response.submitted_at, zone)]
    if response.invitation is not None:
        days.append(local_day(response.invitation.due_at, zone))
    write_before_commit("metric_stale_days", days, mark_days)


def on_account_changed(sender: t.Any, *, account: Account, **_: t.Any) -> None:
    """Its owner or segment changed: every day the account has rows on counts again."""
    mark_days(account_days(account.id, tz()))


def account_days(
    account_id: int, zone: dt.tzinfo, period: periods.Period | None = None
) -> list[dt.date]:
    """The local days (of ``period``, if given) on which the account has answers or
    invitations: the days its counts can be on."""
    answered = sa.select(Response.submitted_at).where(Response.account_id == account_id)
    invited = (
        sa.select(Invitation.due_at)
        .join(Contact, Contact.id == Invitation.contact_id)
        .where(Contact.account_id == account_id)
    )
    if period is not None:
        start, end = period.bounds(zone)
        answered = answered.where(Response.submitted_at >= start, Response.submitted_at < end)
        invited = invited.where(Invitation.due_at >= start, Invitation.due_at < end)
    moments = [*db.session.scalars(answered), *db.session.scalars(invited)]
    return sorted({local_day(at, zone) for at in moments})


def on_dispatch_tick(sender: t.Any, *, now: dt.datetime | None = None, **_: t.Any) -> None:
    """Invitations went out: the last days count again, now, so charts stay current."""
    today = local_day(now or utcnow())
    try:
        mark_days(today - dt.timedelta(days=back) for back in range(TICK_DAYS))
        db.session.commit()
        refresh_stale()
    except sa.exc.SQLAlchemyError:  # the invitations keep going out; the next pass recounts
        db.session.rollback()


# --- counting ---------------------------------------------------------------------------------


def refresh_stale(limit: int | None = None) -> int:
    """Count the stale days again (the oldest first, at most ``limit``); how many.

    Each day in its own transaction. Its marks up to the newest one seen are removed with
    it, so a mark added meanwhile stays for the next pass. If another process counts the
    same day at the same moment, this one gives way and leaves the day marked."""
    query = (
        sa.select(MetricStaleDay.day, sa.func.max(MetricStaleDay.id))
        .group_by(MetricStaleDay.day)
        .order_by(MetricStaleDay.day)
    )
    days = db.session.execute(query.limit(limit) if limit else query).all()
    db.session.commit()
    zone = tz()
    counted = 0
    for day, newest in days:
        try:
            count_day(day, zone)
            db.session.execute(
                sa.delete(MetricStaleDay).where(
                    MetricStaleDay.day == day, MetricStaleDay.id <= newest
                )
            )
            db.session.commit()
            counted += 1
        except (IntegrityError, OperationalError):
            db.session.rollback()
    return counted


def _count(condition: t.Any) -> t.Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def count_day(day: dt.date, zone: dt.tzinfo) -> None:
    """Replace ``day``'s rows, and its total, with a fresh count from the responses, answers
    and invitations."""
    rows = day_rows(day, zone)
    db.session.execute(sa.delete(MetricDay).where(MetricDay.day == day))
    db.session.execute(sa.delete(MetricDayTotal).where(MetricDayTotal.day == day))
    if rows:
        db.session.execute(
            sa.insert(MetricDay),
            [dict(zip(KEY, key, strict=True), day=day, **values) for key, values in rows.items()],
        )
        db.session.execute(sa.insert(MetricDayTotal), [day_total(day, rows.values())])


def day_total(day: dt.date, rows: Iterable[dict[str, t.Any]]) -> dict[str, t.Any]:
    """The :class:`MetricDayTotal` of a day: its rows' counts summed over every key."""
    total: dict[str, t.Any] = dict.fromkeys(COUNTS, 0)
    for values in rows:
        for name in COUNTS:
            total[name] += values[name] or 0
    return {"day": day, **total}


def day_rows(
    day: dt.date, zone: dt.tzinfo, account_id: int | None = None
) -> dict[tuple[t.Any, ...], dict[str, t.Any]]:
    """``day``'s counts per key (segment, language, survey, owner), counted from the raw
    rows; only one account's when ``account_id`` is given (what a trend of one account
    reads: the same counting as the rollups, so the same numbers)."""
    start = periods.midnight(day, zone)
    end = periods.midnight(day + dt.timedelta(days=1), zone)
    return _counted(start, end, account_id)


def _counted(
    start: dt.datetime,
    end: dt.datetime,
    account_id: int | None = None,
    day_of: Callable[[t.Any], t.Any] | None = None,
) -> dict[tuple[t.Any, ...], dict[str, t.Any]]:
    """The counts of the answers and invitations from ``start`` to ``end`` per key; with
    ``day_of`` (the SQL of a moment's local day), per local day and key, the day first."""
    owner = sa.func.coalesce(Account.owner_id, 0)
    rows: dict[tuple[t.Any, ...], dict[str, t.Any]] = {}

    def add(key: tuple[t.Any, ...], values: dict[str, t.Any]) -> None:
        row = rows.setdefault(key, dict.fromkeys(COUNTS, 0))
        for name, value in values.items():
            row[name] += value or 0

    def keyed(moment: t.Any, *columns: t.Any) -> list[t.Any]:
        return [day_of(moment), *columns] if day_of is not None else list(columns)

    one = () if account_id is None else (Account.id == account_id,)
    in_range = (Response.submitted_at >= start, Response.submitted_at < end, *one)
    answer_key = keyed(Response.submitted_at, Account.segment, Response.language)
    answer_key += [Response.survey, owner]
    answered = sa.select(
        *answer_key,
        sa.func.count(Response.id),
        _count(Response.nps >= metrics.PROMOTER_MIN),
        _count(Response.nps.between(metrics.DETRACTOR_MAX + 1, 8)),
        _count(Response.nps <= metrics.DETRACTOR_MAX),
        sa.func.count(Response.csat),
        _count(Response.csat >= metrics.SATISFIED_MIN),
        sa.func.count(Response.ces),
        sa.func.coalesce(sa.func.sum(Response.ces), 0),
        sa.func.coalesce(sa.func.sum(Response.ces * Response.ces), 0),
    ).join(Account, Account.id == Response.account_id)
    width = len(answer_key)
    names: tuple[str, ...] = ("responses", "promoters", "passives", "detractors", "csat_n")
    names += ("csat_satisfied", "ces_n", "ces_sum", "ces_squares")
    for row in db.session.execute(answered.where(*in_range).group_by(*answer_key)):
        add(tuple(row[:width]), dict(zip(names, row[width:], strict=True)))

    written = sa.and_(Answer.text.is_not(None), Answer.text != "")
    comments = (
        sa.select(
            *answer_key,
            sa.func.count(sa.distinct(Answer.response_id)),
            sa.func.count(Answer.polarity),
            sa.func.coalesce(sa.func.sum(Answer.polarity), 0.0),
            sa.func.coalesce(sa.func.sum(Answer.polarity * Answer.polarity), 0.0),
            _count(Answer.sentiment == "negative"),
        )
        .join(Response, Response.id == Answer.response_id)
        .join(Account, Account.id == Response.account_id)
        .where(*in_range, written)
        .group_by(*answer_key)
    )
    names = ("commented", "comments_scored", "polarity_sum", "polarity_squares")
    names += ("comments_negative",)
    for row in db.session.execute(comments):
        add(tuple(row[:width]), dict(zip(names, row[width:], strict=True)))

    # Delivered as the funnel counts it: sent, or answered (an answer proves delivery).
    invitation_key = keyed(Invitation.due_at, Account.segment, Contact.language)
    invitation_key += [Invitation.survey, owner]
    invitations = (
        sa.select(*invitation_key, sa.func.count(Invitation.id), sa.func.count(Response.id))
        .join(Contact, Contact.id == Invitation.contact_id)
        .join(Account, Account.id == Contact.account_id)
        .outerjoin(Response, Response.invitation_id == Invitation.id)
        .where(
            Invitation.due_at >= start,
            Invitation.due_at < end,
            *one,
            sa.or_(Invitation.status == "sent", Response.id.is_not(None)),
        )
        .group_by(*invitation_key)
    )
    for row in db.session.execute(invitations):
        add(tuple(row[:width]), {"delivered": row[width], "answered": row[width + 1]})
    return rows


def rebuild(progress: Callable[[int, int], None] | None = None) -> int:
    """Count every day from the first answer or invitation to today again, and every week's
    health bands; how many days."""
    zone = tz()
    first = [
        db.session.scalar(sa.select(sa.func.min(Response.submitted_at))),
        db.session.scalar(sa.select(sa.func.min(Invitation.due_at))),
    ]
    known = [at for at in first if at is not None]
    db.session.execute(sa.delete(MetricDay))
    db.session.execute(sa.delete(MetricDayTotal))
    db.session.execute(sa.delete(MetricStaleDay))
    db.session.commit()
    health_rollup.rebuild()  # the health bands of every week, in one pass
    if not known:
        return 0
    today = local_day(utcnow(), zone)
    start = min(local_day(at, zone) for at in known)
    days = [start + dt.timedelta(days=i) for i in range((max(today, start) - start).days + 1)]
    zone_name = getattr(zone, "key", None)
    if db.session.get_bind().dialect.name == "postgresql" and zone_name:
        _rebuild_in_one_pass(days, zone, zone_name, progress)
        return len(days)
    for done, day in enumerate(days, 1):
        count_day(day, zone)
        db.session.commit()
        if progress:
            progress(done, len(days))  # (days counted, of how many)
    return len(days)


def _rebuild_in_one_pass(
    days: list[dt.date],
    zone: dt.tzinfo,
    zone_name: str,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Every day counted by three statements grouped by local day (PostgreSQL knows the
    time zones): the same counts as day by day, without two thousand range scans."""

    def day_of(moment: t.Any) -> t.Any:
        """The local day of a naive UTC moment, as :func:`local_day` tells it."""
        local = sa.func.timezone(zone_name, sa.func.timezone("UTC", moment))
        return sa.cast(local, sa.Date)

    start = periods.midnight(days[0], zone)
    end = periods.midnight(days[-1] + dt.timedelta(days=1), zone)
    by_day: dict[dt.date, list[dict[str, t.Any]]] = {}
    for (day, *key), values in _counted(start, end, day_of=day_of).items():
        by_day.setdefault(day, []).append(dict(zip(KEY, key, strict=True), day=day, **values))
    batch: list[dict[str, t.Any]] = []
    totals: list[dict[str, t.Any]] = []
    for done, day in enumerate(days, 1):
        if day in by_day:
            batch += by_day[day]
            totals.append(day_total(day, by_day[day]))
        if len(batch) >= 5000 or done == len(days):
            if batch:
                db.session.execute(sa.insert(MetricDay), batch)
                db.session.execute(sa.insert(MetricDayTotal), totals)
            db.session.commit()
            batch, totals = [], []
        if progress:
            progress(done, len(days))
