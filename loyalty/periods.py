"""Periods of whole days, written once: the query string, the checks, the time zone, the bounds.

Every page with a period (``/funnel``, ``/responsiveness``, the dashboard to come) and every
command with ``--from``/``--to`` reads it here, so they agree on the parameter names
(``from`` and ``to``, both days included), on what a bad date says, and on where a day
begins: at local midnight in the company's zone, never in UTC. Pure: no Flask.
"""

from __future__ import annotations

import datetime as dt
import typing as t

#: The years a period may touch; outside them a date is a typo (and some are not storable).
FIRST_YEAR, LAST_YEAR = 2000, 2999
#: The longest period asked for, in days (ten years).
MAX_DAYS = 3660
#: Older links used these names for ``from`` and ``to``; they keep working.
_ALIASES = {"from": "start", "to": "end"}


class PeriodError(ValueError):
    """A period that cannot be read; the message says how to write it."""


class Period(t.NamedTuple):
    """The first and the last day of a period, both included."""

    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
        """Local midnight of the first day to local midnight after the last, in UTC."""
        return midnight(self.first, tz), midnight(self.last + dt.timedelta(days=1), tz)

    def args(self) -> dict[str, str]:
        """The period as query arguments, for links that keep it."""
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


def midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The moment ``day`` begins in ``tz``, in UTC."""
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


def today(tz: dt.tzinfo, now: dt.datetime | None = None) -> dt.date:
    """Today's date in ``tz``."""
    return (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()


def parse(args: t.Mapping[str, str | None], *, today: dt.date, default_days: int) -> Period:
    """The period ``from``..``to`` asks for; by default the ``default_days`` up to ``today``.

    A missing ``to`` is today; a missing ``from`` is ``default_days`` before ``to``, counting
    both ends, but never before the first year a period may touch. Raises
    :class:`PeriodError` with a message for the person who typed it.
    """
    first_text, last_text = (_value(args, name) for name in ("from", "to"))
    try:
        last = dt.date.fromisoformat(last_text) if last_text else today
        if first_text:
            first = dt.date.fromisoformat(first_text)
        else:
            first = max(dt.date(FIRST_YEAR, 1, 1), last - dt.timedelta(days=default_days - 1))
    except ValueError:
        raise PeriodError("Write dates as YYYY-MM-DD, like 2026-03-31.") from None
    except OverflowError:  # a default first day before year 1: the last day is a typo too
        first = dt.date.min
    if not all(FIRST_YEAR <= day.year <= LAST_YEAR for day in (first, last)):
        raise PeriodError(f"Dates are between the years {FIRST_YEAR} and {LAST_YEAR}.")
    if first > last:
        raise PeriodError(
            "The period must start before it ends: the first day must not be after the last day."
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError("The period can be at most ten years long.")
    return Period(first, last)


def _value(args: t.Mapping[str, str | None], name: str) -> str | None:
    value = args.get(name) or args.get(_ALIASES[name])
    return value.strip() if isinstance(value, str) and value.strip() else None


# --- grains: the buckets a trend is drawn in ----------------------------------------------------

#: The grains a trend may be read in, by name.
GRAINS = ("week", "month", "quarter")


def bucket_start(day: dt.date, grain: str) -> dt.date:
    """The first day of the bucket ``day`` falls in: the Monday of its ISO week, the first
    of its month, or the first of its quarter."""
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    raise PeriodError(f"grain: must be one of {', '.join(GRAINS)}")


def next_bucket(start: dt.date, grain: str) -> dt.date:
    """The first day of the bucket after the one beginning on ``start``."""
    if grain == "week":
        return start + dt.timedelta(days=7)
    months = 1 if grain == "month" else 3
    year, month = divmod(start.month - 1 + months, 12)
    return dt.date(start.year + year, month + 1, 1)


def buckets(period: Period, grain: str) -> list[dt.date]:
    """The first days of the buckets that touch ``period``, in order (the first and the last
    bucket may reach beyond it; what counts is cut at the period's ends)."""
    first = bucket_start(period.first, grain)
    found = []
    while first <= period.last:
        found.append(first)
        first = next_bucket(first, grain)
    return found


def bucket_name(start: dt.date, grain: str) -> str:
    """How a bucket is named in tables, CSV and the API: 2026-W05, 2026-02, 2026-Q1."""
    if grain == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grain == "month":
        return f"{start.year}-{start.month:02d}"
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def parse_grain(value: str | None, default: str = "month") -> str:
    """A grain from a query string or option; :class:`PeriodError` names the choices."""
    grain = (value or default).strip().lower()
    if grain not in GRAINS:
        raise PeriodError(f"grain: must be one of {', '.join(GRAINS)}")
    return grain


# --- Times as people and files read them -------------------------------------------------
#: The one rule: pages and emails show a moment in the company's zone with the zone named
#: ("2026-11-20 16:00 CET"); CSV files write ISO 8601 with the offset and whole seconds.


def local_text(moment: dt.datetime, tz: dt.tzinfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``moment`` in ``tz`` as ``fmt``; with the zone's abbreviation after it when ``fmt``
    shows a time of day, so no time is ever read in the wrong zone."""
    local = moment.astimezone(tz)
    text = local.strftime(fmt)
    if ("%H" in fmt or "%I" in fmt) and "%Z" not in fmt:
        text += f" {local.strftime('%Z')}"
    return text


def csv_time(moment: dt.datetime | None) -> str:
    """ISO 8601 with the offset and whole seconds, as every CSV of ours writes times."""
    return "" if moment is None else moment.replace(microsecond=0).isoformat()
