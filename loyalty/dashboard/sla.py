"""Responsiveness over time: time to first contact and to resolution (median, p90, share
within the SLA) and the recovery rate, per week, month or quarter of the cases opened.

The same per-case figures as ``/responsiveness`` and ``export cases`` (kept on each case by
:mod:`loyalty.triage.clock`, judged by its SQL) and the same definitions
(:class:`loyalty.metrics.Durations`, :func:`loyalty.metrics.recovery`), so the dashboard's
numbers are the responsiveness page's. Only a few numbers per case are read, and no
business hours are counted, so a year of cases reads quickly.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import typing as t
from dataclasses import dataclass

import sqlalchemy as sa

from .. import metrics, periods
from ..db import db
from ..models import Account, Case, utcnow
from ..triage import clock, responsiveness
from ..triage.settings import settings
from . import charts, queries


@dataclass(frozen=True)
class Bucket:
    """The cases opened in one bucket and their figures."""

    start: dt.date
    name: str
    group: responsiveness.Group

    @property
    def cases(self) -> int:
        return self.group.cases

    def first_contact_median(self, min_n: int) -> metrics.Reading:
        return _median(self.group.first_contact, min_n)

    def resolution_median(self, min_n: int) -> metrics.Reading:
        return _median(self.group.resolution, min_n)

    def first_contact_in_sla(self, min_n: int) -> metrics.Reading:
        return _in_sla(self.group.first_contact, min_n)

    def resolution_in_sla(self, min_n: int) -> metrics.Reading:
        return _in_sla(self.group.resolution, min_n)

    def recovery(self, min_n: int) -> metrics.Reading:
        group = self.group
        return metrics.share_reading(
            metrics.recovery(group.answered_again, group.recovered, min_n=min_n)
        )


def _in_sla(clock: metrics.Durations, min_n: int) -> metrics.Reading:
    return metrics.share_reading(metrics.Share(clock.in_sla, clock.judged, min_n))


def _median(clock: metrics.Durations, min_n: int) -> metrics.Reading:
    """A median has no simple margin of error: none is drawn, but few cases still show."""
    n = len(clock.hours)
    return metrics.Reading(clock.median, None, n, n < min_n)


def trend(
    grain: str, period: periods.Period, filters: queries.Filters, tz: dt.tzinfo
) -> list[Bucket]:
    """The figures of the cases opened in each bucket of ``period`` (empty buckets too).

    Cases belong to accounts, not to a survey or a language: only the segment, owner and
    account filters narrow them. Only the figures are read (the kept clock figures and the
    judgements, as ``case_facts`` reads them), not the cases' names and rules."""
    clock.refresh()
    now = utcnow()
    conditions = responsiveness.case_filters(
        *period.bounds(tz),
        segment=filters.segment,
        owner_id=filters.owner_id,
        account_id=filters.account_id,
    )
    query = sa.select(
        sa.type_coerce(Case.opened_at, sa.String),  # as stored: see the bisection below
        Case.hours_to_first_contact,
        clock.first_contact_in_sla(now),
        Case.hours_to_resolution,
        clock.resolution_in_sla(now, settings().resolution_hours),
        Case.detractors_answered_again,
        Case.detractors_recovered,
    ).where(*conditions)
    if filters.segment is not None or filters.owner_id is not None:
        query = query.join(Account, Case.account_id == Account.id)
    # Plain rows (no ORM loading), read a few thousand at a time: a year of cases never
    # lives as one list, so its rows die young instead of filling the garbage collector's
    # older generations (a full collection would cost more than the reading).
    rows = itertools.chain.from_iterable(
        db.session.connection().execute(query).partitions(queries.PARTITION)
    )
    starts = periods.buckets(period, grain)
    # Each case's bucket by bisecting the buckets' first moments (UTC), compared with the
    # time as stored (SQLite: its text to the second; PostgreSQL: a naive UTC time), so a
    # year of cases costs no time zone arithmetic.
    edges = [periods.midnight(start, tz).replace(tzinfo=None) for start in starts]
    text_edges = [edge.strftime("%Y-%m-%d %H:%M:%S") for edge in edges]
    # Group.count, spelled out on plain lists per bucket: a year of cases passes here.
    size = len(starts)
    cases, answered_again, recovered_n = [0] * size, [0] * size, [0] * size
    contact_hours: list[list[float]] = [[] for _ in starts]
    resolution_hours: list[list[float]] = [[] for _ in starts]
    contact_judged, contact_met = [0] * size, [0] * size
    resolution_judged, resolution_met = [0] * size, [0] * size
    bisect_right = bisect.bisect_right
    for opened, to_contact, contact_ok, to_resolve, resolve_ok, answered, recovered in rows:
        if isinstance(opened, str):
            index = bisect_right(text_edges, opened[:19]) - 1
        else:
            index = bisect_right(edges, opened) - 1
        if index < 0:
            continue
        cases[index] += 1
        answered_again[index] += answered
        recovered_n[index] += recovered
        if to_contact is not None:
            contact_hours[index].append(to_contact)
        if contact_ok is not None:
            contact_judged[index] += 1
            contact_met[index] += bool(contact_ok)
        if to_resolve is not None:
            resolution_hours[index].append(to_resolve)
        if resolve_ok is not None:
            resolution_judged[index] += 1
            resolution_met[index] += bool(resolve_ok)
    groups = []
    for i in range(size):
        # sorted once: each median and p90 shown sorts them again, cheaply
        contact_hours[i].sort()
        resolution_hours[i].sort()
        groups.append(
            responsiveness.Group(
                "",
                cases=cases[i],
                first_contact=metrics.Durations(
                    contact_hours[i], contact_met[i], contact_judged[i]
                ),
                resolution=metrics.Durations(
                    resolution_hours[i], resolution_met[i], resolution_judged[i]
                ),
                answered_again=answered_again[i],
                recovered=recovered_n[i],
            )
        )
    return [
        Bucket(start, periods.bucket_name(start, grain), group)
        for start, group in zip(starts, groups, strict=True)
    ]


def _chart_points(
    buckets: t.Sequence[Bucket], reading: t.Callable[[Bucket], metrics.Reading]
) -> list[charts.TrendPoint]:
    return [
        charts.TrendPoint(b.start, r.value, r.moe, r.n, r.low_confidence, b.name)
        for b in buckets
        for r in [reading(b)]
    ]


def hours_chart(buckets: t.Sequence[Bucket], *, min_n: int) -> dict[str, t.Any]:
    """Median business hours to first contact and to resolution, bucket by bucket."""
    lines = [
        ("First contact", _chart_points(buckets, lambda b: b.first_contact_median(min_n))),
        ("Resolution", _chart_points(buckets, lambda b: b.resolution_median(min_n))),
    ]
    return charts.trend_chart(lines, unit="business hours (median)", min_n=min_n)


def share_chart(buckets: t.Sequence[Bucket], *, min_n: int) -> dict[str, t.Any]:
    """The share of cases within the SLA (first contact, resolution) and the recovery rate,
    each with its 95% interval in the hover."""
    lines = [
        (
            "First contact within SLA",
            _chart_points(buckets, lambda b: b.first_contact_in_sla(min_n)),
        ),
        ("Resolved within SLA", _chart_points(buckets, lambda b: b.resolution_in_sla(min_n))),
        ("Recovery rate", _chart_points(buckets, lambda b: b.recovery(min_n))),
    ]
    return charts.trend_chart(lines, unit="%", value_range=(0, 100), min_n=min_n)
