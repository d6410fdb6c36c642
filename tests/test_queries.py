"""The metric rollups and the trends read from them (``loyalty.dashboard.rollups`` and
``.queries``), and the health band rollup: kept current by marking days (weeks) stale,
equal to a fresh count from the raw rows on random data, and equal to an independent
calculation from ``export responses``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
import re

import pytest
import sqlalchemy as sa
from test_health_trends import _fresh_bands, _stored_bands

from loyalty import periods
from loyalty.accounts.rollup import week_ends
from loyalty.accounts.services import set_owner
from loyalty.dashboard import health_rollup, queries, rollups
from loyalty.db import db
from loyalty.models import (
    HEALTH_BANDS,
    Account,
    HealthSnapshot,
    MetricDay,
    MetricDayTotal,
    MetricStaleDay,
    Response,
    User,
    utcnow,
)
from loyalty.specs import surveys
from loyalty.survey.responses import save_response


def _rows() -> list[tuple]:
    columns = [getattr(MetricDay, name) for name in ("day", *rollups.KEY, *rollups.COUNTS)]
    found = db.session.execute(sa.select(*columns).order_by(*columns[:5])).all()
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in found]


def _totals() -> list[tuple]:
    """The stored day totals, checked against the day's rows summed (each day of rows has
    its total, and no other day has one)."""
    columns = [getattr(MetricDayTotal, name) for name in ("day", *rollups.COUNTS)]
    stored = db.session.execute(sa.select(*columns).order_by(MetricDayTotal.day)).all()
    found = [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in stored]
    summed: dict[dt.date, list[float]] = {}
    for row in _rows():
        into = summed.setdefault(row[0], [0] * len(rollups.COUNTS))
        for i, value in enumerate(row[1 + len(rollups.KEY) :]):
            into[i] += value
    expected = [
        (day, *(round(v, 6) if isinstance(v, float) else v for v in counts))
        for day, counts in sorted(summed.items())
    ]
    assert found == expected
    return found


def _last_year() -> periods.Period:
    today = periods.today(rollups.tz())
    return periods.Period(today - dt.timedelta(days=364), today)


@pytest.fixture
def random_answers(app, stored_answer):
    """Some 60 answers over a year from 8 accounts of both segments, a few changed after."""
    rng = random.Random(7)
    owner = User(email="owner@example.com", password_hash="x", role="support")
    db.session.add(owner)
    db.session.commit()
    for i in range(60):
        stored_answer(
            f"Account {i % 8}",
            segment="b2b" if i % 8 < 3 else "b2c",
            days_ago=rng.uniform(0.5, 360),
            nps=rng.randint(0, 10),
            csat=rng.choice([None, 1, 2, 3, 4, 5]),
            improve=rng.choice(["", "Slow delivery, bad.", "Great service!"]),
        )
    return rng


def test_the_rollups_equal_a_fresh_count_after_changes(app, random_answers):
    rollups.refresh_stale()
    # Each account's health in the last weeks (the health band rollup counts them).
    today = periods.today(rollups.tz())
    for account in db.session.scalars(sa.select(Account)):
        for at in week_ends(today - dt.timedelta(days=30), today, rollups.tz()):
            band = random_answers.choice(HEALTH_BANDS)
            db.session.add(
                HealthSnapshot(account=account, at=at, score=50, band=band, contributions="[]")
            )
    db.session.commit()
    health_rollup.refresh_stale()
    # A customer changes an answer; an account changes hands.
    survey = surveys(app)["post-sale"]
    account = db.session.scalar(sa.select(Account).where(Account.name == "Account 1"))
    response = db.session.scalars(
        sa.select(Response).where(Response.account_id == account.id).limit(1)
    ).one()
    save_response(response.invitation, survey, {"nps": 0, "csat": 1, "ces": 2}, complete=True)
    set_owner(account, "owner@example.com")
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MetricStaleDay)) > 0
    rollups.refresh_stale()
    incremental = _rows()
    assert incremental and not db.session.scalars(sa.select(MetricStaleDay)).all()
    totals = _totals()
    assert totals
    assert health_rollup.refresh_stale() > 0  # the new owner's account's weeks
    bands = _stored_bands()
    assert bands and bands == _fresh_bands()

    rollups.rebuild()
    assert _rows() == incremental
    assert _totals() == totals
    assert _stored_bands() == bands


def test_nothing_stored_counts_nothing(app):
    assert rollups.rebuild() == 0
    (points,) = queries.trend("nps", "month", _last_year()).values()
    assert len(points) in (12, 13) and all(p.reading.n == 0 for p in points)
    assert all(p.reading.value is None and p.reading.moe is None for p in points)


def test_the_api_equals_a_calculation_from_the_export(
    app, client, runner, random_answers, api_key, auth
):
    """The monthly NPS of B2C from the API and on the dashboard, against plain arithmetic
    on the exported CSV."""
    headers = {"Authorization": f"Bearer {api_key}"}
    period = _last_year()
    args = {"grain": "month", "from": period.first.isoformat(), "to": period.last.isoformat()}
    reply = client.get(
        "/api/v1/metrics/nps", query_string={**args, "segment": "b2c"}, headers=headers
    )
    assert reply.status_code == 200, reply.json
    served = {p["period"]: p for p in reply.json["points"]}

    exported = runner.invoke(args=["export", "responses"]).output
    b2c = {a.name for a in db.session.scalars(sa.select(Account)) if a.segment == "b2c"}
    tz = rollups.tz()
    by_month: dict[str, list[int]] = {}
    for row in csv.DictReader(io.StringIO(exported)):
        if row["account"] in b2c and row["nps"] != "":
            local = dt.datetime.fromisoformat(row["submitted_at"]).astimezone(tz)
            by_month.setdefault(f"{local.year}-{local.month:02d}", []).append(int(row["nps"]))
    assert by_month
    for month, scores in by_month.items():
        n = len(scores)
        promoters = sum(s >= 9 for s in scores) / n
        detractors = sum(s <= 6 for s in scores) / n
        expected = 100 * (promoters - detractors)
        moe = 1.96 * 100 * ((promoters + detractors - (promoters - detractors) ** 2) / n) ** 0.5
        point = served[month]
        assert point["n"] == n
        assert point["value"] == pytest.approx(expected, abs=0.01)
        assert point["moe"] == pytest.approx(moe, abs=0.01)
        # the interval's ends: the margin either side, cut at the scale's ends
        assert point["low"] == pytest.approx(max(-100, expected - moe), abs=0.02)
        assert point["high"] == pytest.approx(min(100, expected + moe), abs=0.02)
        assert point["low_confidence"] is (n < 30)
    assert all(served[m]["n"] == 0 for m in served if m not in by_month)

    # The dashboard's table under the NPS chart says the same numbers, to one decimal.
    auth.login("executive")
    html = client.get("/dashboard", query_string={**args, "segment": "b2c"}).get_data(as_text=True)
    table = re.search(r'aria-label="NPS: the numbers".*?</table>', html, re.S).group(0)
    row = r'<th scope="row">(\d{4}-\d\d)</th><td class="num">(.*?)</td><td class="num">(\d+)</td>'
    shown = {month: (value, int(n)) for month, value, n in re.findall(row, table)}
    assert set(shown) == set(served)
    for month, scores in by_month.items():
        value, n = shown[month]
        point = served[month]
        assert n == len(scores)
        assert value.startswith(f"{point['value']:.1f} ± {point['moe']:.1f}"), value


@pytest.fixture
def api_key(app) -> str:
    from loyalty.api.keys import create_key

    _, key = create_key("tests")
    db.session.commit()
    return key


def test_filters_and_splits(app, random_answers):
    rollups.refresh_stale()
    period = _last_year()
    whole = queries.total("nps", period)
    b2b = queries.total("nps", period, queries.Filters(segment="b2b"))
    b2c = queries.total("nps", period, queries.Filters(segment="b2c"))
    assert whole.n == b2b.n + b2c.n == 60
    # With no filter and no split, the days' totals are read: the same counts as every
    # key's rows summed.
    by_segment: dict[dt.date, dict[str, float]] = {}
    for day, _, counts in queries.day_counts(period, queries.Filters(), "segment"):
        into = by_segment.setdefault(day, dict.fromkeys(rollups.COUNTS, 0))
        for name, value in counts.items():
            into[name] += value
    totals = {day: counts for day, _, counts in queries.day_counts(period, queries.Filters())}
    assert totals.keys() == by_segment.keys()
    for day, counts in totals.items():
        assert counts == pytest.approx(by_segment[day]), day
    segments = [queries.period_counts(period, queries.Filters(segment=s)) for s in ("b2b", "b2c")]
    assert queries.period_counts(period, queries.Filters()) == pytest.approx(
        {name: segments[0][name] + segments[1][name] for name in rollups.COUNTS}
    )
    # One account's counts, from its own rows, add up over the accounts to the rollups'.
    ids = list(db.session.scalars(sa.select(Account.id)))
    for metric in ("nps", "csat", "comment_share", "response_rate"):
        ones = [queries.total(metric, period, queries.Filters(account_id=i)).n for i in ids]
        assert sum(ones) == queries.total(metric, period).n, metric
    split = queries.trend("csat", "quarter", period, split="segment")
    assert set(split) == {"b2b", "b2c"}
    assert (
        sum(p.reading.n for p in split["b2b"])
        == queries.total("csat", period, queries.Filters(segment="b2b")).n
    )
    # comments: the share with one, scored, negative
    share = queries.total("comment_share", period)
    assert 0 < share.value < 100 and share.n == 60


def test_an_owner_change_moves_the_answers_to_the_new_owner(app, stored_answer):
    owner = User(email="lead@example.com", password_hash="x", role="support")
    db.session.add(owner)
    account = stored_answer("Owned A/S", days_ago=40, nps=10)
    stored_answer("Owned A/S", days_ago=20, nps=2)
    rollups.refresh_stale()
    period = _last_year()
    assert queries.total("nps", period, queries.Filters(owner_id=owner.id)).n == 0
    set_owner(account, "lead@example.com")
    db.session.commit()
    rollups.refresh_stale()
    assert queries.total("nps", period, queries.Filters(owner_id=owner.id)).n == 2
    assert queries.total("nps", period, queries.Filters(owner_id=0)).n == 0


def test_the_dispatcher_tick_recounts_the_last_days(app, invite):
    invitation, _ = invite(account="Sent A/S", due_at=utcnow())
    invitation.status, invitation.sent_at = "sent", utcnow()
    db.session.commit()
    rollups.on_dispatch_tick(app, now=utcnow())
    assert queries.total("response_rate", _last_year()).n == 1  # delivered, not answered


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"segment": "b2x"}, "segment: must be one of"),
        ({"language": "de"}, "language: must be one of"),
        ({"owner": "nobody@example.com"}, "owner: no staff member"),
        ({"survey": "x" * 65}, "survey: at most 64"),
    ],
)
def test_bad_filters_say_what_is_wrong(app, args, message):
    with pytest.raises(queries.FilterError, match=message):
        queries.parse_filters(args)


def test_unknown_metric_and_split_are_refused(app):
    with pytest.raises(ValueError, match="metric"):
        queries.trend("loyalty", "month", _last_year())
    with pytest.raises(ValueError, match="split"):
        queries.trend("nps", "month", _last_year(), split="account")


def test_a_rebuild_counts_each_answer_on_its_local_day(app, stored_answer):
    """Answers seconds either side of local midnight, on ordinary days and the days the
    clocks change: the rebuild (on PostgreSQL one pass grouped by local day) counts them on
    the same days as counting day by day does."""
    zone = rollups.tz()
    today = periods.today(zone)
    days = [today - dt.timedelta(days=back) for back in (3, 40, 100)]
    days += [
        day
        for day in (today - dt.timedelta(days=back) for back in range(5, 360))
        if periods.midnight(day, zone).astimezone(zone).utcoffset()
        != periods.midnight(day + dt.timedelta(days=1), zone).astimezone(zone).utcoffset()
    ]
    for n, day in enumerate(days):
        for offset in (-30, 30, 2 * 3600 + 30):
            at = periods.midnight(day, zone) + dt.timedelta(seconds=offset)
            days_ago = (utcnow() - at).total_seconds() / 86400
            stored_answer(f"Account {n} {offset}", days_ago=days_ago, nps=n % 11)
    rollups.rebuild()
    rebuilt = _rows()
    first = min(rebuilt)[0]
    for back in range((today - first).days + 1):
        rollups.count_day(first + dt.timedelta(days=back), zone)
    db.session.commit()
    assert _rows() == rebuilt
    _totals()
