"""Periods of whole days: reading ``from``/``to`` (and the old ``start``/``end``), every
error, where a day begins in the company's zone (DST days included), and the two pages
that take a period answering alike."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from loyalty import periods
from loyalty.periods import Period, PeriodError

CPH = ZoneInfo("Europe/Copenhagen")
TODAY = dt.date(2026, 11, 22)
D = dt.date.fromisoformat

BAD_DATE = "Write dates as YYYY-MM-DD, like 2026-03-31."
YEARS = "Dates are between the years 2000 and 2999."
REVERSED = "The period must start before it ends: the first day must not be after the last day."
TOO_LONG = "The period can be at most ten years long."


def parse(args, days: int = 30) -> Period:
    return periods.parse(args, today=TODAY, default_days=days)


@pytest.mark.parametrize(
    ("args", "days", "expected"),
    [
        ({}, 30, ("2026-10-24", "2026-11-22")),
        ({}, 1, ("2026-11-22", "2026-11-22")),
        ({}, 91, ("2026-08-24", "2026-11-22")),
        ({"from": "2026-11-01"}, 30, ("2026-11-01", "2026-11-22")),
        ({"to": "2026-01-31"}, 30, ("2026-01-02", "2026-01-31")),
        ({"from": "2026-02-01", "to": "2026-02-28"}, 30, ("2026-02-01", "2026-02-28")),
        ({"from": "2026-11-22", "to": "2026-11-22"}, 30, ("2026-11-22", "2026-11-22")),
        # the names older links used
        ({"start": "2026-11-01"}, 30, ("2026-11-01", "2026-11-22")),
        ({"start": "2026-02-01", "end": "2026-02-28"}, 30, ("2026-02-01", "2026-02-28")),
        ({"from": "2026-03-01", "start": "2026-02-01"}, 30, ("2026-03-01", "2026-11-22")),
        # blank values are missing values
        ({"from": "", "to": "  "}, 30, ("2026-10-24", "2026-11-22")),
        ({"from": None, "to": None}, 30, ("2026-10-24", "2026-11-22")),
        ({"from": "", "start": "2026-11-01"}, 30, ("2026-11-01", "2026-11-22")),
        ({"from": " 2026-11-01 ", "to": "2026-11-02\t"}, 30, ("2026-11-01", "2026-11-02")),
    ],
)
def test_parse(args, days, expected):
    period = parse(args, days)
    assert period == Period(D(expected[0]), D(expected[1]))
    assert period.days == (period.last - period.first).days + 1


def test_the_default_counts_both_ends():
    assert parse({}, 30).days == 30
    assert parse({"to": "2026-03-31"}, 7).days == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2026-13-01"}, BAD_DATE),
        ({"to": "2026-02-30"}, BAD_DATE),
        ({"from": "yesterday"}, BAD_DATE),
        ({"end": "22/11/2026"}, BAD_DATE),
        ({"from": "2026-11-10", "to": "2026-11-01"}, REVERSED),
        ({"from": "2026-11-23"}, REVERSED),  # after today
        ({"from": "1999-12-31", "to": "2000-01-01"}, YEARS),
        ({"from": "0001-01-01"}, YEARS),
        ({"to": "3000-01-01"}, YEARS),
        ({"to": "9999-12-31"}, YEARS),
        ({"from": "2000-01-01", "to": "2026-01-01"}, TOO_LONG),
        ({"from": "2016-01-01", "to": "2026-01-12"}, TOO_LONG),
    ],
)
def test_errors(args, message):
    with pytest.raises(PeriodError) as caught:
        parse(args)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_ten_years_is_allowed():
    assert parse({"from": "2016-01-01", "to": "2025-12-31"}).days == 3653


def test_a_last_day_too_early_for_the_default_first_day_is_a_period_error():
    with pytest.raises(PeriodError, match="between the years"):
        parse({"to": "0001-01-05"})


@pytest.mark.parametrize(
    ("first", "last", "start", "end", "hours"),
    [
        # winter (CET, UTC+1) and summer (CEST, UTC+2): local midnight, not UTC's
        ("2026-01-15", "2026-01-15", "2026-01-14T23:00", "2026-01-15T23:00", 24),
        ("2026-07-01", "2026-07-31", "2026-06-30T22:00", "2026-07-31T22:00", 31 * 24),
        # the clocks go forward: a 23-hour day; and back: a 25-hour day
        ("2026-03-29", "2026-03-29", "2026-03-28T23:00", "2026-03-29T22:00", 23),
        ("2026-10-25", "2026-10-25", "2026-10-24T22:00", "2026-10-25T23:00", 25),
        ("2026-03-01", "2026-03-31", "2026-02-28T23:00", "2026-03-31T22:00", 31 * 24 - 1),
    ],
)
def test_bounds_are_local_midnights(first, last, start, end, hours):
    lower, upper = Period(D(first), D(last)).bounds(CPH)
    utc = dt.UTC
    assert lower == dt.datetime.fromisoformat(start).replace(tzinfo=utc)
    assert upper == dt.datetime.fromisoformat(end).replace(tzinfo=utc)
    assert lower.tzinfo == upper.tzinfo == utc
    assert upper - lower == dt.timedelta(hours=hours)
    assert lower.astimezone(CPH).time() == upper.astimezone(CPH).time() == dt.time()


def test_bounds_in_utc():
    assert Period(D("2026-03-29"), D("2026-03-29")).bounds(dt.UTC) == (
        dt.datetime(2026, 3, 29, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 30, tzinfo=dt.UTC),
    )


def test_args_round_trip():
    period = Period(D("2026-02-01"), D("2026-02-28"))
    assert period.args() == {"from": "2026-02-01", "to": "2026-02-28"}
    assert parse(period.args()) == period


@pytest.mark.parametrize(
    ("now", "utc_day", "cph_day"),
    [
        ("2026-01-15T22:59:59", "2026-01-15", "2026-01-15"),
        ("2026-01-15T23:00:00", "2026-01-15", "2026-01-16"),  # midnight in Copenhagen
        ("2026-07-15T21:59:59", "2026-07-15", "2026-07-15"),
        ("2026-07-15T22:00:00", "2026-07-15", "2026-07-16"),  # summer time: UTC+2
        ("2026-07-16T00:30:00", "2026-07-16", "2026-07-16"),
        ("2026-12-31T23:30:00", "2026-12-31", "2027-01-01"),
    ],
)
def test_today_in_the_zone(now, utc_day, cph_day):
    moment = dt.datetime.fromisoformat(now).replace(tzinfo=dt.UTC)
    assert periods.today(dt.UTC, moment) == D(utc_day)
    assert periods.today(CPH, moment) == D(cph_day)


def test_today_without_now_is_today():
    assert periods.today(CPH) == dt.datetime.now(CPH).date()


# --- the pages ---------------------------------------------------------------------------

PAGES = ["/funnel", "/responsiveness"]


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("names", [("from", "to"), ("start", "end")])
def test_pages_take_a_period(client, auth, page, names):
    auth.login("executive")
    first, last = names
    reply = client.get(f"{page}?{first}=2020-01-01&{last}=2020-01-31")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert 'name="from" value="2020-01-01"' in html and 'name="to" value="2020-01-31"' in html


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", BAD_DATE),
        ("to=9999-12-31", YEARS),
        ("from=2026-11-10&to=2026-11-01", REVERSED),
        ("from=2000-01-01&to=2020-01-01", TOO_LONG),
    ],
)
def test_pages_refuse_a_bad_period_alike(client, auth, page, query, message):
    auth.login("support")
    reply = client.get(f"{page}?{query}")
    assert reply.status_code == 400
    assert message in reply.get_data(as_text=True)


@pytest.mark.parametrize("page", PAGES)
def test_pages_refuse_a_last_day_in_year_one(client, auth, page):
    auth.login("support")
    reply = client.get(f"{page}?to=0001-01-05")
    assert reply.status_code == 400 and YEARS in reply.get_data(as_text=True)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # The default first day never falls before the first year a period may touch.
        ({"to": "2000-01-05"}, (dt.date(2000, 1, 1), dt.date(2000, 1, 5))),
        # Ten years is the longest period: 3660 days, both ends counted.
        ({"from": "2000-01-01", "to": "2010-01-07"}, (dt.date(2000, 1, 1), dt.date(2010, 1, 7))),
    ],
)
def test_periods_at_the_limits(args, expected):
    assert periods.parse(args, today=dt.date(2026, 11, 22), default_days=30) == expected


@pytest.mark.parametrize(
    "args",
    [
        {"from": "2000-01-01", "to": "2010-01-08"},  # 3661 days
        {"to": "1999-06-01"},  # a last day before the first year
    ],
)
def test_periods_beyond_the_limits(args):
    with pytest.raises(periods.PeriodError):
        periods.parse(args, today=dt.date(2026, 11, 22), default_days=30)


# --- grains ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "grain", "start", "name"),
    [
        (dt.date(2026, 1, 1), "week", dt.date(2025, 12, 29), "2026-W01"),
        (dt.date(2026, 3, 31), "month", dt.date(2026, 3, 1), "2026-03"),
        (dt.date(2026, 12, 31), "quarter", dt.date(2026, 10, 1), "2026-Q4"),
    ],
)
def test_buckets_start_and_are_named(day, grain, start, name):
    assert periods.bucket_start(day, grain) == start
    assert periods.bucket_name(start, grain) == name


def test_the_buckets_of_a_period_touch_it_all():
    period = periods.Period(dt.date(2025, 11, 15), dt.date(2026, 2, 3))
    assert periods.buckets(period, "month") == [
        dt.date(2025, 11, 1),
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]
    assert periods.buckets(period, "quarter") == [dt.date(2025, 10, 1), dt.date(2026, 1, 1)]
    assert periods.next_bucket(dt.date(2026, 10, 1), "quarter") == dt.date(2027, 1, 1)
    weeks = periods.buckets(period, "week")
    assert weeks[0] == dt.date(2025, 11, 10) and all(w.weekday() == 0 for w in weeks)


def test_a_bad_grain_says_the_choices():
    with pytest.raises(periods.PeriodError, match="grain: must be one of week, month, quarter"):
        periods.parse_grain("day")
    assert periods.parse_grain(None) == "month" and periods.parse_grain(" Week ") == "week"


def test_times_for_people_name_the_zone_and_for_files_have_offset_and_whole_seconds():
    moment = dt.datetime(2026, 1, 15, 15, 0, 7, 123456, tzinfo=dt.UTC)
    cph = ZoneInfo("Europe/Copenhagen")
    assert periods.local_text(moment, cph) == "2026-01-15 16:00 CET"
    assert periods.local_text(moment, cph, "%Y-%m-%d") == "2026-01-15"  # a day: no zone
    assert periods.csv_time(moment) == "2026-01-15T15:00:07+00:00"
    assert periods.csv_time(None) == ""
