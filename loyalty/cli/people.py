"""Commands about people: staff users, and contacts whose mail bounces."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..accounts.services import InviteError, mark_bounced
from ..auth import create_user
from ..db import db
from ..models import ROLES

user_cli = AppGroup("user", help="Staff users.")
contact_cli = AppGroup("contact", help="Contacts: record bounces.")


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
    click.echo(f"{contact.email} bounces since {contact.bounced_at:%Y-%m-%d %H:%M} UTC")


COMMANDS = (user_cli, contact_cli)
