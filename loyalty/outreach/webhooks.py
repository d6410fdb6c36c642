"""Webhooks out: signed notifications to URLs an admin registers.

A new response adds one ``webhook_deliveries`` row per subscribed webhook in its follow-up's
transaction (which removes the follow-up's own outbox row, committed with the response), so
a notification is never lost, never queued twice, nor sent for an answer that was rolled
back. The dispatcher's pass then posts due rows, retrying
with backoff until the receiver answers 2xx or the tries run out.

Each POST carries ``Loyalty-Signature: t=<unix time>,v1=<hex>``, where ``v1`` is
HMAC-SHA256 with the webhook's secret over ``"<t>.<body>"``; a receiver recomputes it
(see :func:`verify`) and refuses old timestamps, so a captured delivery cannot be replayed.
Deliveries are at least once: a receiver dedupes on the ``Loyalty-Delivery`` id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import typing as t
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from .. import checks
from ..audit import log as audit_log
from ..db import db, once_per_transaction
from ..models import WEBHOOK_DELIVERY_STATES, Response, Webhook, WebhookDelivery, utcnow
from ..survey.responses import stored_themes

if t.TYPE_CHECKING:
    from flask import Flask

EVENTS = ("response.created", "account.warning")
#: what "send a test event" posts, to one webhook whatever events it takes
TEST_EVENT = "webhook.test"
#: waits after the 1st, 2nd, ... failed try; after the last the delivery is failed
RETRY_DELAYS = tuple(dt.timedelta(minutes=m) for m in (1, 5, 30, 120, 720))  # 14.6 hours
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
#: a claimed delivery whose dispatcher died is tried again after this long
LEASE = dt.timedelta(minutes=5)


class WebhookError(ValueError):
    """Bad input for a webhook; the message names the field."""


class WebhookConflict(WebhookError):
    """The webhook or delivery is in no state for this (removed, not failed)."""


def add_webhook(url: str, events: t.Iterable[str] = EVENTS) -> Webhook:
    """Register a URL; its signing secret is made here and shown to the admin once."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("url: must be an http:// or https:// URL with a host")
    if len(url) > 2000 or " " in url or not checks.is_one_line(url):
        raise WebhookError("url: at most 2000 characters, no spaces or control characters")
    events = list(dict.fromkeys(events))
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise WebhookError(f"events: must be some of {', '.join(EVENTS)}")
    webhook = Webhook(url=url, secret="whsec_" + secrets.token_urlsafe(32), events=",".join(events))
    db.session.add(webhook)
    return webhook


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300, now=None) -> bool:
    """What a receiver does: check the signature and that the timestamp is recent."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def response_payload(response: Response) -> dict[str, t.Any]:
    """What a receiver learns about a new response: scores, comments, who and when."""
    account, contact = response.account, response.contact
    return {
        "id": response.id,
        "survey": response.survey,
        "survey_version": response.survey_version,
        "invitation_id": response.invitation_id,
        "complete": response.complete,
        "submitted_at": response.submitted_at.isoformat().replace("+00:00", "Z"),
        "language": response.language,
        "nps": response.nps,
        "csat": response.csat,
        "ces": response.ces,
        "answers": [
            {
                "question": a.question,
                "text": a.text,
                "number": a.number,
                "sentiment": a.sentiment,
                # what the comment is about, each theme with its own sentiment (issue 12)
                "themes": [
                    {
                        "id": th["id"],
                        "sentiment": th.get("sentiment"),
                        "polarity": th.get("polarity"),
                    }
                    for th in stored_themes(a)
                ],
            }
            for a in response.answers
        ],
        "account": {
            "id": account.id,
            "external_ref": account.external_ref,
            "name": account.name,
            "segment": account.segment,
        },
        "contact": {"id": contact.id, "email": contact.email, "name": contact.name},
    }


def enqueue(event: str, data: dict[str, t.Any], *, now: dt.datetime | None = None) -> int:
    """Add a delivery for every active webhook that wants ``event``; the caller commits."""
    now = now or utcnow()
    webhooks = once_per_transaction("active_webhooks", _active_webhooks)
    count = 0
    for webhook_id, events in webhooks:
        if event not in events.split(","):
            continue
        payload = json.dumps({"event": event, "created_at": _iso(now), "data": data})
        db.session.add(
            WebhookDelivery(
                webhook_id=webhook_id, event=event, payload=payload, next_attempt_at=now
            )
        )
        count += 1
    return count


def _active_webhooks() -> list[tuple[int, str]]:
    # Read once per transaction (a follow-up batch); only two columns, and without flushing
    # what is pending just to learn that (usually) no webhook is registered.
    with db.session.no_autoflush:
        query = sa.select(Webhook.id, Webhook.events).where(Webhook.active.is_(True))
        return [(row.id, row.events) for row in db.session.execute(query)]


def queue_response_created(sender: Flask, *, response: Response, created: bool, **_: t.Any) -> None:
    """On ``response_committed``: a new response is announced (as it is when its follow-up
    runs), in the transaction that removes the follow-up, so it is announced once."""
    if created:
        enqueue("response.created", response_payload(response))


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass
class DeliveryResult:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _claim_next(now: dt.datetime) -> int | None:
    """Take the next due delivery for this process (its lease keeps others off it)."""
    due = (
        sa.select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == due, WebhookDelivery.status == "pending")
        # the lease runs from the claim, not from the pass's start: a long pass's lease
        # would have run out already, and a second dispatcher would post it too
        .values(attempts=WebhookDelivery.attempts + 1, next_attempt_at=max(now, utcnow()) + LEASE)
        .returning(WebhookDelivery.id)
    ).scalar()
    db.session.commit()
    return claimed


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST without following redirects; the status and the start of the answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as reply:
            return reply.status, _storable(reply.read(500).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return exc.code, _storable(exc.read(500).decode("utf-8", "replace"))


def _storable(text: str) -> str:
    """What a receiver said, as text any database stores (PostgreSQL refuses NUL)."""
    return text.replace("\x00", "\ufffd")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None  # a 3xx is an answer like any other: not 2xx, so tried again later


def deliver_due(
    *, now: dt.datetime | None = None, stop: t.Callable[[], bool] = lambda: False
) -> DeliveryResult:
    """Post every delivery that is due; each try is recorded, failures wait and retry."""
    now = now or utcnow()
    timeout = float(current_app.config["WEBHOOK_TIMEOUT"])
    result = DeliveryResult()
    while not stop() and (delivery_id := _claim_next(now)) is not None:
        _attempt(_claimed(delivery_id), now, timeout, result)
    return result


def _claimed(delivery_id: int) -> WebhookDelivery:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:  # cannot happen: claimed by id just now, and never deleted
        raise LookupError(f"webhook delivery {delivery_id} is gone right after its claim")
    return delivery


def _attempt(
    delivery: WebhookDelivery,
    now: dt.datetime,
    timeout: float,
    result: DeliveryResult,
    *,
    once: bool = False,
) -> None:
    """Post one claimed delivery and record the try (committed); ``once``: a failure is
    final (a test event, a retry by hand), else it waits and is tried again."""
    webhook = delivery.webhook
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Loyalty-Webhooks/1",
        "Loyalty-Event": delivery.event,
        "Loyalty-Delivery": str(delivery.id),
        "Loyalty-Signature": sign(webhook.secret, int(time.time()), body),
    }
    status: int | None = None
    answer: str | None = None
    error: str | None = "the webhook was removed"
    if webhook.active:
        try:
            status, answer = post(webhook.url, body, headers, timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}: {answer}"
        except (OSError, ValueError) as exc:  # refused, timed out, bad URL
            error = _storable(f"{type(exc).__name__}: {exc}")
    delivery.last_status_code, delivery.last_answer = status, answer
    if error is None:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
        result.delivered += 1
    elif once or delivery.attempts >= MAX_ATTEMPTS or not webhook.active:
        delivery.status, delivery.last_error = "failed", error[:2000]
        result.failed += 1
    else:
        delivery.next_attempt_at = now + RETRY_DELAYS[delivery.attempts - 1]
        delivery.last_error = error[:2000]
        result.retrying += 1
    db.session.commit()


# --- Managing them -----------------------------------------------------------------------


def webhooks_with_counts() -> list[tuple[Webhook, dict[str, int]]]:
    """Every webhook with how many of its deliveries are pending, delivered and failed."""
    counts: dict[int, dict[str, int]] = {}
    for webhook_id, status, n in db.session.execute(
        sa.select(WebhookDelivery.webhook_id, WebhookDelivery.status, sa.func.count()).group_by(
            WebhookDelivery.webhook_id, WebhookDelivery.status
        )
    ):
        counts.setdefault(webhook_id, {})[status] = n
    return [
        (w, {s: counts.get(w.id, {}).get(s, 0) for s in WEBHOOK_DELIVERY_STATES})
        for w in db.session.scalars(sa.select(Webhook).order_by(Webhook.id))
    ]


def register_webhook(url: str, events: t.Iterable[str] = EVENTS) -> Webhook:
    """Add a webhook and record who did (the caller commits, then shows the secret once).
    The audit names the host only: a receiver's URL may carry a token of its own."""
    webhook = add_webhook(url, events)
    db.session.flush()
    audit_log.record(
        "webhook.add",
        target=f"webhook:{webhook.id}",
        detail={"host": (urlsplit(url).hostname or "")[:200], "events": webhook.events},
    )
    return webhook


def remove_webhook(webhook_id: int) -> Webhook | None:
    """Switch a webhook off: nothing more is queued for it; pending deliveries fail. The
    change is recorded (the caller commits); switching off one that is off changes nothing."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is not None and webhook.active:
        webhook.active = False
        audit_log.record("webhook.remove", target=f"webhook:{webhook.id}")
    return webhook


def send_test(webhook_id: int, *, now: dt.datetime | None = None) -> WebhookDelivery | None:
    """Post a test event to one webhook now, signed and posted as every delivery is, and
    return it (None: no such webhook). It is tried once: the admin sees the answer at once
    and may retry it by hand, rather than the receiver getting it for hours."""
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        return None
    if not webhook.active:
        raise WebhookConflict(f"webhook {webhook_id} is removed: it is sent nothing")
    now = now or utcnow()
    data = {"webhook_id": webhook.id, "message": "A test event: nothing happened."}
    delivery = WebhookDelivery(
        webhook=webhook,
        event=TEST_EVENT,
        payload=json.dumps({"event": TEST_EVENT, "created_at": _iso(now), "data": data}),
        # queued as claimed by this process, as _claim_next would: a dispatcher leaves it
        # alone unless this process dies before its post, and then sends it after the lease
        attempts=1,
        next_attempt_at=now + LEASE,
    )
    db.session.add(delivery)
    db.session.flush()
    audit_log.record(
        "webhook.test", target=f"webhook:{webhook.id}", detail={"delivery": delivery.id}
    )
    db.session.commit()
    _attempt(
        delivery, now, float(current_app.config["WEBHOOK_TIMEOUT"]), DeliveryResult(), once=True
    )
    return delivery


def retry_delivery(delivery_id: int, *, now: dt.datetime | None = None) -> WebhookDelivery | None:
    """Try a failed delivery once more, now (None: no such delivery). Taking it is one
    conditional update, so two admins pressing retry together post it once."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return None
    if not delivery.webhook.active:
        raise WebhookConflict(f"webhook {delivery.webhook_id} is removed: it is sent nothing")
    now = now or utcnow()
    taken = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "failed")
        .values(
            status="pending", attempts=WebhookDelivery.attempts + 1, next_attempt_at=now + LEASE
        )
        .returning(WebhookDelivery.id)
        .execution_options(synchronize_session=False)
    ).scalar()
    if not taken:
        status = delivery.status
        db.session.rollback()
        raise WebhookConflict(f"delivery {delivery_id} is {status}: only a failed one is retried")
    audit_log.record(
        "webhook.retry", target=f"webhook:{delivery.webhook_id}", detail={"delivery": delivery_id}
    )
    db.session.commit()  # expires the delivery: it is read again as taken
    _attempt(
        delivery, now, float(current_app.config["WEBHOOK_TIMEOUT"]), DeliveryResult(), once=True
    )
    return delivery


def recent_deliveries(webhook_id: int, limit: int = 10) -> list[WebhookDelivery]:
    """A webhook's latest deliveries, newest first, for the admin page."""
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )
