"""Commands that reach customers and other systems: invite, dispatch, work, import, webhooks,
keys."""

from __future__ import annotations

import signal
import threading
import typing as t
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from ..accounts.services import Invitee, InviteError, upsert_contact
from ..api.keys import all_keys, issue_key, revoke_key
from ..db import db
from ..models import LANGUAGES, SEGMENTS, WebhookDelivery
from ..outreach.dispatch import run_loop, send_due
from ..outreach.imports import ImportFailed, apply, check, make_kind
from ..outreach.invitations import create_invitation, survey_url
from ..outreach.webhooks import (
    EVENTS,
    WebhookError,
    deliver_due,
    register_webhook,
    remove_webhook,
    retry_delivery,
    send_test,
    webhooks_with_counts,
)
from ..survey import follow_ups

if t.TYPE_CHECKING:
    from ..outreach.imports import Kind


@click.command("invite")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--account", required=True, help='Account name, e.g. "Acme A/S".')
@click.option("--segment", required=True, type=click.Choice(SEGMENTS))
@click.option("--language", required=True, type=click.Choice(LANGUAGES))
@click.option("--survey", default="post-sale", show_default=True)
def invite(email: str, name: str, account: str, segment: str, language: str, survey: str) -> None:
    """Invite a contact to a survey now and print the survey link."""
    try:
        contact = upsert_contact(Invitee(email, name, account, segment, language))
        invitation = create_invitation(contact, survey)
    except InviteError as exc:
        db.session.rollback()
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(survey_url(invitation))


@click.command("dispatch")
@click.option("--loop", is_flag=True, help="Keep running, sending as invitations fall due.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    help="Seconds between passes with --loop (default: DISPATCH_INTERVAL).",
)
def dispatch_command(loop: bool, interval: float | None) -> None:
    """Send every invitation and reminder that is due, once (and due webhooks)."""
    if not loop:
        click.echo(str(send_due()))
        return
    interval = interval or float(current_app.config["DISPATCH_INTERVAL"])
    stop = threading.Event()  # the message being sent is finished and recorded; then it ends
    click.echo(f"dispatching every {interval:g} s; stop with Ctrl-C or SIGTERM", err=True)
    _until_stopped(stop, lambda: run_loop(interval, stop=stop, echo=click.echo), "message")
    click.echo("dispatcher stopped", err=True)


def _until_stopped(stop: threading.Event, run: t.Callable[[], t.Any], in_hand: str) -> None:
    """Run a loop with SIGTERM and Ctrl-C setting ``stop``: the work in hand is finished."""

    def request_stop(signum: int, _frame: t.Any) -> None:
        click.echo(f"{signal.Signals(signum).name}: stopping after the current {in_hand}", err=True)
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@click.command("work")
@click.option("--loop/--once", default=True, help="Keep running (default), or one pass.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    help="Seconds between passes (default: WORK_INTERVAL).",
)
def work_command(loop: bool, interval: float | None) -> None:
    """Do answers' follow-ups (flags, cases, webhooks, rollups), then post due webhooks."""
    if not loop:
        done = follow_ups.process_pending()
        hooks = deliver_due()
        click.echo(f"follow-ups done: {done}; webhooks delivered: {hooks.delivered}")
        return
    interval = interval or float(current_app.config["WORK_INTERVAL"])
    stop = threading.Event()
    click.echo(f"working every {interval:g} s; stop with Ctrl-C or SIGTERM", err=True)
    _until_stopped(
        stop,
        lambda: follow_ups.run_loop(
            interval, stop=stop, also=lambda: deliver_due(stop=stop.is_set), echo=click.echo
        ),
        "batch",
    )
    click.echo("worker stopped", err=True)


# --- imports -------------------------------------------------------------------------------

import_cli = AppGroup("import", help="Import CSV files (UTF-8, comma or semicolon separated).")


def _import(kind: Kind, path: Path) -> None:
    try:
        items = check(kind, path.read_bytes())
        with click.progressbar(items, label=f"Importing {path.name}", show_pos=True) as bar:
            result = apply(kind, bar)
    except ImportFailed as exc:
        for error in exc.errors[:100]:
            click.echo(f"{path}: {error}", err=True)
        if len(exc.errors) > 100:
            click.echo(f"... and {len(exc.errors) - 100} more", err=True)
        raise click.ClickException(f"{len(exc.errors)} problem(s); nothing was imported.") from None
    click.echo(f"Imported {path.name}: {result}")


_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@import_cli.command("accounts")
@_FILE
def import_accounts(file: Path) -> None:
    """Accounts: external_ref, name, segment (b2b/b2c), annual_value."""
    _import(make_kind("accounts"), file)


@import_cli.command("contacts")
@_FILE
def import_contacts(file: Path) -> None:
    """Contacts: email, name, language (da/en), and account_ref or account (its name)."""
    _import(make_kind("contacts"), file)


@import_cli.command("events")
@_FILE
def import_events(file: Path) -> None:
    """Events, as the API takes them; the surveys they trigger are scheduled by the rules.

    Columns: external_id, kind, occurred_at, account_ref, account_name, segment,
    contact_email, contact_name, language; optional annual_value, amount, product."""
    _import(make_kind("events"), file)


@import_cli.command("responses")
@_FILE
@click.option("--survey", default="post-sale", show_default=True, help="Survey they count as.")
@click.option("--comment-question", help="Question the comment answers (default: the first text).")
def import_responses(file: Path, survey: str, comment_question: str | None) -> None:
    """Survey results from another tool: account, contact_email, submitted_at, nps, csat,
    ces, comment, language; optional account_ref, segment, contact_name."""
    try:
        kind = make_kind("responses", survey=survey, question=comment_question)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _import(kind, file)


# --- webhooks ------------------------------------------------------------------------------

webhook_cli = AppGroup("webhook", help="URLs that receive signed notifications.")


@webhook_cli.command("add")
@click.argument("url")
@click.option(
    "--event", "events", multiple=True, default=EVENTS, show_default=True, type=click.Choice(EVENTS)
)
def webhook_add(url: str, events: tuple[str, ...]) -> None:
    """Register URL and print the secret receivers check signatures with (shown once)."""
    try:
        webhook = register_webhook(url, events)
    except WebhookError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(f"Webhook {webhook.id} posts {webhook.events} to {webhook.url}")
    click.echo(f"Signing secret (shown once): {webhook.secret}")


@webhook_cli.command("list")
def webhook_list() -> None:
    """List webhooks with their delivery counts."""
    for w, counts in webhooks_with_counts():
        state = "active" if w.active else "off"
        tally = ", ".join(f"{n} {status}" for status, n in counts.items())
        click.echo(f"{w.id}\t{state}\t{w.events}\t{w.url}\t{tally}")


@webhook_cli.command("remove")
@click.argument("webhook_id", type=int)
def webhook_remove(webhook_id: int) -> None:
    """Stop a webhook: nothing more is queued for it; pending deliveries fail."""
    webhook = remove_webhook(webhook_id)
    if webhook is None:
        raise click.UsageError(f"no webhook {webhook_id}")
    db.session.commit()
    click.echo(f"Webhook {webhook.id} is off.")


def _tried(delivery: WebhookDelivery) -> None:
    """Say how a delivery tried by hand went; a failure is an error exit."""
    if delivery.status == "delivered":
        click.echo(f"Delivery {delivery.id}: delivered (HTTP {delivery.last_status_code}).")
    else:
        raise click.ClickException(f"delivery {delivery.id} failed: {delivery.last_error}")


@webhook_cli.command("test")
@click.argument("webhook_id", type=int)
def webhook_test(webhook_id: int) -> None:
    """Post a test event to a webhook now (tried once) and say how it went."""
    try:
        delivery = send_test(webhook_id)
    except WebhookError as exc:
        raise click.UsageError(str(exc)) from None
    if delivery is None:
        raise click.UsageError(f"no webhook {webhook_id}")
    _tried(delivery)


@webhook_cli.command("retry")
@click.argument("delivery_id", type=int)
def webhook_retry(delivery_id: int) -> None:
    """Try a failed delivery once more, now."""
    try:
        delivery = retry_delivery(delivery_id)
    except WebhookError as exc:
        raise click.UsageError(str(exc)) from None
    if delivery is None:
        raise click.UsageError(f"no webhook delivery {delivery_id}")
    _tried(delivery)


# --- API keys ------------------------------------------------------------------------------

key_cli = AppGroup("api-key", help="Keys other systems use to call /api/v1.")


@key_cli.command("create")
@click.option("--name", required=True, help="Who uses it, e.g. 'webshop'.")
def key_create(name: str) -> None:
    """Create a key and print it; it is shown this once."""
    try:
        api_key, key = issue_key(name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    db.session.commit()
    click.echo(key)
    click.echo(f"Key {api_key.id} ({api_key.name}) created; it is not shown again.", err=True)


@key_cli.command("list")
def key_list() -> None:
    """List keys: id, prefix, name, last use, revoked."""
    for k in all_keys():
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never used"
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        click.echo(f"{k.id}\t{k.prefix}…\t{k.name}\t{used}\t{state}")


@key_cli.command("revoke")
@click.argument("key_id")
def key_revoke(key_id: str) -> None:
    """Revoke a key by its id or prefix; requests with it get 401 from now on."""
    api_key = revoke_key(key_id)
    if api_key is None:
        raise click.UsageError(f"no API key with id or prefix {key_id!r}")
    db.session.commit()
    click.echo(f"Key {api_key.id} ({api_key.name}) is revoked.")


COMMANDS = (invite, dispatch_command, work_command, import_cli, webhook_cli, key_cli)
