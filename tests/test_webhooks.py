"""Webhooks out: queued with the response, signed, posted to a real HTTP server on
loopback, retried with backoff, given up on, and managed from the command line."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from conftest import follow_up

from loyalty.db import db
from loyalty.models import WebhookDelivery, utcnow
from loyalty.outreach.webhooks import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    add_webhook,
    deliver_due,
    sign,
    verify,
)
from loyalty.survey.responses import save_response


class Receiver:
    """An HTTP server on loopback that records each POST and answers with the next status
    in ``statuses``, or the next ``(status, body)`` in ``answers`` (200 "ok" when both run
    out)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.answers: list[tuple[int, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if receiver.answers:
                    status, answer = receiver.answers.pop(0)
                else:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    answer = b"ok"
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/loyalty"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def webhook(app, receiver):
    hook = add_webhook(receiver.url)
    db.session.commit()
    return hook


def answer(app, invite, complete: bool = True, **values):
    invitation, _ = invite()
    survey = app.extensions["loyalty.surveys"]["post-sale"]
    response = save_response(invitation, survey, {"nps": 3, **values}, complete=complete)
    db.session.commit()
    follow_up()  # queues the deliveries, as the worker does after the customer's reply
    return response


def deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def test_a_new_response_is_posted_signed(app, invite, webhook, receiver):
    response = answer(app, invite, reason="Late <again>")
    (queued,) = deliveries()
    assert queued.status == "pending" and queued.event == "response.created"
    assert deliver_due().delivered == 1
    ((headers, body),) = receiver.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["Loyalty-Event"] == "response.created"
    assert headers["Loyalty-Delivery"] == str(queued.id)
    assert verify(webhook.secret, headers["Loyalty-Signature"], body)
    payload = json.loads(body)
    assert payload["event"] == "response.created"
    data = payload["data"]
    assert (data["id"], data["nps"], data["complete"]) == (response.id, 3, True)
    assert data["account"]["name"] == "Acme A/S" and data["contact"]["email"].endswith(".com")
    assert data["answers"][0]["text"] == "Late <again>"
    assert deliveries()[0].status == "delivered"
    assert deliver_due().delivered == 0  # once


def test_a_changed_answer_is_not_a_new_response(app, invite, webhook):
    response = answer(app, invite, complete=False)
    survey = app.extensions["loyalty.surveys"]["post-sale"]
    save_response(response.invitation, survey, {"nps": 9}, complete=True)
    db.session.commit()
    assert len(deliveries()) == 1


def test_nothing_is_queued_for_an_answer_rolled_back(app, invite, webhook):
    invitation, _ = invite()
    survey = app.extensions["loyalty.surveys"]["post-sale"]
    save_response(invitation, survey, {"nps": 3}, complete=True)
    db.session.rollback()
    assert deliveries() == []


def test_failures_are_retried_with_backoff_then_given_up(app, invite, webhook, receiver):
    answer(app, invite)
    receiver.statuses = [500] * MAX_ATTEMPTS
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS):
        result = deliver_due(now=now)
        assert result.retrying == 1
        (delivery,) = deliveries()
        assert delivery.attempts == attempt and delivery.last_status_code == 500
        assert delivery.next_attempt_at == now + RETRY_DELAYS[attempt - 1]
        assert deliver_due(now=delivery.next_attempt_at - dt.timedelta(seconds=1)).retrying == 0
        now = delivery.next_attempt_at
    assert deliver_due(now=now).failed == 1
    (delivery,) = deliveries()
    assert delivery.status == "failed" and "HTTP 500" in delivery.last_error
    assert len(receiver.requests) == MAX_ATTEMPTS
    assert deliver_due(now=now + dt.timedelta(days=1)).failed == 0


@pytest.mark.parametrize("status", [302, 404, 410])
def test_only_2xx_counts_as_delivered(app, invite, webhook, receiver, status):
    answer(app, invite)
    receiver.statuses = [status]
    assert deliver_due().retrying == 1
    assert deliveries()[0].last_status_code == status
    assert len(receiver.requests) == 1  # a redirect is not followed


def test_an_unreachable_receiver_is_recorded_and_retried(app, invite, receiver):
    add_webhook("http://127.0.0.1:9/nothing-listens-here")
    db.session.commit()
    answer(app, invite)
    assert deliver_due().retrying == 1
    (delivery,) = deliveries()
    assert delivery.last_status_code is None and "refused" in delivery.last_error.lower()


def test_deliveries_go_out_with_the_dispatcher_pass(app, invite, webhook, receiver):
    from loyalty.outreach.dispatch import send_due

    answer(app, invite)
    result = send_due()
    assert result.webhooks_delivered == 1 and len(receiver.requests) == 1


def test_a_long_pass_keeps_its_lease_from_a_second_dispatcher_starting_meanwhile(
    app, invite, webhook, receiver
):
    """Dispatcher A's pass began 20 minutes ago (many invitations went first) and has just
    claimed a delivery; dispatcher B starts a pass at that moment. The lease runs from when
    the delivery was claimed, not from when A's pass began (it would have run out already),
    so B does not post it too: the receiver gets it once."""
    answer(app, invite)
    db.session.execute(sa.update(WebhookDelivery).values(next_attempt_at=utcnow() - HALF_HOUR))
    db.session.commit()
    a_claimed, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pause_a(_conn, _cursor, statement: str, *_args) -> None:
        loading = statement.lstrip().startswith("SELECT") and "webhook_deliveries.id =" in statement
        if threading.current_thread().name == "dispatcher-a" and loading and not a_claimed.is_set():
            a_claimed.set()
            b_done.wait(timeout=30)

    def dispatcher_a() -> None:
        try:
            with app.app_context():
                deliver_due(now=utcnow() - dt.timedelta(minutes=20))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    sa.event.listen(db.engine, "before_cursor_execute", pause_a)
    a = threading.Thread(target=dispatcher_a, name="dispatcher-a")
    try:
        a.start()
        assert a_claimed.wait(timeout=30), "A never claimed the delivery"
        b = deliver_due()  # B, on another machine, now
        b_done.set()
        a.join(timeout=30)
    finally:
        b_done.set()
        sa.event.remove(db.engine, "before_cursor_execute", pause_a)

    assert not errors, errors
    assert b.delivered == 0
    assert len(receiver.requests) == 1
    assert [d.status for d in deliveries()] == ["delivered"]


HALF_HOUR = dt.timedelta(minutes=30)


def test_a_removed_webhook_gets_nothing_more(app, invite, webhook, receiver, runner):
    answer(app, invite)
    assert runner.invoke(args=["webhook", "remove", str(webhook.id)]).exit_code == 0
    assert deliver_due().failed == 1
    assert receiver.requests == []
    answer(app, invite)
    assert len(deliveries()) == 1  # nothing queued for it any more


def test_signatures_fail_for_another_body_secret_or_an_old_time():
    body, now = b'{"a": 1}', int(time.time())
    header = sign("whsec_1", now, body)
    assert verify("whsec_1", header, body)
    assert not verify("whsec_1", header, b'{"a": 2}')
    assert not verify("whsec_2", header, body)
    assert not verify("whsec_1", sign("whsec_1", now - 600, body), body)
    assert not verify("whsec_1", "garbage", body)


def test_webhooks_from_the_command_line(runner, receiver):
    added = runner.invoke(args=["webhook", "add", receiver.url])
    assert added.exit_code == 0, added.output
    assert "Signing secret (shown once): whsec_" in added.output
    listed = runner.invoke(args=["webhook", "list"])
    assert receiver.url in listed.output and "0 pending" in listed.output
    for bad in ("ftp://example.com/x", "not a url", "http:///path"):
        refused = runner.invoke(args=["webhook", "add", bad])
        assert refused.exit_code == 2 and "url:" in refused.output
    assert runner.invoke(args=["webhook", "remove", "999"]).exit_code == 2


def test_each_answer_in_the_payload_carries_its_themes(app, invite):
    from loyalty.outreach.webhooks import response_payload

    response = answer(app, invite, reason="Great product, but the invoice was wrong again")
    (reason,) = [a for a in response_payload(response)["answers"] if a["question"] == "reason"]
    themes = {th["id"]: th for th in reason["themes"]}
    assert set(themes) == {"quality", "billing"}
    assert themes["billing"]["sentiment"] == "negative" and themes["billing"]["polarity"] < 0
    assert themes["quality"]["sentiment"] == "positive"
    assert response_payload(answer(app, invite, reason="Thanks"))["answers"][0]["themes"] == []
