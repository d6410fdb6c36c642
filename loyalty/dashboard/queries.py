"""Trends read from the rollups: a named metric per week, month or quarter, filtered and
split, each point a :class:`~loyalty.metrics.Reading` with its n and margin of error.

The one way the dashboard, the API and the reports read a trend, so the same filters give
the same number everywhere. Reads :class:`~loyalty.models.MetricDay` only (never the
responses); call :func:`~loyalty.dashboard.rollups.refresh_stale` first to be current.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa

from .. import metrics, periods
from ..db import db
from ..models import Account, MetricDay, MetricDayTotal
from .rollups import COUNTS, KEY, account_days, day_rows, tz

#: The columns a trend may be split by or filtered on.
SPLITS = ("segment", "language", "survey", "owner_id")
#: The default period of a trend: the last 12 months (365 days), today included.
DEFAULT_DAYS = 365
#: Rows read at a time from a long result (the cases of a year, the accounts' scores):
#: never one list of ten thousand rows, so they die young instead of filling the garbage
#: collector's older generations (whose full collection costs more than the reading).
PARTITION = 2000


@dataclass(frozen=True)
class Filters:
    """What a trend is narrowed to; None is "all"."""

    segment: str | None = None
    language: str | None = None
    survey: str | None = None
    owner_id: int | None = None
    #: one account: its trends are counted from its own rows (the rollups have no account)
    account_id: int | None = None

    def args(self) -> dict[str, str]:
        """As query arguments (``owner`` for the owner), for links that keep them."""
        found = {"segment": self.segment, "language": self.language, "survey": self.survey}
        found["owner"] = None if self.owner_id is None else str(self.owner_id)
        found["account"] = None if self.account_id is None else str(self.account_id)
        return {name: value for name, value in found.items() if value is not None}


@dataclass(frozen=True)
class Point:
    """One bucket of a trend: its first day, its name (2026-03), the reading, the counts."""

    start: dt.date
    name: str
    reading: metrics.Reading
    counts: dict[str, float]


def day_counts(
    period: periods.Period, filters: Filters, split: str | None = None
) -> list[tuple[dt.date, t.Any, dict[str, float]]]:
    """The summed counts of each day of ``period`` (and split value), as stored; for one
    account, counted from its rows as the rollups count them."""
    if filters.account_id is not None:
        return _account_day_counts(period, filters, split)
    if split is None and _unfiltered(filters):
        return _total_day_counts(period)
    columns: list[t.Any] = [MetricDay.day]
    if split:
        columns.append(getattr(MetricDay, split))
    sums = [sa.func.sum(getattr(MetricDay, name)) for name in COUNTS]
    query = sa.select(*columns, *sums).where(
        MetricDay.day >= period.first, MetricDay.day <= period.last
    )
    for name in SPLITS:
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(MetricDay, name) == value)
    query = query.group_by(*columns)
    found = []
    # Plain rows, on the session's connection: a year of days costs no ORM loading.
    for row in db.session.connection().execute(query):
        key = row[1] if split else None
        values = row[2:] if split else row[1:]
        found.append((row[0], key, dict(zip(COUNTS, (v or 0 for v in values), strict=True))))
    return found


def _unfiltered(filters: Filters) -> bool:
    return all(getattr(filters, name) is None for name in (*SPLITS, "account_id"))


def _total_day_counts(period: periods.Period) -> list[tuple[dt.date, t.Any, dict[str, float]]]:
    """:func:`day_counts` with no filter and no split: each day's total, one row a day."""
    columns = [getattr(MetricDayTotal, name) for name in COUNTS]
    query = sa.select(MetricDayTotal.day, *columns).where(
        MetricDayTotal.day >= period.first, MetricDayTotal.day <= period.last
    )
    return [
        (row[0], None, dict(zip(COUNTS, row[1:], strict=True)))
        for row in db.session.connection().execute(query)
    ]


def period_counts(period: periods.Period, filters: Filters) -> dict[str, float]:
    """The counts of the whole of ``period`` summed in one statement (one row read); with
    no filter, from the days' totals (one row a day summed, not every key's)."""
    if _unfiltered(filters):
        sums = [sa.func.sum(getattr(MetricDayTotal, name)) for name in COUNTS]
        totals = sa.select(*sums).where(
            MetricDayTotal.day >= period.first, MetricDayTotal.day <= period.last
        )
        row = db.session.connection().execute(totals).one()
        return dict(zip(COUNTS, (v or 0 for v in row), strict=True))
    sums = [sa.func.sum(getattr(MetricDay, name)) for name in COUNTS]
    query = sa.select(*sums).where(MetricDay.day >= period.first, MetricDay.day <= period.last)
    for name in SPLITS:
        value = getattr(filters, name)
        if value is not None:
            query = query.where(getattr(MetricDay, name) == value)
    row = db.session.connection().execute(query).one()
    return dict(zip(COUNTS, (v or 0 for v in row), strict=True))


def _account_day_counts(
    period: periods.Period, filters: Filters, split: str | None
) -> list[tuple[dt.date, t.Any, dict[str, float]]]:
    """:func:`day_counts` of one account: a few hundred rows, read through the rollups'
    own counting (:func:`~loyalty.dashboard.rollups.day_rows`) day by day."""
    account_id = t.cast(int, filters.account_id)
    zone = tz()
    found: list[tuple[dt.date, t.Any, dict[str, float]]] = []
    for day in account_days(account_id, zone, period):
        summed: dict[t.Any, dict[str, float]] = {}
        for key, counts in day_rows(day, zone, account_id).items():
            row = dict(zip(KEY, key, strict=True))
            if any(
                getattr(filters, name) is not None and row[name] != getattr(filters, name)
                for name in SPLITS
            ):
                continue
            into = summed.setdefault(row[split] if split else None, dict.fromkeys(COUNTS, 0))
            for name, value in counts.items():
                into[name] += value or 0
        found.extend((day, key, counts) for key, counts in summed.items())
    return found


#: The summed counts per split value (None without a split) and bucket start.
BucketSums = dict[t.Any, dict[dt.date, dict[str, float]]]


def bucket_sums(days: list[tuple[dt.date, t.Any, dict[str, float]]], grain: str) -> BucketSums:
    """The :func:`day_counts` summed per split value and bucket of ``grain``."""
    sums: BucketSums = {}
    for day, key, counts in days:
        bucket = sums.setdefault(key, {}).setdefault(periods.bucket_start(day, grain), {})
        for name, value in counts.items():
            bucket[name] = bucket.get(name, 0) + value
    return sums


def trend(
    metric: str,
    grain: str,
    period: periods.Period,
    filters: Filters | None = None,
    *,
    split: str | None = None,
    min_n: int = metrics.MIN_N,
    days: list[tuple[dt.date, t.Any, dict[str, float]]] | None = None,
    sums: BucketSums | None = None,
) -> dict[t.Any, list[Point]]:
    """``metric`` in each bucket of ``period`` (empty buckets included), per split value
    (one series, keyed None, without a split). ``days``: the :func:`day_counts` of the same
    period, filters and split, when the caller read them already for another metric;
    ``sums``: their :func:`bucket_sums` at ``grain``, for the same reason."""
    if metric not in metrics.NAMED:
        raise ValueError(f"metric: must be one of {', '.join(metrics.NAMED)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split: must be one of {', '.join(SPLITS)}")
    starts = periods.buckets(period, grain)
    if sums is None:
        if days is None:
            days = day_counts(period, filters or Filters(), split)
        sums = bucket_sums(days, grain)
    if not sums and split is None:
        sums = {None: {}}
    return {
        key: [
            Point(
                start,
                periods.bucket_name(start, grain),
                metrics.read(metric, by_bucket.get(start, {}), min_n=min_n),
                by_bucket.get(start, {}),
            )
            for start in starts
        ]
        for key, by_bucket in sorted(sums.items(), key=lambda item: str(item[0]))
    }


def total(
    metric: str,
    period: periods.Period,
    filters: Filters | None = None,
    *,
    min_n: int = metrics.MIN_N,
    days: list[tuple[dt.date, t.Any, dict[str, float]]] | None = None,
) -> metrics.Reading:
    """``metric`` over the whole of ``period`` (``days`` as for :func:`trend`)."""
    summed: dict[str, float] = {}
    if days is None and (filters is None or filters.account_id is None):
        return metrics.read(metric, period_counts(period, filters or Filters()), min_n=min_n)
    if days is None:
        days = day_counts(period, filters or Filters())
    for _, _, counts in days:
        for name, value in counts.items():
            summed[name] = summed.get(name, 0) + value
    return metrics.read(metric, summed, min_n=min_n)


@dataclass(frozen=True)
class Summary:
    """The NPS of a period against the one before, and whether the change is real: what a
    scheduled report's email says."""

    period: periods.Period
    before: periods.Period
    now: metrics.Reading
    then: metrics.Reading
    comparison: metrics.Comparison


def summary(
    period: periods.Period, before: periods.Period, *, min_n: int = metrics.MIN_N
) -> Summary:
    now = total("nps", period, min_n=min_n)
    then = total("nps", before, min_n=min_n)
    return Summary(period, before, now, then, metrics.compare(then, now))


def previous(period: periods.Period) -> periods.Period:
    """The period of the same length just before ``period``."""
    length = dt.timedelta(days=period.days)
    return periods.Period(period.first - length, period.last - length)


class FilterError(ValueError):
    """A filter that cannot be read; the message says which and how."""


def parse_filters(args: t.Mapping[str, str]) -> Filters:
    """Filters from a query string: ``segment``, ``language``, ``survey``, ``owner`` (a
    staff member's id or e-mail) and ``account`` (its id); empty values mean "all"."""
    from ..models import LANGUAGES, SEGMENTS, User

    def text(name: str) -> str | None:
        value = args.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    names = ("segment", "language", "survey", "owner", "account")
    segment, language, survey, owner, account = (text(n) for n in names)
    if segment is not None and segment not in SEGMENTS:
        raise FilterError(f"segment: must be one of {', '.join(SEGMENTS)}")
    if language is not None and language not in LANGUAGES:
        raise FilterError(f"language: must be one of {', '.join(LANGUAGES)}")
    if survey is not None and len(survey) > 64:
        raise FilterError("survey: at most 64 characters")
    owner_id = None
    if owner is not None:
        if owner.isascii() and owner.isdigit() and len(owner) < 10:
            owner_id = int(owner)
        else:
            owner_id = db.session.scalar(sa.select(User.id).where(User.email == owner.lower()))
            if owner_id is None:
                raise FilterError("owner: no staff member has this e-mail address")
    account_id = None
    if account is not None:
        if not (account.isascii() and account.isdigit() and len(account) < 10):
            raise FilterError("account: an account's number, as in /accounts/<number>")
        account_id = int(account)
        if db.session.get(Account, account_id) is None:
            raise FilterError("account: no account has this number")
    return Filters(segment, language, survey, owner_id, account_id)
