"""Account health on the dashboard (``loyalty.dashboard.health_trends``): accounts per band
and revenue at risk at each bucket's end, and the accounts that moved most, names escaped."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from test_dashboard import _figures

from loyalty import periods
from loyalty.accounts import health
from loyalty.accounts.rollup import week_ends
from loyalty.dashboard import health_trends, queries
from loyalty.dashboard.rollups import tz
from loyalty.db import db
from loyalty.models import Account, HealthSnapshot

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
    assert fell[0].after == max(0, 80 - 5 * (len(week_ends(period.first, period.last, tz())) - 1))


def test_the_dashboard_shows_health_and_escapes_account_names(client, auth):
    period, (falling, _, _) = _history()
    auth.login("executive")
    query = f"from={period.first.isoformat()}&to={period.last.isoformat()}&grain=month"
    html = client.get(f"/dashboard?{query}").get_data(as_text=True)
    figures = _figures(html)
    assert {"chart-health-bands", "chart-revenue-at-risk", "chart-movers"} <= set(figures)
    bars = figures["chart-movers"]["data"][0]
    assert "&lt;b&gt;x&lt;/b&gt;&lt;a href=" in bars["y"][0]  # Plotly shows it as text
    assert all("<" not in label for label in bars["y"] + bars["hovertext"])
    assert bars["customdata"][0] == f"/accounts/{falling.id}"  # a click opens the account
    table = re.search(r'aria-label="Accounts that moved most: the numbers".*?</table>', html, re.S)
    assert table and "&lt;img src=x onerror=" in table.group(0) and "<img src=x" not in html
    assert f"/accounts/{falling.id}" in table.group(0)
