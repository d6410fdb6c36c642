"""Business-hours clock maths: adding targets and measuring, across nights, weekends,
holidays and daylight-saving changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from loyalty.triage.business_hours import (
    Calendar,
    CalendarError,
    calendar_from_settings,
    holiday_checker,
    parse_hours,
    parse_workdays,
)

CPH = ZoneInfo("Europe/Copenhagen")


def cph(text: str) -> dt.datetime:
    """A Copenhagen wall-clock time, e.g. "2026-03-02 09:00"."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=CPH)


@pytest.fixture(scope="module")
def danish() -> Calendar:
    """The default calendar: Copenhagen, Monday-Friday 8-17, Danish holidays, 24/12, 31/12."""
    return calendar_from_settings(
        timezone="Europe/Copenhagen",
        workdays="mon-fri",
        hours="08:00-17:00",
        country="DK",
        extra=["12-24", "12-31"],
    )


# 2026-03-02 is a Monday. Easter 2026: Maundy Thursday 2 April to Easter Monday 6 April.
@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ("2026-03-02 09:00", 0, "2026-03-02 09:00"),
        ("2026-03-02 09:00", 4, "2026-03-02 13:00"),
        ("2026-03-02 09:00", 8, "2026-03-02 17:00"),  # due at closing time, not next morning
        ("2026-03-02 09:00", 8.5, "2026-03-03 08:30"),
        ("2026-03-02 06:00", 8, "2026-03-02 16:00"),  # before opening counts from 08:00
        ("2026-03-02 20:00", 8, "2026-03-03 16:00"),  # after closing counts from tomorrow
        ("2026-03-06 16:00", 8, "2026-03-09 15:00"),  # Friday afternoon: over the weekend
        ("2026-03-07 12:00", 8, "2026-03-09 16:00"),  # a Saturday complaint
        ("2026-04-01 12:00", 8, "2026-04-07 11:00"),  # Wednesday before Easter
        ("2026-12-23 12:00", 8, "2026-12-28 11:00"),  # 24, 25, 26 and the weekend are off
        ("2026-12-30 17:00", 1, "2027-01-04 09:00"),  # 31 Dec, 1 Jan, weekend
        ("2026-03-02 09:00", 45, "2026-03-09 09:00"),  # a week of 9-hour days
    ],
)
def test_add_business_hours(danish, start, hours, due):
    assert danish.add(cph(start), hours) == cph(due)
    assert danish.add(cph(start), hours).tzinfo == dt.UTC


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2026-03-02 09:00", "2026-03-02 09:00", 0),
        ("2026-03-02 09:00", "2026-03-02 08:00", 0),  # backwards is nothing
        ("2026-03-02 09:00", "2026-03-02 12:30", 3.5),
        ("2026-03-02 06:00", "2026-03-02 20:00", 9),
        ("2026-03-06 16:00", "2026-03-09 09:00", 2),  # over a weekend
        ("2026-03-07 10:00", "2026-03-08 15:00", 0),  # all weekend
        ("2026-04-01 16:00", "2026-04-07 09:00", 2),  # Easter
        ("2026-03-02 08:00", "2026-03-09 08:00", 45),
    ],
)
def test_hours_between(danish, start, end, hours):
    assert danish.between(cph(start), cph(end)) == pytest.approx(hours)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # Summer time starts Sunday 29 March 2026 and ends Sunday 25 October 2026: a working
        # day stays 08:00-17:00 on the wall clock on both sides.
        ("2026-03-27 16:00", 2, "2026-03-30 09:00"),
        ("2026-10-23 16:00", 2, "2026-10-26 09:00"),
    ],
)
def test_daylight_saving_keeps_the_wall_clock(danish, start, hours, due):
    assert danish.add(cph(start), hours) == cph(due)
    assert danish.between(cph(start), cph(due)) == pytest.approx(hours)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-03-02", True),
        ("2026-03-07", False),  # Saturday
        ("2026-04-03", False),  # Good Friday
        ("2026-05-14", False),  # Ascension Day
        ("2026-05-01", True),  # not a public holiday in Denmark
        ("2026-06-05", True),  # Constitution Day: an afternoon off for many, but not by law
        ("2026-12-24", False),  # extra day from the settings
        ("2026-12-31", False),
        ("2027-05-21", True),  # Store Bededag was abolished from 2024
    ],
)
def test_danish_working_days(danish, day, working):
    assert danish.is_working_day(dt.date.fromisoformat(day)) is working


def test_add_and_between_agree(danish):
    start = cph("2026-12-18 15:37")
    for hours in (0.5, 3, 9, 17.25, 40, 100):
        assert danish.between(start, danish.add(start, hours)) == pytest.approx(hours)


def test_other_zones_days_and_hours():
    calendar = calendar_from_settings(
        timezone="America/New_York", workdays="sun-thu", hours="09:30-18:00", country=None
    )
    friday = dt.datetime(2026, 3, 6, 12, tzinfo=ZoneInfo("America/New_York"))
    due = calendar.add(friday, 1)
    assert due.astimezone(ZoneInfo("America/New_York")) == dt.datetime(
        2026, 3, 8, 10, 30, tzinfo=ZoneInfo("America/New_York")
    )


@pytest.mark.parametrize(
    ("value", "days"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        ("Mon-Tue, Sat", {0, 1, 5}),
        ("sun-thu", {6, 0, 1, 2, 3}),
        (["mon", "tue"], {0, 1}),
        ([0, 6], {0, 6}),
    ],
)
def test_parse_workdays(value, days):
    assert parse_workdays(value) == days


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_workdays("monday"), "not a day"),
        (lambda: parse_workdays(""), "not a day"),
        (lambda: parse_hours("8-17"), "not like 08:00-17:00"),
        (lambda: parse_hours("17:00-08:00"), "must end after it starts"),
        (lambda: parse_hours("08:00-25:00"), "not a time of day"),
        (lambda: holiday_checker("XX"), "not a country code"),
        (lambda: holiday_checker(None, extra=["24/12"]), "MM-DD"),
        (lambda: holiday_checker(None, extra=["02-30"]), "MM-DD"),
        (
            lambda: calendar_from_settings(
                timezone="Mars/Olympus", workdays="mon-fri", hours="08:00-17:00", country=None
            ),
            "not a known IANA zone",
        ),
    ],
)
def test_bad_settings_say_what_is_wrong(call, message):
    with pytest.raises(CalendarError, match=message):
        call()


def test_one_off_closing_day():
    is_holiday = holiday_checker(None, extra=["2026-03-03"])
    assert is_holiday(dt.date(2026, 3, 3)) and not is_holiday(dt.date(2027, 3, 3))


def test_naive_datetimes_are_refused(danish):
    with pytest.raises(ValueError, match="naive"):
        danish.add(dt.datetime(2026, 3, 2, 9), 1)


def naive_between(calendar: Calendar, a: dt.datetime, b: dt.datetime) -> float:
    """Day by day, the obvious way: what the running totals must agree with."""
    total, day = 0.0, a.astimezone(calendar.tz).date()
    while day <= b.astimezone(calendar.tz).date():
        if calendar.is_working_day(day):
            start, end = calendar.window(day)
            total += max((min(end, b) - max(start, a)).total_seconds(), 0)
        day += dt.timedelta(days=1)
    return total / 3600


def test_running_totals_agree_with_counting_day_by_day(danish):
    import random

    rng = random.Random(7)
    origin = cph("2025-10-01 00:00")
    for _ in range(300):
        a = origin + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 500))
        b = a + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * rng.choice([1, 10, 400])))
        assert danish.between(a, b) == pytest.approx(naive_between(danish, a, b), abs=1e-9)
