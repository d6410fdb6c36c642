"""Invitations and their links.

A link token is ``HMAC(secret, nonce)`` for a random 256-bit nonce stored with the
invitation; the database keeps the nonce and ``sha256(token)`` but never the token, so a
copy of the database opens no survey. The server can rebuild a token from its secret,
which is what lets the dispatcher email a link long after the invitation was made.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from .db import db
from .models import LANGUAGES, SEGMENTS, Account, Contact, Event, Invitation, utcnow

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
    invitation = db.session.scalar(
        sa.select(Invitation).where(Invitation.token_hash == hash_token(token))
    )
    if invitation is None or not invitation.is_open(now):
        return None
    return invitation


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


def validate(invitee: Invitee) -> Invitee:
    """Normalise and check an invitee; raise :class:`InviteError` naming the bad field."""
    from email_validator import EmailNotValidError, validate_email

    try:
        email = validate_email(invitee.email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InviteError(f"email: {exc}") from None
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
    """Create or update the account and contact an invitee describes."""
    invitee = validate(invitee)
    account = db.session.scalar(sa.select(Account).where(Account.name == invitee.account))
    if account is None:
        account = Account(name=invitee.account, segment=invitee.segment)
        db.session.add(account)
    account.segment = invitee.segment
    if invitee.annual_value is not None:
        account.annual_value = invitee.annual_value
    if invitee.account_ref is not None:
        account.external_ref = invitee.account_ref
    contact = db.session.scalar(sa.select(Contact).where(Contact.email == invitee.email))
    if contact is None:
        contact = Contact(email=invitee.email, account=account)
        db.session.add(contact)
    contact.account = account
    contact.name = invitee.name
    contact.language = invitee.language
    return contact


def create_invitation(
    contact: Contact,
    survey: str,
    *,
    due_at: dt.datetime | None = None,
    event: Event | None = None,
) -> Invitation:
    """Schedule one survey for one contact; it expires ``INVITATION_DAYS`` after it is due."""
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
        expires_at=due_at + dt.timedelta(days=current_app.config["INVITATION_DAYS"]),
    )
    invitation.token_hash = hash_token(token_for(invitation))
    db.session.add(invitation)
    return invitation
