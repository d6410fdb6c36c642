"""Accounts and contacts: the one place that finds, creates and updates them.

The CLI, the events API, every CSV import and the demo go through these functions, so an
account is matched the same way everywhere (by its external reference, else by its name), a
contact is found by one normalised e-mail address, and an erased contact is never written
back. Callers commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import typing as t
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from ..checks import CheckError, one_line
from ..db import db
from ..models import LANGUAGES, SEGMENTS, Account, Contact, Event, Response, User, utcnow
from ..signals import account_changed


class InviteError(ValueError):
    """Input that cannot become an account, a contact or an invitation.

    The message is ``"field: reason"``, so each entry point can name the field its own way
    (a JSON path for the API, a column for an import, an option for the CLI).
    """


class AccountConflict(InviteError):
    """The input is well formed but clashes with what is stored: an account's name belongs
    to another account. The API answers 409, not 422: the same request can be right later."""


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
    """The address as people (contacts and staff) are stored and looked up: checked, in
    lower case.

    Mail systems deliver ``Mette@`` and ``mette@`` to one mailbox, so the throttle, the
    unsubscribe and the bounce records must see one contact, not two; and a staff member
    signs in whatever the case they type.
    """
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InviteError(f"email: {exc}") from None


def validate(invitee: Invitee) -> Invitee:
    """Normalise and check an invitee; raise :class:`InviteError` naming the bad field."""
    email = normalise_email(invitee.email)
    texts = {}
    for field in ("name", "account"):
        try:
            texts[field] = one_line(getattr(invitee, field), max_length=200)
        except CheckError as exc:
            raise InviteError(f"{field}: {exc}") from None
    if invitee.segment not in SEGMENTS:
        raise InviteError(f"segment: must be one of {', '.join(SEGMENTS)}")
    if invitee.language not in LANGUAGES:
        raise InviteError(f"language: must be one of {', '.join(LANGUAGES)}")
    return Invitee(
        email=email,
        name=texts["name"],
        account=texts["account"],
        segment=invitee.segment,
        language=invitee.language,
        annual_value=invitee.annual_value,
        account_ref=invitee.account_ref,
    )


def find_account(*, external_ref: str | None = None, name: str | None = None) -> Account | None:
    """The account with this external reference, else the one with this name."""
    account = None
    if external_ref:
        account = db.session.scalar(sa.select(Account).where(Account.external_ref == external_ref))
    if account is None and name:
        account = db.session.scalar(sa.select(Account).where(Account.name == name))
    return account


def _queue_on_account_keys(name: str, external_ref: str | None) -> None:
    """On PostgreSQL, wait for any other transaction that is writing an account of this name
    or reference, until it ends. Without it, different events of one new account told at
    once each insert the account, and the unique indexes make them deadlock on each other
    beyond any number of retries. Transaction-scoped advisory locks, taken in one order;
    SQLite has one writer at a time already."""
    if db.engine.dialect.name != "postgresql":
        return
    keys = sorted(
        {f"account-name:{name}"} | ({f"account-ref:{external_ref}"} if external_ref else set())
    )
    for key in keys:
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(key))))


def upsert_account(
    *, name: str, segment: str, external_ref: str | None, annual_value: Decimal | None
) -> Account:
    """Find an account by external reference (else by name) and update it, or create it.

    A name belongs to one account: renaming an account to another's name is refused.
    """
    # Both look-ups in one statement, so in one snapshot: read one after the other, a new
    # account committed in between by a request racing this one (the same event posted
    # twice, two orders of a new customer) would be missing by its reference and then found
    # by its name, and refused as "another account".
    _queue_on_account_keys(name, external_ref)
    wanted = [Account.name == name]
    if external_ref is not None:
        wanted.append(Account.external_ref == external_ref)
    found = db.session.scalars(sa.select(Account).where(sa.or_(*wanted))).all()
    by_ref = [a for a in found if external_ref is not None and a.external_ref == external_ref]
    account = by_ref[0] if by_ref else None
    if account is None or account.name != name:
        by_name = next((a for a in found if a.name == name), None)
        if account is None and by_name is not None and external_ref is None:
            account = by_name
        elif account is None and by_name is not None and by_name.external_ref is None:
            account = by_name  # known by name until now; from here on also by its reference
        elif by_name is not None and by_name is not account:
            raise AccountConflict(
                f"account: {name!r} is the name of another account"
                + (f" (external ref {by_name.external_ref!r})" if by_name.external_ref else "")
            )
    if account is None:
        account = Account(name=name, segment=segment, external_ref=external_ref)
        db.session.add(account)
    account.name = name
    if account.id is not None and account.segment != segment:
        account_changed.send(_app(), account=account)
    account.segment = segment
    if external_ref is not None:
        account.external_ref = external_ref
    if annual_value is not None:
        account.annual_value = annual_value
    return account


def find_contact(email: str) -> Contact | None:
    """The contact with this (already normalised) address, or the erased contact it was:
    an erased person who turns up again in an import or an event is never asked again."""
    return db.session.scalar(
        sa.select(Contact).where(Contact.email.in_((email, erased_address(email))))
    )


def erased_address(email: str) -> str:
    """What an erased contact's address becomes: a keyed hash of it (not the address, and
    not to be guessed from a list of addresses without the secret key), so that the person
    is still recognised, and left alone, if they turn up again."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, email.encode(), hashlib.sha256).hexdigest()[:40]
    return f"erased-{digest}@erased.invalid"


ERASED_NAME = "Erased person"


def erase_contact(contact: Contact, now: dt.datetime) -> None:
    """Overwrite the contact's name and address; it is never written back nor sent to."""
    contact.email, contact.name = erased_address(contact.email), ERASED_NAME
    contact.erased_at = now


def put_contact(
    account: Account, *, email: str, name: str, language: str, update: bool = True
) -> Contact:
    """The contact with ``email``, created in ``account``, or moved there and updated.

    ``update=False`` keeps an existing contact as it is (history brought in from another
    tool must not overwrite who they are today). An erased contact is always left alone:
    nothing personal is written back.
    """
    contact = find_contact(email)
    if contact is None:
        contact = Contact(email=email, account=account, name=name, language=language)
        db.session.add(contact)
        return contact
    if contact.erased_at is not None or not update:
        return contact
    contact.account, contact.name, contact.language = account, name, language
    return contact


def upsert_contact(invitee: Invitee) -> Contact:
    """Create or update the account and contact an invitee describes."""
    return upsert_invitee(invitee)[1]


def upsert_invitee(invitee: Invitee) -> tuple[Account, Contact]:
    """:func:`upsert_contact`, also handing back the account (for the event it belongs to)."""
    invitee = validate(invitee)
    account = upsert_account(
        name=invitee.account,
        segment=invitee.segment,
        external_ref=invitee.account_ref,
        annual_value=invitee.annual_value,
    )
    contact = put_contact(
        account, email=invitee.email, name=invitee.name, language=invitee.language
    )
    return account, contact


def mark_bounced(email: str, *, at: dt.datetime | None = None) -> Contact | None:
    """Record that mail to ``email`` bounces; the earliest bounce is kept. None when no
    contact has this address."""
    contact = find_contact(normalise_email(email))
    if contact is not None and contact.bounced_at is None:
        contact.bounced_at = at or utcnow()
    return contact


def unsubscribe(contact: Contact, *, at: dt.datetime | None = None) -> None:
    """No survey goes to ``contact`` again; the first time they asked is kept."""
    if contact.unsubscribed_at is None:
        contact.unsubscribed_at = at or utcnow()


# --- the relationship ----------------------------------------------------------------------


def mark_churned(account: Account, at: dt.datetime, *, now: dt.datetime | None = None) -> None:
    """The customer left at ``at``: the account leaves the live views, keeps its history."""
    now = now or utcnow()
    if at > now + dt.timedelta(days=1):
        raise InviteError("churned_at: must not be in the future")
    since = first_known(account)
    if since is not None and at < since:
        raise InviteError(f"churned_at: before the account's first known day ({since:%Y-%m-%d})")
    account.churned_at = at


def first_known(account: Account) -> dt.datetime | None:
    """The account's first answer or event on record (None without any): a customer cannot
    have left before it. An account brought in from a CRM with no history here can have
    left at any time in the past."""
    if account.id is None:
        return None
    firsts = [
        db.session.scalar(sa.select(sa.func.min(column)).where(model.account_id == account.id))
        for column, model in ((Response.submitted_at, Response), (Event.occurred_at, Event))
    ]
    known = [first for first in firsts if first is not None]
    return min(known) if known else None


def reactivate(account: Account) -> None:
    """The customer is back: the account is live again."""
    account.churned_at = None
    account.health_stale = True


def _app() -> t.Any:
    """The app itself (signals are sent with it as sender), not the context proxy."""
    return t.cast(t.Any, current_app)._get_current_object()


def set_owner(account: Account, owner_email: str | None) -> None:
    """Give the account to a staff member (by e-mail), or to nobody with an empty one."""
    owner = None
    if owner_email:
        email = normalise_email(owner_email)
        owner = db.session.scalar(sa.select(User).where(User.email == email))
        if owner is None or not owner.active:
            raise InviteError(f"owner_email: no active staff member {email!r}")
    if account.id is not None and account.owner_id != (owner.id if owner else None):
        account_changed.send(_app(), account=account)
    account.owner = owner


def set_decision_maker(contact: Contact, decision_maker: bool) -> None:
    contact.is_decision_maker = decision_maker
    contact.account.health_stale = True
