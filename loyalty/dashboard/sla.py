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
from sqlalchemy.dialects import postgresql as pg

from .. import metrics, periods
from ..db import db
from ..models import Account, Case, utcnow
from ..triage import clock, responsiveness
from ..triage.settings import settings
from . import charts, queries


@dataclass(frozen=True)
class Figures:
    """The figures of the cases of one bucket, as :class:`responsiveness.Group` holds them
    for a group, but with the durations already ranked by the database."""

    cases: int = 0
    first_contact: metrics.DurationFigures = metrics.DurationFigures(0, None, None)
    resolution: metrics.DurationFigures = metrics.DurationFigures(0, None, None)
    answered_again: int = 0
    recovered: int = 0


@dataclass(frozen=True)
class Bucket:
    """The cases opened in one bucket and their figures."""

    start: dt.date
    name: str
    group: Figures

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


def _in_sla(clock: metrics.DurationFigures, min_n: int) -> metrics.Reading:
    return metrics.share_reading(metrics.Share(clock.in_sla, clock.judged, min_n))


def _median(clock: metrics.DurationFigures, min_n: int) -> metrics.Reading:
    """A median has no simple margin of error: none is drawn, but few cases still show."""
    return metrics.Reading(clock.median, None, clock.n, clock.n < min_n)


def trend(
    grain: str, period: periods.Period, filters: queries.Filters, tz: dt.tzinfo
) -> list[Bucket]:
    """The figures of the cases opened in each bucket of ``period`` (empty buckets too).

    Cases belong to accounts, not to a survey or a language: only the segment, owner and
    account filters narrow them. Only the figures are read (the kept clock figures and the
    judgements, as ``case_facts`` reads them), not the cases' names and rules. PostgreSQL
    counts every case per bucket itself (:func:`_counted_by_postgresql`); elsewhere, and
    the few cases a filter leaves, are counted here from plain rows (:func:`_counted_here`):
    the same numbers either way."""
    clock.refresh()
    now = utcnow()
    conditions = responsiveness.case_filters(
        *period.bounds(tz),
        segment=filters.segment,
        owner_id=filters.owner_id,
        account_id=filters.account_id,
    )
    judgements = (
        clock.first_contact_in_sla(now),
        clock.resolution_in_sla(now, settings().resolution_hours),
    )
    needs_accounts = filters.segment is not None or filters.owner_id is not None
    starts = periods.buckets(period, grain)
    # the buckets' first moments, naive UTC as stored
    edges = [periods.midnight(start, tz).replace(tzinfo=None) for start in starts]
    connection = db.session.connection()
    # A filter leaves few cases: then plain rows counted here cost less than the statement
    everything = filters.account_id is None and not needs_accounts
    by_postgresql = connection.dialect.name == "postgresql" and everything
    count = _counted_by_postgresql if by_postgresql else _counted_here
    found = count(connection, edges, conditions, judgements, needs_accounts)
    return [
        Bucket(start, periods.bucket_name(start, grain), figures)
        for start, figures in zip(starts, found, strict=True)
    ]


def _met(judgement: t.Any) -> t.Any:
    return sa.func.sum(sa.case((judgement, 1), else_=0))


def _counted_by_postgresql(
    connection: sa.Connection,
    edges: list[dt.datetime],
    conditions: list[sa.ColumnElement[bool]],
    judgements: tuple[t.Any, t.Any],
    needs_accounts: bool,
) -> list[Figures]:
    """One statement: each case's bucket by ``width_bucket`` over the buckets' first
    moments, the counts summed per bucket, and of each duration only the values at the
    ranks its median and p90 read (:func:`metrics.percentile_ranks`: the floor and the
    ceiling of ``(n - 1) * q / 100``, in whole numbers), from its bucket's hours in order;
    the interpolation between them is :func:`metrics.ranked_percentile`'s, here."""
    contact_ok, resolve_ok = judgements
    thresholds = sa.cast(pg.array(edges), pg.ARRAY(sa.DateTime()))
    bucket = (sa.func.width_bucket(Case.opened_at, thresholds) - 1).label("bucket")

    def ordered(column: t.Any, name: str) -> t.Any:
        return (
            sa.func.array_agg(pg.aggregate_order_by(column, column), type_=pg.ARRAY(sa.Float))
            .filter(column.is_not(None))
            .label(name)
        )

    per_bucket = sa.select(
        bucket,
        sa.func.count().label("cases"),
        sa.func.count(Case.hours_to_first_contact).label("contact_n"),
        sa.func.count(contact_ok).label("contact_judged"),
        _met(contact_ok).label("contact_met"),
        ordered(Case.hours_to_first_contact, "contact_hours"),
        sa.func.count(Case.hours_to_resolution).label("resolution_n"),
        sa.func.count(resolve_ok).label("resolution_judged"),
        _met(resolve_ok).label("resolution_met"),
        ordered(Case.hours_to_resolution, "resolution_hours"),
        sa.func.sum(Case.detractors_answered_again).label("answered"),
        sa.func.sum(Case.detractors_recovered).label("recovered"),
    ).where(*conditions)
    if needs_accounts:
        per_bucket = per_bucket.join(Account, Case.account_id == Account.id)
    rows = per_bucket.group_by(bucket).subquery()

    def at_ranks(name: str) -> list[t.Any]:
        n, hours = rows.c[f"{name}_n"], rows.c[f"{name}_hours"]
        picked = []
        for q in metrics.DURATION_PERCENTILES:
            low, high = (n - 1) * q // 100, ((n - 1) * q + 99) // 100  # 0-based
            picked += [hours[low + 1], hours[high + 1]]  # arrays count from 1
        return picked

    counted = connection.execute(
        sa.select(
            rows.c.bucket,
            rows.c.cases,
            rows.c.contact_n,
            rows.c.contact_judged,
            rows.c.contact_met,
            *at_ranks("contact"),
            rows.c.resolution_n,
            rows.c.resolution_judged,
            rows.c.resolution_met,
            *at_ranks("resolution"),
            rows.c.answered,
            rows.c.recovered,
        )
    )
    found = [Figures() for _ in edges]
    width = 3 + 2 * len(metrics.DURATION_PERCENTILES)
    for bucket_index, cases, *figures in counted:
        if not 0 <= bucket_index < len(edges):
            continue
        contact, resolution = figures[:width], figures[width : 2 * width]
        answered, recovered = figures[2 * width :]
        found[bucket_index] = Figures(
            cases=cases,
            first_contact=_ranked(*contact),
            resolution=_ranked(*resolution),
            answered_again=int(answered or 0),
            recovered=int(recovered or 0),
        )
    return found


def _ranked(n: int, judged: int, met: int | None, *at_ranks: float) -> metrics.DurationFigures:
    """A duration's figures from the values at its percentiles' ranks, in the order of
    :data:`metrics.DURATION_PERCENTILES`, each as (floor rank, ceiling rank)."""
    values = []
    for i, q in enumerate(metrics.DURATION_PERCENTILES):
        low, high = metrics.percentile_ranks(n, q) if n else (0, 0)
        by_rank = {low: at_ranks[2 * i], high: at_ranks[2 * i + 1]}
        values.append(metrics.ranked_percentile(n, q, by_rank.__getitem__))
    median, p90 = values
    return metrics.DurationFigures(n, median, p90, int(met or 0), judged)


def _counted_here(
    connection: sa.Connection,
    edges: list[dt.datetime],
    conditions: list[sa.ColumnElement[bool]],
    judgements: tuple[t.Any, t.Any],
    needs_accounts: bool,
) -> list[Figures]:
    """Plain rows (no ORM loading), read a few thousand at a time and counted here: a year
    of cases never lives as one list, so its rows die young instead of filling the garbage
    collector's older generations (a full collection would cost more than the reading)."""
    query = sa.select(
        sa.type_coerce(Case.opened_at, sa.String),  # as stored: see the bisection below
        Case.hours_to_first_contact,
        judgements[0],
        Case.hours_to_resolution,
        judgements[1],
        Case.detractors_answered_again,
        Case.detractors_recovered,
    ).where(*conditions)
    if needs_accounts:
        query = query.join(Account, Case.account_id == Account.id)
    rows = itertools.chain.from_iterable(connection.execute(query).partitions(queries.PARTITION))
    # Each case's bucket by bisecting the buckets' first moments (UTC), compared with the
    # time as stored (SQLite: its text to the second; else a naive UTC time), so a year of
    # cases costs no time zone arithmetic.
    text_edges = [edge.strftime("%Y-%m-%d %H:%M:%S") for edge in edges]
    # Group.count, spelled out on plain lists per bucket: a year of cases passes here.
    size = len(edges)
    cases, answered_again, recovered_n = [0] * size, [0] * size, [0] * size
    contact_hours: list[list[float]] = [[] for _ in edges]
    resolution_hours: list[list[float]] = [[] for _ in edges]
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
    return [
        Figures(
            cases=cases[i],
            first_contact=_figures(contact_hours[i], contact_met[i], contact_judged[i]),
            resolution=_figures(resolution_hours[i], resolution_met[i], resolution_judged[i]),
            answered_again=answered_again[i],
            recovered=recovered_n[i],
        )
        for i in range(size)
    ]


def _figures(hours: list[float], in_sla: int, judged: int) -> metrics.DurationFigures:
    durations = metrics.Durations(sorted(hours), in_sla, judged)
    return metrics.DurationFigures(durations.n, durations.median, durations.p90, in_sla, judged)


def _chart_points(
    buckets: t.Sequence[Bucket], reading: t.Callable[[Bucket], metrics.Reading]
) -> list[charts.TrendPoint]:
    return [charts.TrendPoint.of(b.start, reading(b), b.name) for b in buckets]


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
