"""Commands about the data itself: demo data, the responses export, sentiment scoring."""

from __future__ import annotations

import dataclasses
import json
import sys
import typing as t

import click
from flask import current_app
from flask.cli import AppGroup

from .. import sentiment
from ..audit import log as audit_log
from ..dashboard.responses import write_csv
from ..demo import demo_login, is_empty, seed_demo
from ..models import LANGUAGES
from ..specs import themes
from ..survey.responses import count_outdated, rescore_outdated
from ..triage.flagging import triage_lead_warning

export_cli = AppGroup("export", help="Export data as CSV to standard output.")
demo_cli = AppGroup("demo", help="Demo data for trying Loyalty out.")
sentiment_cli = AppGroup("sentiment", help="Sentiment scoring of free-text answers.")


@export_cli.command("responses")
def export_responses() -> None:
    """Write every response as CSV (spreadsheet-safe) to standard output."""
    write_csv(sys.stdout)
    audit_log.exported("responses")


@demo_cli.command("seed")
@click.option("--if-empty", is_flag=True, help="Do nothing when there are accounts already.")
@click.option("--accounts", default=36, show_default=True)
@click.option("--seed", default=2026, show_default=True, help="Random seed, for repeatable data.")
def demo_seed(if_empty: bool, accounts: int, seed: int) -> None:
    """Fill the database with a year of realistic accounts, contacts and responses."""
    if if_empty and not is_empty():
        click.echo("Database has data; demo seed skipped.")
        return
    with click.progressbar(length=accounts, label="Seeding demo accounts") as bar:
        seed_demo(accounts=accounts, seed=seed, progress=bar.update)
    click.echo(f"Seeded {accounts} demo accounts.")


@demo_cli.command("info")
def demo_info() -> None:
    """Print the demo staff login (its password is kept) and one survey link that works."""
    email, password, link = demo_login()
    base = current_app.config["BASE_URL"]
    click.echo(f"\n  Loyalty is at {base}/login\n  Staff login: {email} / {password}")
    click.echo(f"  A survey link: {link}\n")
    warning = triage_lead_warning()
    if warning:
        click.echo(f"  {warning}\n", err=True)


@sentiment_cli.command("rescore")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000))
def sentiment_rescore(batch_size: int) -> None:
    """Rescore stored answers scored by an older scorer version (resumable)."""
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
    """Score each line of standard input; write one JSON object per line (with its themes)."""
    for line in source:
        text = line.rstrip("\n")
        result = dataclasses.asdict(sentiment.score(text, language, themes(current_app)))
        click.echo(json.dumps({"text": text, **result}, ensure_ascii=False))


COMMANDS = (export_cli, demo_cli, sentiment_cli)
