"""Invitations and their links.

A link token is ``HMAC(secret, nonce)`` for a random 256-bit nonce stored with the
invitation; the database keeps the nonce and ``sha256(token)`` but never the token, so a
copy of the database opens no survey. The server can rebuild a token from its secret,
which is what lets the dispatcher email a link long after the invitation was made.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import typing as t
from dataclasses import dataclass
from decimal import Decimal

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import contains_eager

from . import scheduling
from .db import db
from .models import LANGUAGES, SEGMENTS, Account, Contact, Event, Invitation, Response, utcnow

if t.TYPE_CHECKING:
    from flask import Flask

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


class InviteError(ValueError):
    """Input that cannot become an invitation; the message says which field and why."""


def _token_key() -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"loyalty survey link", hashlib.sha256).digest()


def token_for(invitation: Invitation) -> str:
    digest = hmac.new(_token_key(), invitation.token_nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_open(token: str, now: dt.datetime | None = None) -> Invitation | None:
    """The invitation a link token opens, or None when unknown, malformed or expired."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    invitation = db.session.scalar(_open_query(), {"token_hash": hash_token(token)})
    if invitation is None or not invitation.is_open(now):
        return None
    return invitation


@functools.cache
def _open_query() -> sa.Select[tuple[Invitation]]:
    """Everything the survey's submit reads, in one round trip: the invitation with its
    contact, account and response (whose answers load when an update needs them).

    Built once, since building the loader options cost more than running the query, and
    with plain joins (``contains_eager``), which load faster than ``joinedload``'s aliases.
    """
    return (
        sa.select(Invitation)
        .join(Invitation.contact)
        .join(Contact.account)
        .outerjoin(Invitation.response)
        .where(Invitation.token_hash == sa.bindparam("token_hash"))
        .options(
            contains_eager(Invitation.contact).contains_eager(Contact.account),
            contains_eager(Invitation.response),
        )
    )


def survey_url(invitation: Invitation, **params: int) -> str:
    """The public link, always from ``BASE_URL`` (never the request's Host header)."""
    query = "&".join(f"{k}={v}" for k, v in params.items())
    base = f"{current_app.config['BASE_URL']}/s/{token_for(invitation)}"
    return f"{base}?{query}" if query else base


def _unsubscribe_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="unsubscribe")


def unsubscribe_url(contact: Contact) -> str:
    """A link that stays valid after the survey expires: unsubscribing must always work."""
    token = _unsubscribe_signer().dumps(contact.id)
    return f"{current_app.config['BASE_URL']}/u/{token}"


def contact_for_unsubscribe(token: str) -> Contact | None:
    try:
        contact_id = _unsubscribe_signer().loads(token)
    except BadSignature:
        return None
    return db.session.get(Contact, contact_id) if isinstance(contact_id, int) else None


@dataclass(frozen=True)
class Invitee:
    """Who to ask, as given by the CLI, the API or an import."""

    email: str
    name: str
    account: str
    segment: str
    language: str
    annual_value: Decimal | None = None
    account_ref: str | None = None


def normalise_email(address: str) -> str:
    """The address as contacts are stored and looked up: checked, and in lower case.

    Mail systems deliver ``Mette@`` and ``mette@`` to one mailbox, so the throttle, the
    unsubscribe and the bounce records must see one contact, not two.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InviteError(f"email: {exc}") from None


def validate(invitee: Invitee) -> Invitee:
    """Normalise and check an invitee; raise :class:`InviteError` naming the bad field."""
    email = normalise_email(invitee.email)
    for field in ("name", "account"):
        value = getattr(invitee, field)
        if not value or not value.strip():
            raise InviteError(f"{field}: must not be empty")
        if any(ord(c) < 32 or c == "\x7f" for c in value):
            raise InviteError(f"{field}: must not contain line breaks or control characters")
        if len(value) > 200:
            raise InviteError(f"{field}: at most 200 characters")
    if invitee.segment not in SEGMENTS:
        raise InviteError(f"segment: must be one of {', '.join(SEGMENTS)}")
    if invitee.language not in LANGUAGES:
        raise InviteError(f"language: must be one of {', '.join(LANGUAGES)}")
    return Invitee(
        email=email,
        name=invitee.name.strip(),
        account=invitee.account.strip(),
        segment=invitee.segment,
        language=invitee.language,
        annual_value=invitee.annual_value,
        account_ref=invitee.account_ref,
    )


def upsert_contact(invitee: Invitee) -> Contact:
    """Create or update the account and contact an invitee describes.

    The account is found by its external reference when one is given, else by name; an
    erased contact keeps its erasure (nothing personal is written back).
    """
    return _upsert(invitee)[1]


def _upsert(invitee: Invitee) -> tuple[Account, Contact]:
    invitee = validate(invitee)
    account = upsert_account(
        name=invitee.account,
        segment=invitee.segment,
        external_ref=invitee.account_ref,
        annual_value=invitee.annual_value,
    )
    contact = db.session.scalar(sa.select(Contact).where(Contact.email == invitee.email))
    if contact is None:
        contact = Contact(email=invitee.email, account=account)
        db.session.add(contact)
    elif contact.erased_at is not None:
        return account, contact
    contact.account = account
    contact.name = invitee.name
    contact.language = invitee.language
    return account, contact


def upsert_account(
    *, name: str, segment: str, external_ref: str | None, annual_value: Decimal | None
) -> Account:
    """Find an account by external reference (else by name) and update it, or create it."""

    account = None
    if external_ref is not None:
        account = db.session.scalar(sa.select(Account).where(Account.external_ref == external_ref))
    if account is None or account.name != name:
        by_name = db.session.scalar(sa.select(Account).where(Account.name == name))
        if account is None and by_name is not None and external_ref is None:
            account = by_name
        elif account is None and by_name is not None and by_name.external_ref is None:
            account = by_name  # known by name until now; from here on also by its reference
        elif by_name is not None and by_name is not account:
            raise InviteError(
                f"account: {name!r} is the name of another account"
                + (f" (external ref {by_name.external_ref!r})" if by_name.external_ref else "")
            )
    if account is None:
        account = Account(name=name, segment=segment, external_ref=external_ref)
        db.session.add(account)
    account.name = name
    account.segment = segment
    if external_ref is not None:
        account.external_ref = external_ref
    if annual_value is not None:
        account.annual_value = annual_value
    return account


def create_invitation(
    contact: Contact,
    survey: str,
    *,
    due_at: dt.datetime | None = None,
    event: Event | None = None,
    expires_at: dt.datetime | None = None,
    skip_reason: str | None = None,
) -> Invitation:
    """Schedule one survey for one contact; it expires ``INVITATION_DAYS`` after it is due.

    With a ``skip_reason`` the invitation is stored as skipped, so staff see why nobody
    was asked.
    """
    surveys = current_app.extensions["loyalty.surveys"]
    if survey not in surveys:
        raise InviteError(f"survey: unknown survey {survey!r}; known: {', '.join(surveys)}")
    due_at = due_at or utcnow()
    nonce = secrets.token_urlsafe(32)
    invitation = Invitation(
        contact=contact,
        event=event,
        survey=survey,
        token_nonce=nonce,
        token_hash="",
        due_at=due_at,
        expires_at=expires_at or due_at + dt.timedelta(days=current_app.config["INVITATION_DAYS"]),
        status="skipped" if skip_reason else "scheduled",
        skip_reason=skip_reason,
    )
    invitation.token_hash = hash_token(token_for(invitation))
    db.session.add(invitation)
    return invitation


# --- events ----------------------------------------------------------------------------


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


def limits() -> scheduling.Limits:
    config = current_app.config
    return scheduling.Limits(
        contact_days=int(config["CONTACT_THROTTLE_DAYS"]),
        account_days=int(config["ACCOUNT_THROTTLE_DAYS"]),
        account_contacts=int(config["ACCOUNT_THROTTLE_CONTACTS"]),
        invitation_days=int(config["INVITATION_DAYS"]),
    )


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
    account, contact = _upsert(data.invitee)
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
        db.session.execute(sa.select(Account.id).where(Account.id == account.id).with_for_update())
    return Recorded(event, schedule_event(event, now=now, fresh=fresh), created=True)


def invitations_of(event: Event) -> list[Invitation]:
    return list(
        db.session.scalars(
            sa.select(Invitation).where(Invitation.event_id == event.id).order_by(Invitation.id)
        )
    )


def schedule_event(event: Event, *, now: dt.datetime, fresh: bool = False) -> list[Invitation]:
    """Apply the scheduling rules to a new event; every triggered survey becomes an
    invitation, scheduled or skipped with its reason."""
    surveys = current_app.extensions["loyalty.surveys"]
    schedules = {
        survey.id: survey.schedule
        for survey in surveys.values()
        if survey.schedule and event.kind in survey.schedule.triggers
    }
    if not schedules:
        return []
    contact, rules = event.contact, limits()
    delays = [s.triggers[event.kind] for s in schedules.values()]
    earliest = max(event.occurred_at + min(delays), now) - rules.horizon
    latest = max(event.occurred_at + max(delays), now) + rules.horizon
    decisions = scheduling.plan(
        kind=event.kind,
        occurred_at=event.occurred_at,
        contact_id=contact.id,
        segment=contact.account.segment,
        unreachable=contact.unreachable_reason,
        touches=[] if fresh else touches(contact, earliest, latest),
        schedules=schedules,
        limits=rules,
        now=now,
    )
    return [
        create_invitation(
            contact,
            d.survey,
            due_at=d.due_at,
            expires_at=d.expires_at,
            event=event,
            skip_reason=d.skip_reason,
        )
        for d in decisions
    ]


def touches(contact: Contact, start: dt.datetime, end: dt.datetime) -> list[scheduling.Touch]:
    """Surveys this contact or others of its account got or will get between two times:
    invitations not skipped or failed, and responses imported from another tool."""
    mine = sa.or_(Contact.account_id == contact.account_id, Contact.id == contact.id)
    when = sa.func.coalesce(Invitation.sent_at, Invitation.due_at)
    invited = (
        sa.select(Invitation.contact_id, when.label("at"))
        .join(Contact, Contact.id == Invitation.contact_id)
        .where(
            mine,
            Invitation.status.in_(("scheduled", "sending", "sent")),
            when >= start,
            when <= end,
        )
    )
    imported = (
        sa.select(Response.contact_id, Response.submitted_at.label("at"))
        .join(Contact, Contact.id == Response.contact_id)
        .where(
            mine,
            Response.source == "import",
            Response.submitted_at >= start,
            Response.submitted_at <= end,
        )
    )
    rows = db.session.execute(sa.union_all(invited, imported))
    return [scheduling.Touch(contact_id, at) for contact_id, at in rows]


def mark_bounced(email: str, *, at: dt.datetime | None = None) -> Contact | None:
    """Record that mail to ``email`` bounces; the earliest bounce is kept. None when no
    contact has this address."""
    contact = db.session.scalar(sa.select(Contact).where(Contact.email == normalise_email(email)))
    if contact is not None and contact.bounced_at is None:
        contact.bounced_at = at or utcnow()
    return contact


contact_cli = AppGroup("contact", help="Contacts: record bounces.")


@contact_cli.command("bounce")
@click.argument("email")
def contact_bounce(email: str) -> None:
    """Record that mail to EMAIL bounces: no survey goes to it again."""
    try:
        contact = mark_bounced(email)
    except InviteError as exc:
        raise click.UsageError(str(exc)) from None
    if contact is None:
        raise click.UsageError(f"email: no contact has the address {email!r}")
    db.session.commit()
    click.echo(f"{contact.email} bounces since {contact.bounced_at:%Y-%m-%d %H:%M} UTC")


def init_app(app: Flask) -> None:
    app.cli.add_command(contact_cli)
