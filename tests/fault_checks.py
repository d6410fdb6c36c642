"""What a fault run (``tests/faults.py``) is checked against: the mail server's counts,
and the database against what the clients were told."""

from __future__ import annotations

import queue
import re
import socket
import threading
import typing as t
from email import message_from_bytes, policy

if t.TYPE_CHECKING:
    from faults import Record

TOKEN_IN_MAIL = re.compile(r"/s/([A-Za-z0-9_-]{43})")

#: counts a run must end with at zero (and "integrity" at "ok")
MUST_BE_ZERO = (
    "lost",
    "duplicated",
    "sent_twice",
    "server_errors_outside_faults",
    "unscored_comments",
    "sent_not_received",
    "recipients_mailed_twice",
    "unexpected_replies",
)


def nothing_lost(result: t.Mapping[str, t.Any]) -> bool:
    """Every invariant held (the test's assertion; the bench's exit status)."""
    return not any(result[name] for name in MUST_BE_ZERO) and result["integrity"] == "ok"


# --- The mail server -----------------------------------------------------------------------


class MailSink:
    """An SMTP server on loopback counting the messages of each survey link; each new link
    goes to ``links`` (the customer got the email and may now answer it)."""

    def __init__(self, links: queue.Queue[str]) -> None:
        from aiosmtpd.controller import Controller

        self.links, self.lock = links, threading.Lock()
        self.per_token: dict[str, int] = {}
        self.per_recipient: dict[str, int] = {}
        self.messages = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=_free_port())
        self.url = f"smtp://127.0.0.1:{self.controller.port}"

    async def handle_DATA(self, server: t.Any, session: t.Any, envelope: t.Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        tokens: set[str] = set()
        for part in message.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                tokens.update(TOKEN_IN_MAIL.findall(part.get_content()))
        with self.lock:
            self.messages += 1
            for recipient in envelope.rcpt_tos:
                self.per_recipient[recipient] = self.per_recipient.get(recipient, 0) + 1
            for token in tokens:
                self.per_token[token] = self.per_token.get(token, 0) + 1
                if self.per_token[token] == 1:
                    self.links.put(token)
        return "250 Message accepted for delivery"

    def __enter__(self) -> MailSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The checks ----------------------------------------------------------------------------


def _stored(response: t.Any) -> dict[str, t.Any]:
    texts = {a.question: a.text for a in response.answers}
    return {"nps": response.nps, "csat": response.csat, "ces": response.ces,
            "reason": texts.get("reason") or "", "improve": texts.get("improve") or ""}  # fmt: skip


def check(app: t.Any, record: Record, sink: MailSink) -> dict[str, t.Any]:
    """The database against what the clients were told and what the mail server got."""
    import sqlalchemy as sa
    from sqlalchemy.orm import selectinload

    from loyalty.db import db
    from loyalty.models import Answer, Event, Invitation, Response
    from loyalty.outreach.invitations import hash_token, token_for

    with app.app_context():
        tokens = sorted(set(record.acked) | set(record.unanswered))
        found: dict[str, Invitation] = {}
        for start in range(0, len(tokens), 500):
            hashes = {hash_token(token): token for token in tokens[start : start + 500]}
            query = (
                sa.select(Invitation)
                .where(Invitation.token_hash.in_(hashes))
                .options(selectinload(Invitation.response).selectinload(Response.answers))
            )
            for invitation in db.session.scalars(query):
                found[hashes[invitation.token_hash]] = invitation
        lost = wrong = 0
        for token in tokens:
            response = found[token].response if token in found else None
            # sent after the last 303 and never answered: either may be what is stored
            candidates = record.unanswered.get(token, [])
            if token in record.acked:
                candidates = [record.acked[token], *candidates]
                if response is None or not response.complete:
                    lost += 1
                    continue
            if response is not None and _stored(response) not in candidates:
                wrong += 1
        stored_events = set()
        events = sorted(record.events)
        for start in range(0, len(events), 500):
            chunk = events[start : start + 500]
            stored_events |= set(
                db.session.scalars(sa.select(Event.external_id).where(Event.external_id.in_(chunk)))
            )

        def twice(column: t.Any, *more: t.Any) -> int:
            groups = sa.select(column, *more).group_by(column, *more)
            grouped = groups.having(sa.func.count() > 1).subquery()
            return db.session.scalar(sa.select(sa.func.count()).select_from(grouped)) or 0

        duplicated = (
            twice(Response.invitation_id)
            + twice(Answer.response_id, Answer.question)
            + twice(Event.external_id)
        )
        unscored = db.session.scalar(
            sa.select(sa.func.count(Answer.id)).where(
                Answer.text.is_not(None), Answer.sentiment.is_(None)
            )
        )
        sent = db.session.scalars(sa.select(Invitation).where(Invitation.status == "sent"))
        not_received = sum(1 for invitation in sent if token_for(invitation) not in sink.per_token)
        by_status = dict(
            db.session.execute(
                sa.select(Invitation.status, sa.func.count()).group_by(Invitation.status)
            ).all()
        )
        integrity = _integrity(db)
        db.session.remove()
        db.engine.dispose()
    lost_events = len(record.events - stored_events)
    sent_twice = sum(1 for n in sink.per_token.values() if n > 1)
    return {
        "lost": lost + wrong + lost_events,
        "duplicated": duplicated,
        "sent_twice": sent_twice,
        "server_errors_outside_faults": len(record.server_errors),
        "lost_answers": lost,
        "wrong_answers": wrong,
        "lost_events": lost_events,
        "unscored_comments": unscored,
        "sent_not_received": not_received,
        "recipients_mailed_twice": sum(1 for n in sink.per_recipient.values() if n > 1),
        "integrity": integrity,
        "unexpected_replies": len(record.unexpected),
        "answers_acknowledged": len(record.acked),
        "submits": record.submits,
        "changes": record.changes,
        "events_acknowledged": len(record.events),
        "emails": sink.messages,
        "invitations": by_status,
        "server_errors_in_faults": record.server_errors_in_faults,
        "cut_off": record.cut_off,
        "examples": (record.server_errors + record.unexpected)[:5],
    }


def _integrity(db: t.Any) -> str:
    """SQLite's own check of every page and index, and its foreign keys; on PostgreSQL, no
    index left invalid and no row pointing at one that is gone."""
    import sqlalchemy as sa

    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            problems = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
            problems = [p for p in problems if p != "ok"]
            problems += [
                str(tuple(row)) for row in conn.exec_driver_sql("PRAGMA foreign_key_check")
            ]
            return "ok" if not problems else "; ".join(problems[:5])
        invalid = conn.scalar(sa.text("SELECT count(*) FROM pg_index WHERE NOT indisvalid"))
        orphans = conn.scalar(
            sa.text(
                "SELECT (SELECT count(*) FROM answers a LEFT JOIN responses r "
                "ON r.id = a.response_id WHERE r.id IS NULL) + (SELECT count(*) FROM "
                "responses r LEFT JOIN invitations i ON i.id = r.invitation_id "
                "WHERE r.invitation_id IS NOT NULL AND i.id IS NULL)"
            )
        )
        return (
            "ok" if not invalid and not orphans else f"{invalid} invalid indexes, {orphans} orphans"
        )
