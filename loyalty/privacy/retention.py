"""Retention: comments and personal data older than ``RETENTION_MONTHS`` are removed, by the
same rules as an erasure (:mod:`.requests`), on each dispatcher pass. Off (0) by default.

What goes, once older than the limit: the words of comments (their scores and sentiment
stay, so every count adds up as before); the text of case history lines (notes, contact
records, replies), whose words are staff's about a customer; finished webhook deliveries,
whose payloads carry names and comments; the stored e-mails of the outbox folder; the
client addresses (IP) in the audit log; and the
contacts nobody has heard from or written to since (no invitation, answer or event),
erased as a privacy request would erase them, each with a receipt. A pass does at most
:data:`BATCH` of each, so a first run on years of data spreads over several passes.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

import sqlalchemy as sa
from flask import current_app

from ..db import db
from ..import_tables import forget_old_uploads
from ..mailer import outbox_folder
from ..models import (
    ERASED_TEXT,
    Answer,
    AuditEvent,
    CaseEvent,
    Contact,
    Event,
    Invitation,
    Response,
    WebhookDelivery,
    utcnow,
)
from . import requests

BATCH = 500
#: a month, for the limit: the length of an average one
MONTH = dt.timedelta(days=30.44)


def cutoff(now: dt.datetime) -> dt.datetime | None:
    """The moment before which data is removed; None when retention is off."""
    months = int(current_app.config["RETENTION_MONTHS"] or 0)
    return now - months * MONTH if months > 0 else None


def apply(now: dt.datetime | None = None) -> dict[str, int]:
    """One pass of retention; what was removed, per place (nothing when it is off)."""
    now = now or utcnow()
    before = cutoff(now)
    if before is None:
        return {}
    done = {
        "comments": _comments(before),
        "case_history_lines": _history(before),
        "webhook_deliveries": _deliveries(before),
        "emails_in_outbox": _outbox(before),
        "audit_addresses": _audit_addresses(before),
    }
    db.session.commit()
    done["contacts"] = _contacts(before, now)
    return done


def _comments(before: dt.datetime) -> int:
    answers = db.session.scalars(
        sa.select(Answer)
        .join(Response, Answer.response_id == Response.id)
        .where(
            Response.submitted_at < before,
            Answer.text.is_not(None),
            Answer.text != "",
            Answer.text != ERASED_TEXT,
        )
        .limit(BATCH)
    ).all()
    for answer in answers:
        requests.erase_answer(answer)
    return len(answers)


def _history(before: dt.datetime) -> int:
    lines = db.session.scalars(
        sa.select(CaseEvent)
        .where(
            CaseEvent.created_at < before,
            CaseEvent.body.is_not(None),
            CaseEvent.body != "",
            CaseEvent.body != ERASED_TEXT,
        )
        .limit(BATCH)
    ).all()
    for line in lines:
        line.body = ERASED_TEXT
    return len(lines)


def _deliveries(before: dt.datetime) -> int:
    finished = (
        sa.select(WebhookDelivery.id)
        .where(WebhookDelivery.created_at < before, WebhookDelivery.status != "pending")
        .limit(BATCH)
    )
    ids = list(db.session.scalars(finished))
    if ids:
        db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.id.in_(ids)))
    return len(ids)


def _audit_addresses(before: dt.datetime) -> int:
    """The client address of old audit events (the one change the append-only log takes,
    its triggers allow nothing else): who did what, and when, stays."""
    old = (
        sa.select(AuditEvent.id)
        .where(AuditEvent.at < before, AuditEvent.ip.is_not(None))
        .limit(BATCH)
    )
    ids = list(db.session.scalars(old))
    if ids:  # a Core update: the ORM refuses any change to an audit event
        db.session.execute(sa.update(AuditEvent).where(AuditEvent.id.in_(ids)).values(ip=None))
    return len(ids)


def _outbox(before: dt.datetime) -> int:
    folder = outbox_folder(current_app.config["MAIL_URL"], current_app.instance_path)
    if folder is None:
        return 0
    limit, removed = before.timestamp(), 0
    for path in folder.glob("*.eml") if folder.is_dir() else []:
        if path.stat().st_mtime < limit and removed < BATCH:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _contacts(before: dt.datetime, now: dt.datetime) -> int:
    """Erase the contacts with no sign of life since ``before``, each with its receipt."""

    def since(column: t.Any, owner: t.Any) -> t.Any:
        return sa.exists().where(owner == Contact.id, column >= before)

    quiet = db.session.scalars(
        sa.select(Contact)
        .where(
            Contact.erased_at.is_(None),
            Contact.created_at < before,
            ~since(Invitation.created_at, Invitation.contact_id),
            ~since(Response.submitted_at, Response.contact_id),
            ~since(Event.occurred_at, Event.contact_id),
        )
        .order_by(Contact.id)
        .limit(BATCH)
    ).all()
    for contact in quiet:
        requests.erase(contact, via="retention", now=now)
    return len(quiet)


def on_dispatch_tick(sender: t.Any, *, now: dt.datetime | None = None, **_: t.Any) -> None:
    """After each dispatcher pass: what has passed the retention limit goes."""
    started = time.monotonic()
    try:
        # Unconfirmed import files go after a day whether or not retention is on.
        done = {"pending_import_uploads": forget_old_uploads(now)}
        db.session.commit()
        done |= apply(now)
    except Exception:  # the invitations keep going out; the next pass tries again
        db.session.rollback()
        current_app.logger.exception("retention failed in this dispatcher pass")
        return
    if any(done.values()):
        current_app.logger.info(
            "retention removed %s in %.1f s",
            ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in done.items() if n),
            time.monotonic() - started,
        )
