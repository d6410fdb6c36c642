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
