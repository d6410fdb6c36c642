"""Responsiveness on the dashboard (``loyalty.dashboard.sla``): the cases of each bucket,
with the same figures as ``/responsiveness`` for the same cases."""

from __future__ import annotations

import datetime as dt
import re

from test_dashboard import _figures
from test_responsiveness import later_answer, make_case

from loyalty import periods
from loyalty.dashboard import queries, sla
from loyalty.dashboard.rollups import tz
from loyalty.triage.responsiveness import case_facts, summarize


def _cases() -> None:
    # January: two cases, one contacted within its 8 business hours, one late
    make_case("2025-01-06 09:00", contacted="2025-01-06 11:00", resolved="2025-01-07 10:00")
    make_case("2025-01-08 09:00", contacted="2025-01-10 09:00", segment="b2b")
    # March: one case, resolved, whose detractor answered again as a promoter
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 10:00", resolved="2025-03-04 09:00")
    later_answer(case, "2025-03-20 10:00", 9)


def test_each_bucket_has_the_figures_of_its_cases(app):
    _cases()
    period = periods.Period(dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    buckets = sla.trend("month", period, queries.Filters(), tz())
    assert [b.name for b in buckets] == ["2025-01", "2025-02", "2025-03"]
    assert [b.cases for b in buckets] == [2, 0, 1]
    january, february, march = buckets
    # the same numbers as the responsiveness page for January's cases alone
    (total,) = summarize(
        case_facts(*periods.Period(period.first, dt.date(2025, 1, 31)).bounds(tz()))
    )["total"]
    assert january.group.first_contact.median == total.first_contact.median
    assert january.group.first_contact.p90 == total.first_contact.p90
    assert january.first_contact_in_sla(30).value == 50.0
    assert january.first_contact_in_sla(30).low_confidence
    assert february.first_contact_median(30).value is None
    assert march.recovery(30).value == 100.0 and march.recovery(30).n == 1
    b2b = sla.trend("month", period, queries.Filters(segment="b2b"), tz())
    assert [b.cases for b in b2b] == [1, 0, 0]


def test_the_dashboard_charts_responsiveness_with_its_table(client, auth):
    _cases()
    auth.login("executive")
    html = client.get("/dashboard?from=2025-01-01&to=2025-03-31&grain=month").get_data(as_text=True)
    figures = _figures(html)
    hours = {trace["name"]: trace for trace in figures["chart-case-hours"]["data"]}
    assert set(hours) == {"First contact", "Resolution"}
    assert hours["First contact"]["x"] == ["2025-01-01", "2025-03-01"]  # no point without cases
    shares = {trace["name"] for trace in figures["chart-case-sla"]["data"]}
    assert shares == {"First contact within SLA", "Resolved within SLA", "Recovery rate"}
    table = re.search(
        r'aria-label="Within the SLA and recovery: the numbers".*?</table>', html, re.S
    )
    assert table and '<th scope="row">2025-01</th><td class="num">50%' in table.group(0)


def test_a_case_belongs_to_the_bucket_of_its_local_opening_time(app):
    """Bucket edges are local midnights (here across the switch to summer time, and to a
    microsecond), whether the case was read as stored text or as a time; and figures from
    a filter by owner or segment join the accounts."""
    from test_responsiveness import cph

    from loyalty.db import db
    from loyalty.models import Case

    last_of_march = make_case("2025-03-31 23:59", segment="b2b")
    first_of_april = make_case("2025-04-01 00:00", segment="b2b")
    last_of_march.opened_at = cph("2025-03-31 23:59:59.999999")
    db.session.commit()
    period = periods.Period(dt.date(2025, 3, 1), dt.date(2025, 4, 30))
    buckets = sla.trend("month", period, queries.Filters(), tz())
    assert [(b.name, b.cases) for b in buckets] == [("2025-03", 1), ("2025-04", 1)]
    weeks = sla.trend("week", period, queries.Filters(segment="b2b"), tz())
    assert [b.cases for b in weeks if b.cases] == [2]  # Monday 31 March's week holds both
    assert db.session.get(Case, first_of_april.id).opened_at == cph("2025-04-01 00:00")
    assert sla.trend("month", period, queries.Filters(segment="b2c"), tz())[0].cases == 0


def test_the_figures_counted_by_the_database_equal_a_fresh_count_on_random_cases(app):
    """Medians and p90s from the few ranked values the database hands back, the counts it
    sums per bucket: the same numbers as the responsiveness page counts case by case, on
    random cases (ties, open cases past their due time, empty buckets), per month and per
    week, with and without a filter."""
    import random

    rng = random.Random(7)
    for _ in range(70):
        opened = dt.datetime(2025, 1, 2, 8) + dt.timedelta(hours=rng.randrange(0, 24 * 80, 3))
        contacted = opened + dt.timedelta(hours=rng.choice([1, 2, 2, 5, 30, 70]))
        resolved = contacted + dt.timedelta(hours=rng.choice([3, 3, 20, 100]))
        kind = rng.random()
        case = make_case(
            opened.strftime("%Y-%m-%d %H:%M"),
            contacted=None if kind < 0.15 else contacted.strftime("%Y-%m-%d %H:%M"),
            resolved=None if kind < 0.4 else resolved.strftime("%Y-%m-%d %H:%M"),
            segment=rng.choice(["b2b", "b2c"]),
        )
        if kind > 0.6:  # its detractor answered again, recovered or not
            later = resolved + dt.timedelta(days=3)
            later_answer(case, later.strftime("%Y-%m-%d %H:%M"), rng.choice([2, 8, 10]))
    period = periods.Period(dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    for grain, segment in (("month", None), ("week", None), ("week", "b2b"), ("quarter", "b2c")):
        buckets = sla.trend(grain, period, queries.Filters(segment=segment), tz())
        assert sum(b.cases for b in buckets) > 0
        for bucket in buckets:
            first = max(bucket.start, period.first)
            last = min(periods.next_bucket(bucket.start, grain) - dt.timedelta(days=1), period.last)
            facts = case_facts(*periods.Period(first, last).bounds(tz()), segment=segment)
            (total,) = summarize(facts)["total"]
            got = bucket.group
            assert got.cases == total.cases
            for mine, theirs in (
                (got.first_contact, total.first_contact),
                (got.resolution, total.resolution),
            ):
                assert (mine.n, mine.median, mine.p90) == (
                    len(theirs.hours),
                    theirs.median,
                    theirs.p90,
                )
                assert (mine.in_sla, mine.judged) == (theirs.in_sla, theirs.judged)
            assert (got.answered_again, got.recovered) == (total.answered_again, total.recovered)
        assert sum(b.group.answered_again for b in buckets) > 0
