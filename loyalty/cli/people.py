"""Commands about people: staff users, contacts (bounces, decision makers), accounts (owner,
churn)."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import AppGroup

from ..accounts.services import (
    InviteError,
    find_account,
    find_contact,
    mark_bounced,
    mark_churned,
    normalise_email,
    reactivate,
    set_decision_maker,
    set_owner,
)
from ..admin.staff import create_user
from ..audit import log as audit_log
from ..db import db
from ..models import ROLES
from ..periods import local_text
from ..triage.settings import settings

user_cli = AppGroup("user", help="Staff users.")
contact_cli = AppGroup("contact", help="Contacts: record bounces, mark decision makers.")
account_cli = AppGroup("account", help="Accounts: their owner, churn and reactivation.")


@user_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.password_option(help="Prompted for when not given.")
def user_create(email: str, role: str, password: str) -> None:
    """Create a staff user who signs in at /login."""
    try:
        user = create_user(email, role, password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.flush()
    audit_log.record("user.create", target=f"user:{user.id}", detail={"role": role})
    db.session.commit()
    click.echo(f"Created {user.role} {user.email}")


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
    assert contact.bounced_at is not None  # mark_bounced set it, or kept the first one
    since = local_text(contact.bounced_at, settings().calendar.tz)
    click.echo(f"{contact.email} bounces since {since}")


@contact_cli.command("decision-maker")
@click.argument("email")
@click.argument("decides", type=click.BOOL)
def contact_decision_maker(email: str, decides: bool) -> None:
    """Mark the contact with EMAIL as a decision maker of their account (true) or not (false)."""
    try:
        contact = find_contact(normalise_email(email))
    except InviteError as exc:
        raise click.UsageError(str(exc)) from None
    if contact is None:
        raise click.UsageError(f"email: no contact has the address {email!r}")
    set_decision_maker(contact, decides)
    db.session.commit()
    click.echo(
        f"{contact.email} {'decides' if decides else 'does not decide'} for {contact.account.name}"
    )


def _account(ref: str):
    account = find_account(external_ref=ref, name=ref)
    if account is None:
        raise click.UsageError(f"no account with the external ref or name {ref!r}")
    return account


@account_cli.command("owner")
@click.argument("account")
@click.argument("email", required=False, default="")
def account_owner(account: str, email: str) -> None:
    """Give ACCOUNT (its external ref or name) to the staff member with EMAIL; no EMAIL: to
    nobody. The owner gets its cases and its health warnings."""
    found = _account(account)
    try:
        set_owner(found, email)
    except InviteError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(f"{found.name} is owned by {found.owner.email if found.owner else 'nobody'}")


@account_cli.command("churn")
@click.argument("account")
@click.argument("day", type=click.DateTime(formats=["%Y-%m-%d"]))
def account_churn(account: str, day: dt.datetime) -> None:
    """Record that ACCOUNT's customer left on DAY (YYYY-MM-DD)."""
    found = _account(account)
    try:
        mark_churned(found, day.replace(tzinfo=dt.UTC))
    except InviteError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(f"{found.name} churned on {day:%Y-%m-%d}")


@account_cli.command("reactivate")
@click.argument("account")
def account_reactivate(account: str) -> None:
    """The customer of ACCOUNT is back."""
    found = _account(account)
    reactivate(found)
    db.session.commit()
    click.echo(f"{found.name} is live again")


COMMANDS = (user_cli, contact_cli, account_cli)
