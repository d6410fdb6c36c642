"""The tables the dashboard and the reports keep for themselves: the daily metric rollups
(and their totals per day), the days to count again, the accounts per health band each week
(and the weeks to count again), and the scheduled reports sent. Re-exported by
:mod:`loyalty.models`, which holds every other model."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .db import Model
from .models import UTCDateTime, utcnow


class _DayCounts:
    """The counts every metric of a day is computed from (``loyalty.metrics``): one set of
    columns for :class:`MetricDay` and :class:`MetricDayTotal`, which must sum alike."""

    responses: Mapped[int] = mapped_column(default=0)
    promoters: Mapped[int] = mapped_column(default=0)
    passives: Mapped[int] = mapped_column(default=0)
    detractors: Mapped[int] = mapped_column(default=0)
    csat_n: Mapped[int] = mapped_column(default=0)
    csat_satisfied: Mapped[int] = mapped_column(default=0)
    ces_n: Mapped[int] = mapped_column(default=0)
    ces_sum: Mapped[int] = mapped_column(default=0)
    ces_squares: Mapped[int] = mapped_column(default=0)
    #: responses with at least one written comment
    commented: Mapped[int] = mapped_column(default=0)
    #: scored comments, the sum of their polarity, and how many were negative
    comments_scored: Mapped[int] = mapped_column(default=0)
    polarity_sum: Mapped[float] = mapped_column(default=0.0)
    polarity_squares: Mapped[float] = mapped_column(default=0.0)
    comments_negative: Mapped[int] = mapped_column(default=0)
    #: invitations delivered this day, and how many of those were answered (ever)
    delivered: Mapped[int] = mapped_column(default=0)
    answered: Mapped[int] = mapped_column(default=0)


class MetricDay(_DayCounts, Model):
    """The answers and invitations of one local day, counted per segment, language, survey and
    account owner: the rollup every trend is read from, so no chart scans the responses.

    Kept current by ``dashboard.rollups``: a changed answer, invitation or account marks its
    day stale (:class:`MetricStaleDay`) and the day is counted again from the raw rows.
    ``owner_id`` 0 is "no owner" (a key column cannot be empty in a unique constraint)."""

    __tablename__ = "metric_days"
    __table_args__ = (
        sa.UniqueConstraint("day", "segment", "language", "survey", "owner_id", name="key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    segment: Mapped[str] = mapped_column(sa.String(3))
    language: Mapped[str] = mapped_column(sa.String(2))
    survey: Mapped[str] = mapped_column(sa.String(64))
    owner_id: Mapped[int] = mapped_column(default=0)


class MetricDayTotal(_DayCounts, Model):
    """One local day's :class:`MetricDay` rows summed over every key: what a trend or a
    total with no filter and no split reads (a year is 365 rows, not the tens of thousands
    of rows per segment, language, survey and owner). Written with the day's rows, in the
    same transaction, whenever they are counted (``dashboard.rollups``)."""

    __tablename__ = "metric_day_totals"

    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)


class MetricStaleDay(Model):
    """A local day whose :class:`MetricDay` rows must be counted again. Appended, never
    unique, so transactions that mark the same day at once never wait for each other."""

    __tablename__ = "metric_stale_days"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, index=True)


class HealthBandWeek(Model):
    """The accounts in one health band at one week's end (a snapshot time), per segment and
    account owner, with the sum of their annual values in cents: what the dashboard's health
    bands and revenue at risk read, so no page counts ten thousand snapshots a week.

    Kept current by ``dashboard.health_rollup``: a snapshot written, replaced or removed, or
    an account whose segment, owner or annual value changes, marks its weeks stale
    (:class:`HealthStaleWeek`) and they are counted again from the snapshots. ``owner_id``
    0 is "no owner", as in :class:`MetricDay`."""

    __tablename__ = "health_band_weeks"
    __table_args__ = (
        sa.UniqueConstraint("at", "segment", "owner_id", "band", name="health_band_week_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    segment: Mapped[str] = mapped_column(sa.String(3))
    owner_id: Mapped[int] = mapped_column(default=0)
    band: Mapped[str] = mapped_column(sa.String(8))
    accounts: Mapped[int] = mapped_column(default=0)
    #: the accounts' annual values summed in whole cents (exact on every database)
    value_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)


class HealthStaleWeek(Model):
    """A week's end whose :class:`HealthBandWeek` rows must be counted again; appended, never
    unique, like :class:`MetricStaleDay`."""

    __tablename__ = "health_stale_weeks"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class ReportDelivery(Model):
    """One scheduled report for one period, claimed before it is emailed: the unique key
    makes it go out once per period, whichever process (dispatcher, cron) gets there first,
    and across restarts; each recipient is recorded as their message is handed over."""

    __tablename__ = "report_deliveries"
    __table_args__ = (sa.UniqueConstraint("report", "period_first", name="report_period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report: Mapped[str] = mapped_column(sa.String(64))
    #: the period the report's summary is about (the last whole week, month or quarter)
    period_first: Mapped[dt.date] = mapped_column(sa.Date)
    period_last: Mapped[dt.date] = mapped_column(sa.Date)
    #: when a process began sending it; empty when that sending stopped short (a refusal),
    #: so the next pass takes it up again
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    #: empty until every recipient's message was handed to the mail server
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recipients: Mapped[int] = mapped_column(default=0)
    #: the users (ids, comma-separated) whose message was handed over: a report taken up
    #: again goes only to the others
    delivered_to: Mapped[str] = mapped_column(sa.Text, default="")

    def delivered(self) -> set[int]:
        return {int(part) for part in self.delivered_to.split(",") if part}
