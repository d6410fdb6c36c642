"""Business-hours clock maths for SLA targets: adding and measuring working time.

Pure Python, no Flask: a :class:`Calendar` is built once from settings and then only
answers questions. Working time is counted in the company's own time zone, so a day's
window (08:00-17:00 by default) stays 08:00-17:00 local across daylight-saving changes;
every moment going in or out is an aware datetime, returned in UTC.

Holidays come from the ``holidays`` package (kept up to date by its maintainers, with
Denmark's moveable Easter feasts and the 2024 removal of Store Bededag), plus days the
company adds itself (Christmas Eve, say).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
import typing as t
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
#: A clock never needs more than this many days to add a target; it stops a calendar with
#: no working days at all from looping for ever.
_MAX_DAYS = 3_660


class _FirstDays(dict[int, int]):
    """Year -> the ordinal of its 1 January."""

    def __missing__(self, year: int) -> int:
        self[year] = dt.date(year, 1, 1).toordinal()
        return self[year]


_JAN1 = _FirstDays()


#: how many measured spans a calendar keeps (two per case) before it starts afresh
_MAX_SPANS = 200_000


class CalendarError(ValueError):
    """A business-hours setting that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class Calendar:
    """Working days and hours in one time zone, minus holidays."""

    tz: ZoneInfo
    workdays: frozenset[int]  # 0 = Monday
    start: dt.time
    end: dt.time
    holiday_dates: t.Callable[[dt.date], bool] = field(default=lambda day: False)
    # Caches, filled as days and years are asked about (the same answer whoever fills them).
    _years: dict[int, list[float]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _windows: dict[dt.date, tuple[dt.datetime, dt.datetime]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    #: spans already measured: a case's clock stops never move, and the dashboard and the
    #: responsiveness page measure the same cases on every view
    _spans: dict[tuple[dt.datetime, dt.datetime], float] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise CalendarError("working hours: the day must end after it starts")
        if not self.workdays:
            raise CalendarError("working days: at least one day is needed")

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() in self.workdays and not self.holiday_dates(day)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """The day's working window in UTC (whether or not the day is a working day)."""
        window = self._windows.get(day)
        if window is None:
            start = dt.datetime.combine(day, self.start, self.tz).astimezone(dt.UTC)
            end = dt.datetime.combine(day, self.end, self.tz).astimezone(dt.UTC)
            window = self._windows[day] = (start, end)
        return window

    def add(self, moment: dt.datetime, hours: float) -> dt.datetime:
        """The moment ``hours`` working hours after ``moment`` (in UTC).

        Starting outside working time counts from the next working window's start, so a
        complaint on Friday evening with an 8-hour target is due Monday at 17:00.
        """
        _aware(moment)
        if hours < 0:
            raise ValueError("hours must not be negative")
        remaining = dt.timedelta(hours=hours)
        day = moment.astimezone(self.tz).date()
        for _ in range(_MAX_DAYS):
            if self.is_working_day(day):
                start, end = self.window(day)
                start = max(start, moment)
                if start < end:
                    if remaining <= end - start:
                        return (start + remaining).astimezone(dt.UTC)
                    remaining -= end - start
            day += dt.timedelta(days=1)
        raise CalendarError("no working time found within ten years")

    def between(self, a: dt.datetime, b: dt.datetime) -> float:
        """Working hours from ``a`` to ``b``; 0 when ``b`` is not after ``a``.

        Each moment is turned into working seconds since the start of its (local) year from
        a per-year table of running totals, so a year-long span costs what an hour does;
        reports measure tens of thousands of cases at once.
        """
        known = self._spans.get((a, b))
        if known is not None:
            return known
        _aware(a)
        _aware(b)
        if b <= a:
            return 0.0
        if len(self._spans) >= _MAX_SPANS:
            self._spans.clear()
        hours = self._spans[(a, b)] = self._between(a, b)
        return hours

    def _between(self, a: dt.datetime, b: dt.datetime) -> float:
        year_a, seconds_a = self._position(a)
        year_b, seconds_b = self._position(b)
        seconds = seconds_b - seconds_a
        for year in range(year_a, year_b):
            seconds += self._running_totals(year)[-1]
        return max(seconds, 0.0) / 3600

    def _position(self, moment: dt.datetime) -> tuple[int, float]:
        """(local year, working seconds from that year's start to ``moment``)."""
        day = moment.astimezone(self.tz).date()
        before = self._running_totals(day.year)[day.toordinal() - _JAN1[day.year]]
        if not self.is_working_day(day):
            return day.year, before
        start, end = self.window(day)
        inside = (min(max(moment, start), end) - start).total_seconds()
        return day.year, before + inside

    def _running_totals(self, year: int) -> list[float]:
        """Working seconds from 1 January of ``year`` to the start of each day, and to the
        end of the year (last item); worked out once per year and kept."""
        totals = self._years.get(year)
        if totals is None:
            totals, day = [0.0], dt.date(year, 1, 1)
            while day.year == year:
                seconds = 0.0
                if self.is_working_day(day):
                    start, end = self.window(day)
                    seconds = (end - start).total_seconds()
                totals.append(totals[-1] + seconds)
                day += dt.timedelta(days=1)
            self._years[year] = totals
        return totals


def _aware(moment: dt.datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("naive datetime; use an aware datetime")


def parse_workdays(value: str | t.Iterable[str | int]) -> frozenset[int]:
    """``"mon-fri"``, ``"sun-thu"``, ``"mon,tue"`` or a list of names or numbers (0 = Monday)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    days: set[int] = set()
    for item in items:
        # Monday is 0 and Sunday 6, as datetime.weekday() counts.
        if isinstance(item, int) and not isinstance(item, bool) and item in range(7):
            days.add(item)
            continue
        text = str(item).strip().lower()
        first, _, last = text.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise CalendarError(
                f"working days: {item!r} is not a day; use names like mon-fri or mon,wed,fri"
            )
        lo, hi = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        days.update(d % 7 for d in range(lo, hi + 1 if hi >= lo else hi + 8))  # sun-thu wraps
    if not days:
        raise CalendarError("working days: at least one day is needed")
    return frozenset(days)


def parse_hours(value: str) -> tuple[dt.time, dt.time]:
    """``"08:00-17:00"`` into its two times."""
    match = _HOURS.match(str(value))
    if not match:
        raise CalendarError(f"working hours: {value!r} is not like 08:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = dt.time(h1, m1), dt.time(h2, m2) if (h2, m2) != (24, 0) else dt.time.max
    except ValueError:
        raise CalendarError(f"working hours: {value!r} is not a time of day") from None
    if not start < end:
        raise CalendarError(f"working hours: {value!r} must end after it starts")
    return start, end


def parse_zone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise CalendarError(
            f"time zone: {value!r} is not a known IANA zone like Europe/Copenhagen"
        ) from None


def holiday_checker(
    country: str | None, categories: t.Iterable[str] = ("public",), extra: t.Iterable[str] = ()
) -> t.Callable[[dt.date], bool]:
    """A ``date -> bool`` for a country's holidays plus extra days.

    ``extra`` holds ``"MM-DD"`` (every year, e.g. ``"12-24"``) or ``"YYYY-MM-DD"`` (once).
    """
    yearly: set[tuple[int, int]] = set()
    once: set[dt.date] = set()
    for item in extra:
        text = str(item).strip()
        match = _MONTH_DAY.match(text)
        try:
            if match:
                month, day = int(match.group(1)), int(match.group(2))
                dt.date(2024, month, day)  # a leap year, so 02-29 is allowed
                yearly.add((month, day))
            else:
                once.add(dt.date.fromisoformat(text))
        except ValueError:
            raise CalendarError(
                f"extra holidays: {item!r} is not MM-DD (every year) or YYYY-MM-DD (once)"
            ) from None
    official: t.Callable[[dt.date], bool] = lambda day: False  # noqa: E731
    if country:
        import holidays

        try:
            table = holidays.country_holidays(str(country), categories=tuple(categories))
        except NotImplementedError:
            raise CalendarError(
                f"holidays: {country!r} is not a country code the holidays package knows"
            ) from None
        except (ValueError, KeyError) as exc:
            raise CalendarError(f"holidays: categories {list(categories)!r}: {exc}") from None
        # The table fills in a year the first time it is asked about one; the lock keeps
        # two threads from filling the same year at once.
        lock = threading.Lock()

        @functools.lru_cache(maxsize=8192)
        def official(day: dt.date) -> bool:
            with lock:
                return day in table

    def is_holiday(day: dt.date) -> bool:
        return day in once or (day.month, day.day) in yearly or official(day)

    return is_holiday


def calendar_from_settings(
    *,
    timezone: str,
    workdays: str | t.Iterable[str | int],
    hours: str,
    country: str | None,
    categories: t.Iterable[str] = ("public",),
    extra: t.Iterable[str] = (),
) -> Calendar:
    """Build a calendar from the ``SLA_*`` settings; raises :class:`CalendarError`."""
    start, end = parse_hours(hours)
    return Calendar(
        tz=parse_zone(timezone),
        workdays=parse_workdays(workdays),
        start=start,
        end=end,
        holiday_dates=holiday_checker(country, categories, extra),
    )
