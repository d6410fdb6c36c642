"""Command-line interface: thin click wrappers around functions tests can call directly."""

from __future__ import annotations

import sys
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .db import db
from .models import LANGUAGES, ROLES, SEGMENTS

if t.TYPE_CHECKING:
    from flask import Flask

user_cli = AppGroup("user", help="Staff users.")
export_cli = AppGroup("export", help="Export data as CSV to standard output.")
demo_cli = AppGroup("demo", help="Demo data for trying Loyalty out.")
sentiment_cli = AppGroup("sentiment", help="Sentiment scoring of free-text answers.")


@user_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.password_option(help="Prompted for when not given.")
def user_create(email: str, role: str, password: str) -> None:
    """Create a staff user who signs in at /login."""
    from .auth import create_user

    try:
        user = create_user(email, role, password)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(f"Created {user.role} {user.email}")


@click.command("invite")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--account", required=True, help='Account name, e.g. "Acme A/S".')
@click.option("--segment", required=True, type=click.Choice(SEGMENTS))
@click.option("--language", required=True, type=click.Choice(LANGUAGES))
@click.option("--survey", default="post-sale", show_default=True)
def invite(email: str, name: str, account: str, segment: str, language: str, survey: str) -> None:
    """Invite a contact to a survey now and print the survey link."""
    from .invitations import Invitee, InviteError, create_invitation, survey_url, upsert_contact

    try:
        contact = upsert_contact(Invitee(email, name, account, segment, language))
        invitation = create_invitation(contact, survey)
    except InviteError as exc:
        db.session.rollback()
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(survey_url(invitation))


@export_cli.command("responses")
def export_responses() -> None:
    """Write every response as CSV (spreadsheet-safe) to standard output."""
    from .responses import write_csv

    write_csv(sys.stdout)


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when there are accounts already.")
@click.option("--accounts", default=36, show_default=True)
@click.option("--seed", default=2026, show_default=True, help="Random seed, for repeatable data.")
def demo_seed(if_empty: bool, accounts: int, seed: int) -> None:
    """Fill the database with a year of realistic accounts, contacts and responses."""
    from .demo import is_empty, seed_demo

    if if_empty and not is_empty():
        click.echo("Database has data; demo seed skipped.")
        return
    with click.progressbar(length=accounts, label="Seeding demo accounts") as bar:
        seed_demo(accounts=accounts, seed=seed, progress=bar.update)
    click.echo(f"Seeded {accounts} demo accounts.")


@demo_cli.command("info")
def demo_info() -> None:
    """Print a staff login (with a fresh password) and one survey link that works."""
    from .demo import demo_login

    email, password, link = demo_login()
    base = current_app.config["BASE_URL"]
    click.echo(f"\n  Loyalty is at {base}/login\n  Staff login: {email} / {password}")
    click.echo(f"  A survey link: {link}\n")


@sentiment_cli.command("rescore")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
def sentiment_rescore(batch_size: int) -> None:
    """Rescore stored answers scored by an older scorer version (resumable)."""
    from . import sentiment
    from .responses import count_outdated, rescore_outdated

    total = count_outdated()
    if not total:
        click.echo(f"All answers are scored by version {sentiment.SCORER_VERSION}.")
        return
    with click.progressbar(length=total, label="Rescoring answers") as bar:
        done = rescore_outdated(batch_size=batch_size, progress=bar.update)
    click.echo(f"Rescored {done} answers with scorer version {sentiment.SCORER_VERSION}.")


@sentiment_cli.command("score")
@click.option("--language", type=click.Choice(LANGUAGES), help="The text's expected language.")
@click.argument("source", type=click.File("r", errors="replace"), default="-")
def sentiment_score(language: str | None, source: t.TextIO) -> None:
    """Score each line of standard input; write one JSON object per line."""
    import dataclasses
    import json

    from . import sentiment

    for line in source:
        text = line.rstrip("\n")
        result = dataclasses.asdict(sentiment.score(text, language))
        click.echo(json.dumps({"text": text, **result}, ensure_ascii=False))


def init_app(app: Flask) -> None:
    # dispatch, import, api-key, webhook and contact come from their own modules' init_app.
    for command in (user_cli, export_cli, demo_cli, sentiment_cli, invite):
        app.cli.add_command(command)
