"""Scheduling rules: which events trigger a survey, and who may be asked when.

Plain functions over plain values (no Flask, no database), so the rules read and test as
tables. :func:`plan` applies them to one new event; ``invitations.record_event`` gathers
the history it needs from the database and stores what it decides.

The rules, in the order they are checked:

1. an event older than its survey could still be answered (``stale_event``);
2. a contact who is erased, unsubscribed or bounced is never asked;
3. a contact is asked at most once within ``contact_days`` (``throttled_contact``);
4. a B2B account is asked through at most ``account_contacts`` different contacts within
   any ``account_days`` window (``throttled_account``).

A "touch" is a survey a contact got or is due to get: an invitation that is scheduled,
being sent or sent, or a response imported from another tool. Skipped and failed
invitations reached nobody, so they are not touches.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass, field

#: What can happen to a customer that may trigger a survey (a survey's ``[schedule]`` names them).
EVENT_KINDS = ("sale", "delivery", "support_ticket_closed", "renewal")

SKIP_REASONS = {
    "stale_event": "event too old to survey",
    "erased": "contact erased",
    "unsubscribed": "contact unsubscribed",
    "bounced": "contact's email bounced",
    "throttled_contact": "contact surveyed recently",
    "throttled_account": "account surveyed through other contacts recently",
    "expired": "expired before it could be sent",
}

_DURATION = re.compile(r"(\d{1,4})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> dt.timedelta:
    """``"2d"``, ``"36h"``, ``"90m"`` as a timedelta; ValueError says what is accepted."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration like '2d', '36h' or '90m'")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass(frozen=True)
class Limits:
    """The throttling settings (from config; see ``config.SETTINGS``)."""

    contact_days: int = 30
    account_days: int = 7
    account_contacts: int = 2
    invitation_days: int = 30

    @property
    def horizon(self) -> dt.timedelta:
        """How far from a due time a touch can still matter to a rule."""
        return dt.timedelta(days=max(self.contact_days, self.account_days))


@dataclass(frozen=True)
class Schedule:
    """A survey's ``[schedule]`` table: the event kinds that trigger it, each with a delay."""

    triggers: t.Mapping[str, dt.timedelta] = field(default_factory=dict)
    #: when to remind an unanswered invitation; None means the configured default, and
    #: a zero delay means never
    reminder_after: dt.timedelta | None = None


@dataclass(frozen=True)
class Touch:
    contact_id: int
    at: dt.datetime


@dataclass(frozen=True)
class Decision:
    """What to do for one survey an event triggered."""

    survey: str
    due_at: dt.datetime
    expires_at: dt.datetime
    skip_reason: str | None = None

    @property
    def status(self) -> str:
        return "skipped" if self.skip_reason else "scheduled"


def skip_reason(
    *,
    contact_id: int,
    segment: str,
    unreachable: str | None,
    due_at: dt.datetime,
    touches: t.Iterable[Touch],
    limits: Limits,
) -> str | None:
    """Why a survey due at ``due_at`` may not go to this contact, or None when it may."""
    if unreachable:
        return unreachable
    touches = list(touches)
    contact_window = dt.timedelta(days=limits.contact_days)
    if any(x.contact_id == contact_id and abs(x.at - due_at) < contact_window for x in touches):
        return "throttled_contact"
    if segment == "b2b" and _too_many_contacts(contact_id, due_at, touches, limits):
        return "throttled_account"
    return None


def _too_many_contacts(
    contact_id: int, due_at: dt.datetime, touches: list[Touch], limits: Limits
) -> bool:
    """Would any ``account_days`` window holding ``due_at`` reach more than the allowed
    number of different contacts?

    Every window holding ``due_at`` reaches no more contacts than the window that starts at
    its own earliest touch, so only windows starting at a touch (or at ``due_at``) are
    checked.
    """
    window = dt.timedelta(days=limits.account_days)
    near = [x for x in touches if abs(x.at - due_at) < window] + [Touch(contact_id, due_at)]
    for start in {x.at for x in near if x.at <= due_at}:
        contacts = {x.contact_id for x in near if start <= x.at < start + window}
        if len(contacts) > limits.account_contacts:
            return True
    return False


def plan(
    *,
    kind: str,
    occurred_at: dt.datetime,
    contact_id: int,
    segment: str,
    unreachable: str | None,
    touches: t.Iterable[Touch],
    schedules: t.Mapping[str, Schedule],
    limits: Limits,
    now: dt.datetime,
) -> list[Decision]:
    """One decision per survey that an event of ``kind`` triggers, in survey order.

    A survey is due its delay after the event, or now when that moment has passed; it is
    stale when a link made at that moment would already have expired. Each survey planned
    counts as a touch for the next, so one event never surveys a contact twice.
    """
    touches = list(touches)
    lifetime = dt.timedelta(days=limits.invitation_days)
    decisions = []
    for survey, schedule in schedules.items():
        delay = schedule.triggers.get(kind)
        if delay is None:
            continue
        wanted = occurred_at + delay
        due_at = max(wanted, now)
        if wanted + lifetime <= now:
            reason: str | None = "stale_event"
        else:
            reason = skip_reason(
                contact_id=contact_id,
                segment=segment,
                unreachable=unreachable,
                due_at=due_at,
                touches=touches,
                limits=limits,
            )
        decisions.append(Decision(survey, due_at, due_at + lifetime, reason))
        if reason is None:
            touches.append(Touch(contact_id, due_at))
    return decisions


def reminder_due(
    sent_at: dt.datetime, expires_at: dt.datetime, after: dt.timedelta
) -> dt.datetime | None:
    """When to remind an invitation sent at ``sent_at``; None when never (off, or too late
    to be of use before the link expires)."""
    if after <= dt.timedelta(0):
        return None
    due = sent_at + after
    return due if due < expires_at else None
