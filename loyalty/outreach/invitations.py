"""Invitations and their links, and the surveys an event schedules.

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

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import contains_eager

from .. import specs
from ..accounts.services import InviteError
from ..db import db
from ..models import Contact, Event, Invitation, Response, utcnow
from . import scheduling

if t.TYPE_CHECKING:
    pass

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def _token_key() -> bytes:
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"loyalty survey link", hashlib.sha256).digest()


def token_for(invitation: Invitation) -> str:
    digest = hmac.new(_token_key(), invitation.token_nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def find_open(token: str, now: dt.datetime | None = None) -> Invitation | None:
    """The invitation a link token opens, or None when unknown, malformed or expired, or
    when its contact unsubscribed or was erased (their link is then like any unknown one)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    invitation = db.session.scalar(_open_query(), {"token_hash": hash_token(token)})
    if invitation is None or not invitation.is_open(now):
        return None
    if invitation.contact.unsubscribed_at is not None or invitation.contact.erased_at is not None:
        return None
    return invitation


@functools.cache
def _open_query() -> sa.Select[Invitation]:
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
    surveys = specs.surveys(current_app)
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


def limits() -> scheduling.Limits:
    config = current_app.config
    return scheduling.Limits(
        contact_days=int(config["CONTACT_THROTTLE_DAYS"]),
        account_days=int(config["ACCOUNT_THROTTLE_DAYS"]),
        account_contacts=int(config["ACCOUNT_THROTTLE_CONTACTS"]),
        invitation_days=int(config["INVITATION_DAYS"]),
    )


def schedule_event(event: Event, *, now: dt.datetime, fresh: bool = False) -> list[Invitation]:
    """Apply the scheduling rules to a new event; every triggered survey becomes an
    invitation, scheduled or skipped with its reason."""
    surveys = specs.surveys(current_app)
    schedules = {
        survey.id: survey.schedule
        for survey in surveys.values()
        if survey.schedule and event.kind in survey.schedule.triggers
    }
    if not schedules:
        return []
    contact, rules = event.contact, limits()
    if contact is None:  # record_event always gives one; without a contact nobody is asked
        return []
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
