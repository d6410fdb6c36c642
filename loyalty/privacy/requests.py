"""Privacy requests for one person, found by their e-mail address: everything held about
them as one JSON document (the right of access), and the erasure of their personal data
everywhere it is (the right to erasure), keeping what carries none.

What an erasure keeps: the scores (NPS, CSAT, CES) and each comment's sentiment, so every
count and rollup adds up as before; the comment's words become :data:`ERASED_TEXT`. What it
overwrites: the contact's name and address (the address becomes a keyed hash, so the
person is recognised and left alone if they turn up again), their comments, their name and
address in case history and notes, in health warnings and in webhook payloads, the e-mails
to them in the outbox folder; it deletes the uploaded import files not yet confirmed that
hold their address (:mod:`loyalty.privacy.uploads`). Their survey links then open nothing,
and no invitation or reply goes to them again. Each request leaves a
:class:`~loyalty.models.PrivacyRequest` row, with counts and no personal data: the receipt.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from email import message_from_bytes, policy
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from ..accounts.services import InviteError, erase_contact, find_contact, normalise_email
from ..audit import log as audit_log
from ..db import db
from ..mailer import outbox_folder
from ..models import (
    ERASED_TEXT,
    Answer,
    Case,
    CaseEvent,
    Contact,
    Event,
    Flag,
    HealthWarning,
    Invitation,
    PrivacyRequest,
    Response,
    User,
    WebhookDelivery,
    utcnow,
)
from ..survey.responses import parse_themes
from .uploads import erase_uploads, export_uploads, uploads_about

#: a name shorter than this is too common a string to erase wherever it appears in free text
MIN_NAME_TO_FIND = 5


class PrivacyError(ValueError):
    """A request that cannot be served; the message says why, for the person."""


def find_person(email: str) -> Contact:
    """The contact with this address; a clear error when there is none (or it is erased)."""
    try:
        address = normalise_email(email)
    except InviteError as exc:
        raise PrivacyError(f"email: {exc}") from exc
    contact = find_contact(address)
    if contact is None:
        pending = uploads_about(address)
        if pending:  # not a contact yet, but an admin's upload holds them
            names = ", ".join(u.filename for u in pending)
            raise PrivacyError(
                f"No contact has the address {address}, but {len(pending)} uploaded import "
                f"file(s) waiting for confirmation hold it ({names}): discard them at "
                "/admin/imports, or import them first and then serve the request."
            )
        raise PrivacyError(f"No contact has the address {address}.")
    if contact.erased_at is not None:
        raise PrivacyError(
            f"The contact with this address was erased on {contact.erased_at:%Y-%m-%d}."
        )
    return contact


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _mentions(contact: Contact) -> list[str]:
    """The strings that identify the person in free text: address, and name if distinctive."""
    found = [contact.email]
    if len(contact.name.strip()) >= MIN_NAME_TO_FIND:
        found.append(contact.name.strip())
    return found


def _their_cases(contact: Contact) -> list[Case]:
    query = (
        sa.select(Case)
        .join(Flag, Flag.case_id == Case.id)
        .join(Response, Flag.response_id == Response.id)
        .where(Response.contact_id == contact.id)
        .distinct()
        .order_by(Case.id)
    )
    return list(db.session.scalars(query))


def _mentioning(column: t.Any, mentions: list[str]) -> sa.ColumnElement[bool]:
    return sa.or_(*(sa.func.lower(column).contains(m.lower(), autoescape=True) for m in mentions))


def _events_about(contact: Contact) -> list[CaseEvent]:
    """History lines of any case that name the person, or were e-mails to them."""
    mentions = _mentions(contact)
    query = sa.select(CaseEvent).where(
        sa.or_(_mentioning(CaseEvent.body, mentions), _mentioning(CaseEvent.detail, mentions))
    )
    return list(db.session.scalars(query.order_by(CaseEvent.id)))


def _deliveries_about(contact: Contact) -> list[WebhookDelivery]:
    query = sa.select(WebhookDelivery).where(_mentioning(WebhookDelivery.payload, [contact.email]))
    return list(db.session.scalars(query.order_by(WebhookDelivery.id)))


def _warnings_about(contact: Contact) -> list[HealthWarning]:
    mentions = _mentions(contact)
    query = sa.select(HealthWarning).where(
        sa.or_(
            _mentioning(HealthWarning.reasons, mentions), _mentioning(HealthWarning.note, mentions)
        )
    )
    return list(db.session.scalars(query.order_by(HealthWarning.id)))


def _outbox_files(contact: Contact) -> list[Path]:
    """The stored e-mails (the ``outbox:`` transport's files) addressed to the person."""
    folder = outbox_folder(current_app.config["MAIL_URL"], current_app.instance_path)
    if folder is None:
        return []
    found = []
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else []:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        if contact.email in str(message.get("To", "")).lower():
            found.append(path)
    return found


# --- access ----------------------------------------------------------------------------------


def export(
    contact: Contact, *, actor: User | None = None, via: str = "command"
) -> dict[str, t.Any]:
    """Everything held about the person, as one JSON-ready document with a summary."""
    responses = list(
        db.session.scalars(
            sa.select(Response).where(Response.contact_id == contact.id).order_by(Response.id)
        )
    )
    flags = {
        flag.response_id: flag
        for flag in db.session.scalars(
            sa.select(Flag).where(Flag.response_id.in_([r.id for r in responses]))
        )
    }
    invitations = db.session.scalars(
        sa.select(Invitation).where(Invitation.contact_id == contact.id).order_by(Invitation.id)
    )
    events = db.session.scalars(
        sa.select(Event).where(Event.contact_id == contact.id).order_by(Event.id)
    )
    cases = _their_cases(contact)
    mentioned = _events_about(contact)
    deliveries = _deliveries_about(contact)
    warnings = _warnings_about(contact)
    outbox = _outbox_files(contact)
    document: dict[str, t.Any] = {
        "contact": {
            "id": contact.id,
            "email": contact.email,
            "name": contact.name,
            "language": contact.language,
            "is_decision_maker": contact.is_decision_maker,
            "unsubscribed_at": _iso(contact.unsubscribed_at),
            "bounced_at": _iso(contact.bounced_at),
            "created_at": _iso(contact.created_at),
        },
        "account": {
            "id": contact.account.id,
            "name": contact.account.name,
            "segment": contact.account.segment,
        },
        "events": [
            {
                "kind": e.kind,
                "occurred_at": _iso(e.occurred_at),
                "product": e.product,
                "amount": None if e.amount is None else str(e.amount),
            }
            for e in events
        ],  # fmt: skip
        "invitations": [
            {
                "id": i.id,
                "survey": i.survey,
                "status": i.status,
                "due_at": _iso(i.due_at),
                "sent_at": _iso(i.sent_at),
                "reminder_sent_at": _iso(i.reminder_sent_at),
                "answered_at": _iso(i.answered_at),
                "expires_at": _iso(i.expires_at),
            }
            for i in invitations
        ],  # fmt: skip
        "responses": [
            {
                "id": r.id,
                "survey": r.survey,
                "language": r.language,
                "submitted_at": _iso(r.submitted_at),
                "nps": r.nps,
                "csat": r.csat,
                "ces": r.ces,
                "answers": [
                    {
                        "question": a.question,
                        "text": a.text,
                        "number": a.number,
                        "polarity": a.polarity,
                        "sentiment": a.sentiment,
                        "cues": a.cues,
                        "themes": parse_themes(a.themes),
                    }
                    for a in r.answers
                ],
                "flag": None
                if r.id not in flags
                else {
                    "rules": flags[r.id].rules,
                    "severity": flags[r.id].severity,
                    "case_id": flags[r.id].case_id,
                },
            }
            for r in responses
        ],  # fmt: skip
        "cases": [
            {
                "id": c.id,
                "status": c.status,
                "outcome": c.outcome,
                "opened_at": _iso(c.opened_at),
                "resolved_at": _iso(c.resolved_at),
                "history": [
                    {"kind": e.kind, "at": _iso(e.created_at), "body": e.body} for e in c.history
                ],
            }
            for c in cases
        ],  # fmt: skip
        "mentions_in_case_history": [
            {
                "case_id": e.case_id,
                "kind": e.kind,
                "at": _iso(e.created_at),
                "body": e.body,
                "detail": json.loads(e.detail) if e.detail else None,
            }
            for e in mentioned
        ],  # fmt: skip
        "emails_in_outbox": [
            {
                "file": path.name,
                "subject": str(
                    message_from_bytes(path.read_bytes(), policy=policy.default).get("Subject", "")
                ),
            }
            for path in outbox
        ],  # fmt: skip
        "webhook_deliveries": [
            {
                "id": d.id,
                "event": d.event,
                "status": d.status,
                "created_at": _iso(d.created_at),
                "payload": json.loads(d.payload),
            }
            for d in deliveries
        ],  # fmt: skip
        "health_warnings": [
            {
                "id": w.id,
                "kind": w.kind,
                "raised_at": _iso(w.raised_at),
                "reasons": json.loads(w.reasons),
                "note": w.note,
            }
            for w in warnings
        ],  # fmt: skip
        "pending_import_uploads": export_uploads(contact.email),
    }
    counts = {name: len(value) for name, value in document.items() if isinstance(value, list)}
    document["summary"] = [
        f"{contact.name} <{contact.email}>, a contact of {contact.account.name} since "
        f"{contact.created_at:%Y-%m-%d}.",
        f"{counts['invitations']} survey invitations, {counts['responses']} responses "
        f"({sum(len(r['answers']) for r in document['responses'])} answers), "
        f"{counts['cases']} cases about their answers.",
        f"Named in {counts['mentions_in_case_history']} lines of case history, "
        f"{counts['health_warnings']} health warnings and {counts['webhook_deliveries']} "
        f"webhook deliveries; {counts['emails_in_outbox']} e-mails to them are stored.",
        f"In {counts['pending_import_uploads']} uploaded import files waiting for confirmation.",
    ]
    _record("export", contact, counts, actor, via)
    return document


# --- erasure ---------------------------------------------------------------------------------


def _scrub(text: str | None, mentions: list[str]) -> str | None:
    """``text`` with every mention of the person (any case) replaced by ERASED_TEXT."""
    if not text:
        return text
    for mention in mentions:
        text = re.sub(re.escape(mention), ERASED_TEXT, text, flags=re.IGNORECASE)
    return text


def erase_answer(answer: Answer) -> None:
    """A comment's words go; its score, sentiment and theme ids stay, so every count adds
    up as before (and ERASED_TEXT is never scored again)."""
    answer.text = ERASED_TEXT
    if answer.themes:
        kept = [{**theme, "words": [], "evidence": []} for theme in parse_themes(answer.themes)]
        answer.themes = json.dumps(kept, ensure_ascii=False)


def _scrub_payload(value: t.Any, contact_id: int) -> None:
    """In a webhook payload, wherever a response of the contact is (at any depth): their
    name, address and comments overwritten."""
    if isinstance(value, list):
        for item in value:
            _scrub_payload(item, contact_id)
    elif isinstance(value, dict):
        who = value.get("contact")
        if isinstance(who, dict) and who.get("id") == contact_id:
            who.update(email=ERASED_TEXT, name=ERASED_TEXT)
            for answer in value.get("answers") or []:
                if isinstance(answer, dict) and answer.get("text"):
                    answer["text"] = ERASED_TEXT
        for item in value.values():
            _scrub_payload(item, contact_id)


def erase(
    contact: Contact,
    *,
    actor: User | None = None,
    via: str = "command",
    now: dt.datetime | None = None,
) -> PrivacyRequest:
    """Erase the person's personal data everywhere it is, and commit; the receipt."""
    now = now or utcnow()
    mentions = _mentions(contact)
    counts: dict[str, int] = {}
    answers = list(
        db.session.scalars(
            sa.select(Answer)
            .join(Response, Answer.response_id == Response.id)
            .where(Response.contact_id == contact.id, Answer.text.is_not(None), Answer.text != "")
        )
    )
    for answer in answers:
        erase_answer(answer)
    counts["comments"] = len(answers)
    events = _events_about(contact)
    for line in events:
        if line.kind == "email_sent":
            line.body = ERASED_TEXT  # what was written to them is theirs as much
        else:
            line.body = _scrub(line.body, mentions)
        line.detail = _scrub(line.detail, mentions)
    counts["case_history_lines"] = len(events)
    warnings = _warnings_about(contact)
    for warning in warnings:
        warning.reasons = t.cast(str, _scrub(warning.reasons, mentions))
        warning.note = _scrub(warning.note, mentions)
    counts["health_warnings"] = len(warnings)
    deliveries = _deliveries_about(contact)
    for delivery in deliveries:
        payload = json.loads(delivery.payload)
        _scrub_payload(payload, contact.id)
        delivery.payload = t.cast(str, _scrub(json.dumps(payload, ensure_ascii=False), mentions))
        # a receiver may have echoed what it was sent: its answer goes as well
        delivery.last_answer = None
        delivery.last_error = ERASED_TEXT if delivery.last_error else None
    counts["webhook_deliveries"] = len(deliveries)
    cancelled = db.session.execute(
        sa.update(Invitation)
        .where(Invitation.contact_id == contact.id, Invitation.status == "scheduled")
        .values(status="skipped")
        .execution_options(synchronize_session=False)
    )
    counts["invitations_cancelled"] = t.cast(t.Any, cancelled).rowcount
    counts["pending_import_uploads"] = erase_uploads(contact.email)
    outbox = _outbox_files(contact)
    erase_contact(contact, now)
    counts["contacts"] = 1
    receipt = _record(
        "erase", contact, {**counts, "emails_in_outbox": len(outbox)}, actor, via, now
    )
    db.session.commit()
    for path in outbox:  # after the commit: a failed erasure leaves the files as they were
        path.unlink(missing_ok=True)
    return receipt


def _record(
    kind: str,
    contact: Contact,
    counts: dict[str, int],
    actor: User | None,
    via: str,
    now: dt.datetime | None = None,
) -> PrivacyRequest:
    receipt = PrivacyRequest(
        kind=kind,
        contact_id=contact.id,
        done_at=now or utcnow(),
        done_by=actor,
        via=via,
        counts=json.dumps(counts, sort_keys=True),
    )
    db.session.add(receipt)
    audit_log.record(f"privacy.{kind}", target=f"contact:{contact.id}", user=actor,
                     detail={"via": via})  # fmt: skip
    if kind == "export":
        db.session.commit()
    return receipt


def receipt_text(receipt: PrivacyRequest) -> str:
    """The erasure receipt for people: what was erased where, when and by whom."""
    counts = json.loads(receipt.counts)
    who = receipt.done_by.email if receipt.done_by else f"a {receipt.via}"
    lines = [
        f"Erasure receipt {receipt.id}: contact number {receipt.contact_id}, "
        f"{receipt.done_at:%Y-%m-%d %H:%M} UTC, by {who}."
    ]
    lines += [f"  {name.replace('_', ' ')}: {count}" for name, count in sorted(counts.items())]
    return "\n".join(lines)
