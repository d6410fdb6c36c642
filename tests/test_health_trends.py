"""Account health on the dashboard (``loyalty.dashboard.health_trends``): accounts per band
and revenue at risk at each bucket's end, read from the band rollup kept current (equal to a
fresh count on random data), and the accounts that moved most, names escaped."""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal

import sqlalchemy as sa
from test_dashboard import _figures

from loyalty import periods
from loyalty.accounts import health, rollup
from loyalty.accounts.rollup import week_ends
from loyalty.accounts.services import set_owner
from loyalty.dashboard import health_rollup, health_trends, queries, rollups
from loyalty.dashboard.rollups import tz
from loyalty.db import db
from loyalty.models import (
    HEALTH_BANDS,
    Account,
    HealthBandWeek,
    HealthSnapshot,
    HealthStaleWeek,
    User,
)

NAME = '<b>x</b><a href="https://evil.example">y</a><img src=x onerror="alert(1)">'


def _history() -> tuple[periods.Period, list[Account]]:
    """Three accounts' weekly scores over the last three full months: one falls to at risk
    (its name is markup), one rises, one stays."""
    today = periods.today(tz())
    first = (today.replace(day=1) - dt.timedelta(days=80)).replace(day=1)
    period = periods.Period(first, today)
    ends = week_ends(first, today, tz())
    falling = Account(name=NAME, segment="b2b", annual_value=Decimal(1000))
    rising = Account(name="Rising A/S", segment="b2c", annual_value=Decimal(50))
    steady = Account(name="Steady ApS", segment="b2c", annual_value=Decimal(7))
    db.session.add_all([falling, rising, steady])
    db.session.flush()
    for i, at in enumerate(ends):
        for acc, score in ((falling, 80 - 5 * i), (rising, 30 + 3 * i), (steady, 70)):
            score = max(0, min(100, score))
            band = health.band_for(score, health.DEFAULT_RULES)
            db.session.add(
                HealthSnapshot(account_id=acc.id, at=at, score=score, band=band, contributions="[]")
            )
    db.session.commit()
    return period, [falling, rising, steady]


def test_bands_and_revenue_at_risk_at_each_buckets_end(app):
    period, (falling, rising, steady) = _history()
    points = health_trends.band_trend("month", period, queries.Filters(), tz())
    assert [p.name for p in points] == [b.isoformat()[:7] for b in periods.buckets(period, "month")]
    for p in points:
        if p.at is None:
            continue
        stored = db.session.query(HealthSnapshot).filter(HealthSnapshot.at == p.at).all()
        expected = {band: sum(s.band == band for s in stored) for band in p.bands}
        assert p.bands == expected
        at_risk = {s.account_id for s in stored if s.band == "at_risk"}
        assert p.at_risk_value == (Decimal(1000) if falling.id in at_risk else 0) + (
            Decimal(50) if rising.id in at_risk else 0
        )
    latest = [p for p in points if p.at is not None][-1]  # a month with no week ended: none
    assert latest.bands["at_risk"] == 1 and latest.at_risk_value == 1000
    b2c = health_trends.band_trend("month", period, queries.Filters(segment="b2c"), tz())
    assert all(sum(p.bands.values()) in (0, 2) for p in b2c)


def test_the_accounts_that_moved_most(app):
    period, (falling, rising, steady) = _history()
    fell, rose = health_trends.movers(period, queries.Filters(), tz())
    assert [m.account_id for m in fell] == [falling.id]
    assert [m.account_id for m in rose] == [rising.id]
    assert fell[0].change < 0 < rose[0].change
    assert fell[0].before == 80  # the score at the end of the period's first week
    # the last week's end that has come (on a Sunday, the coming midnight's has not)
    ended = [end for end in week_ends(period.first, period.last, tz()) if end <= rollups.utcnow()]
    assert fell[0].after == max(0, 80 - 5 * (len(ended) - 1))


def test_the_dashboard_shows_health_and_escapes_account_names(client, auth):
    period, (falling, _, _) = _history()
    auth.login("executive")
    query = f"from={period.first.isoformat()}&to={period.last.isoformat()}&grain=month"
    html = client.get(f"/dashboard?{query}").get_data(as_text=True)
    figures = _figures(html)
    assert {"chart-health-bands", "chart-revenue-at-risk", "chart-movers"} <= set(figures)
    bars, labels = (
        figures["chart-movers"]["data"][0],
        figures["chart-movers"]["layout"]["yaxis"]["ticktext"],
    )
    assert "&lt;b&gt;x&lt;/b&gt;&lt;a href=" in labels[0]  # Plotly shows it as text
    assert all("<" not in label for label in labels + bars["hovertext"])
    assert bars["customdata"][0] == f"/accounts/{falling.id}"  # a click opens the account
    table = re.search(r'aria-label="Accounts that moved most: the numbers".*?</table>', html, re.S)
    assert table and "&lt;img src=x onerror=" in table.group(0) and "<img src=x" not in html
    assert f"/accounts/{falling.id}" in table.group(0)


def _fresh_bands() -> list[tuple]:
    """The band rollup as a fresh count from the snapshots and accounts, in Python."""
    found: dict[tuple, list] = {}
    query = sa.select(
        HealthSnapshot.at, Account.segment, Account.owner_id, HealthSnapshot.band,
        Account.annual_value,
    ).join(Account, Account.id == HealthSnapshot.account_id)  # fmt: skip
    for at, segment, owner_id, band, value in db.session.execute(query):
        row = found.setdefault((at, segment, owner_id or 0, band), [0, 0])
        row[0] += 1
        row[1] += int(Decimal(value or 0) * 100)
    return sorted((*key, *row) for key, row in found.items())


def _stored_bands() -> list[tuple]:
    columns = ("at", "segment", "owner_id", "band", "accounts", "value_cents")
    query = sa.select(*(getattr(HealthBandWeek, name) for name in columns))
    return sorted(tuple(row) for row in db.session.execute(query))


def test_the_band_rollup_equals_a_fresh_count_after_changes(app):
    """Random snapshots of random accounts; then snapshots replaced, removed and rebuilt,
    and accounts changing segment, owner and value: the rollup kept current equals a count
    from scratch, and the chart reads what the snapshots say for every filter."""
    rng = random.Random(11)
    owners = [User(email=f"o{i}@example.com", password_hash="x", role="support") for i in (1, 2)]
    db.session.add_all(owners)
    accounts = [
        Account(
            name=f"Account {i}",
            segment=rng.choice(["b2b", "b2c"]),
            owner=rng.choice([None, *owners]),
            annual_value=Decimal(rng.randint(0, 10**7)) / 100,
        )
        for i in range(12)
    ]
    db.session.add_all(accounts)
    db.session.flush()
    today = periods.today(tz())
    period = periods.Period(today - dt.timedelta(days=120), today)
    ends = week_ends(period.first, period.last, tz())
    for account in accounts:
        for at in rng.sample(ends, rng.randint(1, len(ends))):
            score = rng.randint(0, 100)
            band = health.band_for(score, health.DEFAULT_RULES)
            db.session.add(
                HealthSnapshot(account=account, at=at, score=score, band=band, contributions="[]")
            )
    db.session.commit()
    assert health_rollup.refresh_stale() > 0
    assert _stored_bands() == _fresh_bands()

    snapshots = db.session.scalars(sa.select(HealthSnapshot).order_by(HealthSnapshot.id)).all()
    for snapshot in rng.sample(snapshots, 5):  # replaced
        snapshot.band = rng.choice([b for b in HEALTH_BANDS if b != snapshot.band])
    taken = {(s.account_id, s.at) for s in snapshots}
    moved = next(s for s in snapshots if any((s.account_id, at) not in taken for at in ends))
    moved.at = next(at for at in ends if (moved.account_id, at) not in taken)  # to a free week
    db.session.delete(rng.choice(snapshots))
    db.session.commit()
    health_rollup.refresh_stale()
    assert _stored_bands() == _fresh_bands()
    before = db.session.scalar(sa.select(sa.func.count()).select_from(HealthSnapshot))
    rollup.rebuild(ends[-3:])  # the last weeks' snapshots replaced in bulk (none: new accounts)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(HealthSnapshot)) < before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(HealthStaleWeek)) == 0
    assert _stored_bands() == _fresh_bands()
    set_owner(accounts[0], "o2@example.com")
    set_owner(accounts[1], None)
    accounts[2].segment = "b2c" if accounts[2].segment == "b2b" else "b2b"
    accounts[3].annual_value = Decimal("12345.67")
    db.session.commit()
    assert health_rollup.refresh_stale() > 0
    incremental = _stored_bands()
    assert incremental == _fresh_bands()

    for filters in (
        queries.Filters(),
        queries.Filters(segment="b2b"),
        queries.Filters(owner_id=owners[0].id),
        queries.Filters(owner_id=0, segment="b2c"),
    ):
        wanted = sorted({s.at for s in db.session.scalars(sa.select(HealthSnapshot))})
        assert health_trends._from_rollup(wanted, filters) == health_trends._from_snapshots(
            wanted, filters
        )
    rollups.rebuild()
    assert _stored_bands() == incremental


def test_the_movers_of_a_history_younger_than_the_period(app):
    """A year's view of an install whose weekly health began a month ago: the moves since
    its first snapshot, not nothing for want of one at the year's start."""
    today = periods.today(tz())
    period = periods.Period(today - dt.timedelta(days=364), today)
    ends = [end for end in week_ends(period.first, today, tz()) if end <= rollups.utcnow()]
    young = Account(name="Young A/S", segment="b2b", annual_value=Decimal(1))
    newer = Account(name="Newer A/S", segment="b2b", annual_value=Decimal(1))
    brand_new = Account(name="Brand New A/S", segment="b2b", annual_value=Decimal(1))
    db.session.add_all([young, newer, brand_new])
    db.session.flush()
    histories = {
        young: list(zip(ends[-4:], (80, 70, 60, 45), strict=True)),
        newer: list(zip(ends[-2:], (50, 65), strict=True)),  # new since the first week
        brand_new: [(ends[-1], 90)],  # one score: no move yet
    }
    for account, history in histories.items():
        for at, score in history:
            band = health.band_for(score, health.DEFAULT_RULES)
            db.session.add(
                HealthSnapshot(
                    account_id=account.id, at=at, score=score, band=band, contributions="[]"
                )
            )
    db.session.commit()
    for filters in (queries.Filters(), queries.Filters(segment="b2b")):
        fell, rose = health_trends.movers(period, filters, tz())
        assert [(m.account_id, m.before, m.after) for m in fell] == [(young.id, 80, 45)]
        assert [(m.account_id, m.before, m.after) for m in rose] == [(newer.id, 50, 65)]


def test_the_movers_equal_a_fresh_pass_over_random_scores(app):
    """The biggest falls and rises (on PostgreSQL taken by the database) in the order of a
    plain pass over every account's two scores: the move, then the account; ties included,
    an account with one score only left out, and a segment filter that joins the accounts."""
    rng = random.Random(3)
    today = periods.today(tz())
    period = periods.Period(today - dt.timedelta(days=60), today)
    ends = [end for end in week_ends(period.first, period.last, tz()) if end <= rollups.utcnow()]
    first, last = ends[0], ends[-1]
    accounts = [
        Account(name=f"Mover {i}", segment=rng.choice(["b2b", "b2c"]), annual_value=Decimal(1))
        for i in range(40)
    ]
    db.session.add_all(accounts)
    db.session.flush()
    scores: dict[int, tuple[int, int | None]] = {}
    middle = ends[len(ends) // 2]
    for account in accounts:
        before, after = rng.choice([40, 50, 60]), rng.choice([30, 50, 70, None])
        scores[account.id] = (before, after)
        since = rng.choice([first, middle])  # some new in the period: from their own first
        for at, score in ((since, before), (last, after)):
            if score is not None:
                band = health.band_for(score, health.DEFAULT_RULES)
                db.session.add(
                    HealthSnapshot(
                        account_id=account.id, at=at, score=score, band=band, contributions="[]"
                    )
                )
    db.session.commit()
    for segment in (None, "b2b"):
        moves = [
            (after - before, account.id)
            for account in accounts
            for before, after in [scores[account.id]]
            if after is not None and after != before and segment in (None, account.segment)
        ]
        fell, rose = health_trends.movers(period, queries.Filters(segment=segment), tz(), limit=5)
        assert [(m.change, m.account_id) for m in fell] == sorted(m for m in moves if m[0] < 0)[:5]
        expected_rose = sorted((m for m in moves if m[0] > 0), key=lambda m: (-m[0], m[1]))[:5]
        assert [(m.change, m.account_id) for m in rose] == expected_rose
        names = {a.id: a.name for a in accounts}
        assert all(m.name == names[m.account_id] for m in [*fell, *rose])
