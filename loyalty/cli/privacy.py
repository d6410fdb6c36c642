"""``flask --app loyalty privacy export|erase EMAIL``: a person's privacy request, for
scripts (the same code as the admin page)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask.cli import AppGroup

from ..privacy import requests

privacy_cli = AppGroup("privacy", help="A person's privacy requests: export or erase.")


def _person(email: str):
    try:
        return requests.find_person(email)
    except requests.PrivacyError as exc:
        raise click.ClickException(str(exc)) from exc


@privacy_cli.command("export")
@click.argument("email")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the JSON here instead of to standard output.")  # fmt: skip
def export_person(email: str, output: Path | None) -> None:
    """Everything held about the person with EMAIL, as one JSON document."""
    document = requests.export(_person(email))
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"Wrote {output}: " + " ".join(document["summary"]), err=True)


@privacy_cli.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_person(email: str, yes: bool) -> None:
    """Erase the personal data of the person with EMAIL everywhere; prints the receipt."""
    contact = _person(email)
    if not yes:
        click.confirm(
            f"Erase {contact.email} of {contact.account.name} everywhere? This cannot be undone",
            abort=True,
        )
    click.echo(requests.receipt_text(requests.erase(contact)))


COMMANDS = (privacy_cli,)
