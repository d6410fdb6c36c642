"""Events in: what happened to a customer (a sale, a delivery), told by the API or an import.

Both entry points go through :func:`event_from_json` (the API's schema, so a CSV row is
checked exactly like a posted event) and :func:`record_event`, which stores the event once
per external id, updates its account and contact, and schedules the surveys it triggers.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from .. import checks
from ..accounts.services import Invitee, InviteError, upsert_invitee
from ..api.openapi import Invalid, check, parse_datetime
from ..db import db
from ..models import Account, Event, Invitation, utcnow
from .invitations import schedule_event


@dataclass(frozen=True)
class EventIn:
    """An event as the API or an import gives it, already checked against the schema."""

    external_id: str
    kind: str
    occurred_at: dt.datetime
    invitee: Invitee
    amount: Decimal | None = None
    product: str | None = None


@dataclass
class Recorded:
    event: Event
    invitations: list[Invitation]
    #: False when an event with this external id was there already
    created: bool


def record_event(data: EventIn, *, now: dt.datetime | None = None) -> Recorded:
    """Store an event once per external id and schedule (or skip) the surveys it triggers.

    The caller commits. When two identical events race, one of the commits fails on the
    unique external id; roll back and call again to get the stored one.
    """
    existing = db.session.scalar(sa.select(Event).where(Event.external_id == data.external_id))
    if existing is not None:
        return Recorded(existing, invitations_of(existing), created=False)
    now = now or utcnow()
    if data.occurred_at > now + dt.timedelta(days=1):
        raise InviteError("occurred_at: must not be in the future")
    account, contact = upsert_invitee(data.invitee)
    event = Event(
        external_id=data.external_id,
        kind=data.kind,
        account=account,
        contact=contact,
        occurred_at=data.occurred_at,
        amount=data.amount,
        product=data.product,
    )
    db.session.add(event)
    # A new contact of a new account has no history for the rules to count.
    fresh = contact in db.session.new and account in db.session.new
    # Writing first takes SQLite's write lock, and on PostgreSQL the account row is locked:
    # either way two events for one account are scheduled one after the other, so both
    # see each other's invitations when the throttling rules count.
    db.session.flush()
    if db.engine.dialect.name == "postgresql":
        # NO KEY: the account's customers' answers (foreign keys: FOR KEY SHARE) need not wait.
        db.session.execute(
            sa.select(Account.id).where(Account.id == account.id).with_for_update(key_share=True)
        )
    return Recorded(event, schedule_event(event, now=now, fresh=fresh), created=True)


def invitations_of(event: Event) -> list[Invitation]:
    return list(
        db.session.scalars(
            sa.select(Invitation).where(Invitation.event_id == event.id).order_by(Invitation.id)
        )
    )


#: where an :class:`InviteError`'s field is found in an event's JSON
EVENT_FIELDS = {
    "email": "contact.email",
    "name": "contact.name",
    "language": "contact.language",
    "account": "account.name",
    "segment": "account.segment",
}


def event_from_json(data: t.Any) -> EventIn:
    """A checked event; raises :class:`Invalid` naming the first field at fault."""
    check("Event", data)
    account, contact = data["account"], data["contact"]
    return EventIn(
        external_id=data["external_id"],
        kind=data["kind"],
        occurred_at=parse_datetime(data["occurred_at"]),
        invitee=Invitee(
            email=contact["email"],
            name=contact["name"],
            account=account["name"],
            segment=account["segment"],
            language=contact["language"],
            annual_value=checks.money(account.get("annual_value")),
            account_ref=account["external_ref"],
        ),
        amount=checks.money(data.get("amount")),
        product=data.get("product"),
    )


def invite_error(exc: InviteError, fields: t.Mapping[str, str]) -> Invalid:
    """An :class:`InviteError` as a request error, its field named as the request names it."""
    field, _, message = str(exc).partition(": ")
    return Invalid(fields.get(field, field), message)
