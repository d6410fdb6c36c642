"""Account health over time for the dashboard: accounts per band and revenue at risk at the
end of each bucket, and the accounts whose health moved most over the period.

The bands are read from the band rollup (:mod:`.health_rollup`, the accounts per band, segment
and owner at each week's end), for each bucket only its last week; one account's from its
own snapshots.
Revenue at risk counts an account's annual value as it is stored today (no history of values
is kept). Health belongs to accounts: only the segment and owner filters narrow it.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import typing as t
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import url_for

from .. import periods
from ..accounts.rollup import week_ends
from ..db import db
from ..models import HEALTH_BANDS, Account, HealthBandWeek, HealthSnapshot, utcnow
from . import charts, health_rollup, queries

#: How many accounts the "moved most" chart shows each way.
MOVERS = 5
BAND_COLOURS = {"healthy": charts.GOOD, "watch": "#b54708", "at_risk": charts.BAD}
BAND_NAMES = {"healthy": "Healthy", "watch": "Watch", "at_risk": "At risk"}


@dataclass(frozen=True)
class BandPoint:
    """The live accounts per band at the end of one bucket (the week ``at``)."""

    start: dt.date
    name: str
    at: dt.datetime | None
    bands: dict[str, int]
    at_risk_value: Decimal


@dataclass(frozen=True)
class Mover:
    account_id: int
    name: str
    before: int
    after: int
    band: str

    @property
    def change(self) -> int:
        return self.after - self.before


def _where(filters: queries.Filters) -> list[t.Any]:
    found = []
    if filters.segment is not None:
        found.append(Account.segment == filters.segment)
    if filters.owner_id is not None:
        owner = filters.owner_id
        found.append(Account.owner_id.is_(None) if owner == 0 else Account.owner_id == owner)
    if filters.account_id is not None:
        found.append(Account.id == filters.account_id)
    return found


def _last_week_end(first: dt.date, last: dt.date, tz: dt.tzinfo) -> dt.datetime | None:
    """The last week's end (a snapshot time) from ``first`` to the midnight after ``last``,
    not later than now; None when no week ended in it yet."""
    now = utcnow()
    ends = [end for end in week_ends(first, last, tz) if end <= now]
    return ends[-1] if ends else None


def band_trend(
    grain: str, period: periods.Period, filters: queries.Filters, tz: dt.tzinfo
) -> list[BandPoint]:
    """Accounts per band and the annual value of those at risk, at each bucket's end."""
    ends: dict[dt.date, dt.datetime | None] = {}
    for start in periods.buckets(period, grain):
        last = min(periods.next_bucket(start, grain), period.last + dt.timedelta(days=1))
        ends[start] = _last_week_end(start, last - dt.timedelta(days=1), tz)
    wanted = sorted({at for at in ends.values() if at is not None})
    counts: dict[tuple[dt.datetime, str], int] = {}
    at_risk: dict[dt.datetime, Decimal] = {}
    if wanted and filters.account_id is None:
        counts, at_risk = _from_rollup(wanted, filters)
    elif wanted:
        counts, at_risk = _from_snapshots(wanted, filters)
    points = []
    for start, end in ends.items():
        bands = {band: counts.get((end, band), 0) if end else 0 for band in HEALTH_BANDS}
        value = at_risk.get(end, Decimal(0)) if end else Decimal(0)
        points.append(BandPoint(start, periods.bucket_name(start, grain), end, bands, value))
    return points


def _from_rollup(
    wanted: list[dt.datetime], filters: queries.Filters
) -> tuple[dict[tuple[dt.datetime, str], int], dict[dt.datetime, Decimal]]:
    """Accounts per band and the value of those at risk at ``wanted`` weeks' ends, from the
    band rollup (its stale weeks counted first): a few hundred rows, whatever the grain."""
    health_rollup.refresh_stale()
    query = sa.select(
        HealthBandWeek.at,
        HealthBandWeek.band,
        sa.func.sum(HealthBandWeek.accounts),
        sa.func.sum(HealthBandWeek.value_cents),
    ).where(HealthBandWeek.at.in_(wanted))
    if filters.segment is not None:
        query = query.where(HealthBandWeek.segment == filters.segment)
    if filters.owner_id is not None:
        query = query.where(HealthBandWeek.owner_id == filters.owner_id)  # 0: no owner
    counts: dict[tuple[dt.datetime, str], int] = {}
    at_risk: dict[dt.datetime, Decimal] = {}
    rows = db.session.connection().execute(query.group_by(HealthBandWeek.at, HealthBandWeek.band))
    for at, band, accounts, cents in rows:
        counts[(at, band)] = int(accounts)
        if band == "at_risk":
            at_risk[at] = Decimal(int(cents or 0)).scaleb(-2)
    return counts, at_risk


def _from_snapshots(
    wanted: list[dt.datetime], filters: queries.Filters
) -> tuple[dict[tuple[dt.datetime, str], int], dict[dt.datetime, Decimal]]:
    """The same, counted from the snapshots: one account's (the rollup has no account)."""
    counts: dict[tuple[dt.datetime, str], int] = {}
    at_risk: dict[dt.datetime, Decimal] = {}
    narrowed = [HealthSnapshot.at.in_(wanted), *_where(filters)]
    per_band = (
        sa.select(HealthSnapshot.at, HealthSnapshot.band, sa.func.count())
        .join(Account, Account.id == HealthSnapshot.account_id)
        .where(*narrowed)
        .group_by(HealthSnapshot.at, HealthSnapshot.band)
    )
    for at, band, count in db.session.execute(per_band):
        counts[(at, band)] = count
    value_sum = sa.func.coalesce(sa.func.sum(Account.annual_value), 0)
    risky = (
        sa.select(HealthSnapshot.at, value_sum)
        .join(Account, Account.id == HealthSnapshot.account_id)
        .where(*narrowed, HealthSnapshot.band == "at_risk")
        .group_by(HealthSnapshot.at)
    )
    for at, total in db.session.execute(risky):
        at_risk[at] = Decimal(str(total))
    return counts, at_risk


def band_chart(points: t.Sequence[BandPoint]) -> dict[str, t.Any]:
    """Stacked bars: the accounts in each band at the end of each bucket."""
    known = [p for p in points if p.at is not None]
    data = [
        {
            "type": "bar",
            "name": charts.label(BAND_NAMES[band]),
            "x": [p.start.isoformat() for p in known],
            "y": [p.bands[band] for p in known],
            "marker": {"color": BAND_COLOURS[band]},
            "hovertext": [
                charts.label(f"{p.name}: {p.bands[band]} accounts {BAND_NAMES[band].lower()}")
                for p in known
            ],
            "hoverinfo": "text",
        }
        for band in HEALTH_BANDS
    ]
    return _figure(data, "accounts", barmode="stack")


def risk_chart(points: t.Sequence[BandPoint]) -> dict[str, t.Any]:
    """The annual value of the accounts at risk at the end of each bucket."""
    known = [p for p in points if p.at is not None]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": charts.label("Revenue at risk"),
            "x": [p.start.isoformat() for p in known],
            "y": [float(p.at_risk_value) for p in known],
            "line": {"color": charts.BAD, "width": 2},
            "hovertext": [
                charts.label(
                    f"{p.name}: {p.at_risk_value:,.0f} a year in {p.bands['at_risk']} accounts"
                )
                for p in known
            ],
            "hoverinfo": "text",
        }
    ]
    return _figure(data, "annual value at risk")


def _figure(data: list[dict[str, t.Any]], unit: str, **layout: t.Any) -> dict[str, t.Any]:
    return {
        "data": data,
        "layout": {
            "height": 300,
            "margin": {"l": 10, "r": 20, "t": 10, "b": 40},
            "font": {"family": charts.FONT, "color": "#1d2330", "size": 13},
            "paper_bgcolor": "#fff",
            "plot_bgcolor": "#fff",
            "showlegend": len(data) > 1,
            "legend": {"orientation": "h", "y": -0.2},
            "xaxis": {"type": "date", "gridcolor": charts.LINE, "automargin": True},
            "yaxis": {
                "title": {"text": charts.label(unit)},
                "gridcolor": charts.LINE,
                "fixedrange": True,
                "automargin": True,
                "rangemode": "tozero",
            },
            **layout,
        },
    }


def movers(
    period: periods.Period, filters: queries.Filters, tz: dt.tzinfo, *, limit: int = MOVERS
) -> tuple[list[Mover], list[Mover]]:
    """The accounts whose health score fell most and rose most over ``period``: from each
    account's first weekly snapshot in it (an account new in the period, or a young install,
    from its first week) to the period's last week with snapshots; each list biggest move
    first, and no account without a move or with no snapshot that last week."""
    now = utcnow()
    ends = [end for end in week_ends(period.first, period.last, tz) if end <= now]
    if len(ends) < 2:
        return [], []
    # The period's first and last weeks with snapshots: two seeks of the time index (one
    # min() and max() together would have SQLite read the year's every snapshot, 70 ms).
    weeks = sa.select(HealthSnapshot.at).where(
        HealthSnapshot.at >= ends[0], HealthSnapshot.at <= ends[-1]
    )
    first = db.session.scalar(weeks.order_by(HealthSnapshot.at).limit(1))
    last = db.session.scalar(weeks.order_by(HealthSnapshot.at.desc()).limit(1))
    if first is None or last is None or first == last:
        return [], []
    filtered = _where(filters)
    # A filter leaves few accounts: their scores read as rows cost less than the statement
    if db.session.get_bind().dialect.name == "postgresql" and not filtered:
        falling, rising = _movers_by_postgresql(first, last, limit)
        since = _newer_movers(first, last)  # none once every account has a year's history
        return (
            sorted([*falling, *(m for m in since if m.change < 0)], key=_fall)[:limit],
            sorted([*rising, *(m for m in since if m.change > 0)], key=_rise)[:limit],
        )

    def scores(at: dt.datetime, *columns: t.Any) -> t.Any:
        """Every account's score (and ``columns``) at ``at``, from the (at, account_id,
        score, band) index alone unless a filter needs the accounts."""
        query = sa.select(HealthSnapshot.account_id, HealthSnapshot.score, *columns)
        if filtered:
            query = query.join(Account, Account.id == HealthSnapshot.account_id)
        result = db.session.connection().execute(query.where(HealthSnapshot.at == at, *filtered))
        # A few thousand at a time, never one list of 10,000 rows: they die young instead of
        # filling the garbage collector's older generations (a full collection costs more
        # than the reading).
        return itertools.chain.from_iterable(result.partitions(queries.PARTITION))

    # Two index scans and a pass here cost a third of sorting the joined weeks twice in SQL.
    before: dict[int, int] = {account_id: score for account_id, score in scores(first)}
    falls: list[tuple[int, int, int, int, str]] = []
    rises: list[tuple[int, int, int, int, str]] = []
    newer: list[tuple[int, int, str]] = []  # no score that first week: from their own first

    def moved(account_id: int, earlier: int | None, score: int, band: str) -> None:
        if earlier is not None and score != earlier:
            move = (score - earlier, account_id, earlier, score, band)
            (falls if score < earlier else rises).append(move)

    for account_id, score, band in scores(last, HealthSnapshot.band):
        if account_id in before:
            moved(account_id, before[account_id], score, band)
        else:
            newer.append((account_id, score, band))
    firsts = _first_scores([account_id for account_id, _, _ in newer], first, last)
    for account_id, score, band in newer:
        moved(account_id, firsts.get(account_id), score, band)
    fell = heapq.nsmallest(limit, falls)
    rose = heapq.nsmallest(limit, rises, key=lambda m: (-m[0], m[1]))
    ids = [m[1] for m in (*fell, *rose)]
    named = db.session.execute(sa.select(Account.id, Account.name).where(Account.id.in_(ids)))
    names: dict[int, str] = {account_id: name for account_id, name in named}
    return (
        [Mover(m[1], names[m[1]], m[2], m[3], m[4]) for m in fell],
        [Mover(m[1], names[m[1]], m[2], m[3], m[4]) for m in rose],
    )


def _fall(m: Mover) -> tuple[int, int]:
    return (m.change, m.account_id)


def _rise(m: Mover) -> tuple[int, int]:
    return (-m.change, m.account_id)


def _newer_movers(first: dt.datetime, last: dt.datetime) -> list[Mover]:
    """The accounts scored at ``last`` but not at ``first``, moved since their own first
    snapshot (the PostgreSQL statement joins the two weeks, so it leaves them out)."""
    at_first = sa.orm.aliased(HealthSnapshot)
    query = sa.select(
        HealthSnapshot.account_id, HealthSnapshot.score, HealthSnapshot.band, Account.name
    ).join(Account, Account.id == HealthSnapshot.account_id)
    now_scored = (
        db.session.connection()
        .execute(
            query.where(
                HealthSnapshot.at == last,
                ~sa.exists().where(
                    at_first.account_id == HealthSnapshot.account_id, at_first.at == first
                ),
            )
        )
        .all()
    )
    before = _first_scores([row[0] for row in now_scored], first, last)
    return [
        Mover(account_id, name, before[account_id], score, band)
        for account_id, score, band, name in now_scored
        if account_id in before and before[account_id] != score
    ]


def _first_scores(account_ids: list[int], first: dt.datetime, last: dt.datetime) -> dict[int, int]:
    """Each account's score at its own first snapshot after ``first`` and before ``last``."""
    found: dict[int, int] = {}
    for start in range(0, len(account_ids), queries.PARTITION):
        at = (
            sa.select(HealthSnapshot.account_id, sa.func.min(HealthSnapshot.at).label("at"))
            .where(
                HealthSnapshot.account_id.in_(account_ids[start : start + queries.PARTITION]),
                HealthSnapshot.at > first,
                HealthSnapshot.at < last,
            )
            .group_by(HealthSnapshot.account_id)
            .subquery()
        )
        query = sa.select(HealthSnapshot.account_id, HealthSnapshot.score).join(
            at,
            sa.and_(at.c.account_id == HealthSnapshot.account_id, at.c.at == HealthSnapshot.at),
        )
        found.update({account: score for account, score in db.session.execute(query)})
    return found


def _movers_by_postgresql(
    first: dt.datetime, last: dt.datetime, limit: int
) -> tuple[list[Mover], list[Mover]]:
    """:func:`movers` of every account in one statement: the two weeks' scores joined on
    the account, and the biggest falls and rises each taken by a top-``limit`` sort (the
    same order as the pass in Python: the move, then the account), with the accounts'
    names; PostgreSQL does this faster than handing twenty thousand scores to Python."""
    before, after = sa.orm.aliased(HealthSnapshot), sa.orm.aliased(HealthSnapshot)
    change = (after.score - before.score).label("change")
    moved = (
        sa.select(
            after.account_id,
            before.score.label("before"),
            after.score.label("after"),
            after.band,
            change,
        )  # fmt: skip
        .join(before, before.account_id == after.account_id)
        .where(after.at == last, before.at == first, after.score != before.score)
    )
    rows = moved.cte("moved")
    ends = []
    for fell, order in ((True, rows.c.change), (False, rows.c.change.desc())):
        ends.append(
            sa.select(sa.literal(fell).label("fell"), *rows.c)
            .where(rows.c.change < 0 if fell else rows.c.change > 0)
            .order_by(order, rows.c.account_id)
            .limit(limit)
            .subquery()
        )
    both = sa.union_all(*(sa.select(*end.c) for end in ends)).subquery()
    named = sa.select(both, Account.name).join(Account, Account.id == both.c.account_id)
    fell_rows: list[Mover] = []
    rose_rows: list[Mover] = []
    for row in db.session.connection().execute(named):
        mover = Mover(row.account_id, row.name, row.before, row.after, row.band)
        (fell_rows if row.fell else rose_rows).append(mover)
    fell_rows.sort(key=_fall)
    rose_rows.sort(key=_rise)
    return fell_rows, rose_rows


def movers_chart(fell: t.Sequence[Mover], rose: t.Sequence[Mover]) -> dict[str, t.Any]:
    """One bar per account, its change in points, leading to the account's page; names
    escaped (they are customer text)."""
    bars = [
        charts.Bar(
            m.name,
            m.change,
            f"{m.name}: {m.before} → {m.after} ({m.change:+d})",
            url_for("accounts.account", account_id=m.account_id),
        )
        for m in [*fell, *reversed(rose)]
    ]
    return charts.bar_chart(bars, axis_title="change in health score", value_format="{:+.0f}")
