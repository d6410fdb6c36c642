"""Truly concurrent requests against the served app: the loser of a race gets the same
success as the winner, and nothing is stored twice.

The app is served by Werkzeug's threaded server on loopback (as ``tests/browser`` does), so
every request has its own thread, app context, database session and connection; the clients
wait at a barrier and then send at once. SQLite by default, PostgreSQL when
``LOYALTY_TEST_DATABASE_URL`` is set.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import typing as t
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from conftest import csrf_from
from werkzeug.serving import make_server

from loyalty.db import db
from loyalty.models import Account, Contact, Event, Response

if t.TYPE_CHECKING:
    from flask import Flask


class Served:
    """The app on a loopback port; :meth:`request` answers (status, headers, body)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> tuple[int, http.client.HTTPMessage, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            reply = conn.getresponse()
            return reply.status, reply.headers, reply.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def all_at_once(self, n: int, send: t.Callable[[int], tuple[int, t.Any, str]]) -> list:
        """``send(i)`` from ``n`` threads released together; every thread's answer."""
        barrier = threading.Barrier(n)
        replies: list = [None] * n

        def client(i: int) -> None:
            barrier.wait(timeout=60)
            try:
                replies[i] = send(i)
            except Exception as exc:  # a dropped connection is a failure too
                replies[i] = (None, None, repr(exc))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
        return replies


@pytest.fixture
def served(app: Flask) -> t.Iterator[Served]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="served-app", daemon=True)
    thread.start()
    try:
        yield Served(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _no_cookie(headers: http.client.HTTPMessage) -> None:
    """The survey page sets no cookie: its form's token is bound to the link (issue 13)."""
    assert headers.get_all("Set-Cookie") is None


def test_fifty_first_submits_of_one_link_at_once_all_succeed_and_store_one_answer(served, invite):
    """Each request finds no response yet and inserts one; all but one insert fail on the
    unique invitation, and those must be saved as edits of the winner's answer, not 500."""
    invitation, token = invite(language="en")
    status, headers, page = served.request("GET", f"/s/{token}")
    assert status == 200
    form = {
        "csrf_token": csrf_from(page),
        "nps": "9",
        "csat": "5",
        "ces": "6",
        "reason": "Fast delivery",
        "improve": "",
    }
    body = urlencode(form).encode()
    _no_cookie(headers)
    send_headers = {"Content-Type": "application/x-www-form-urlencoded"}

    replies = served.all_at_once(
        50, lambda _: served.request("POST", f"/s/{token}", body, send_headers)
    )

    statuses = [status for status, _, _ in replies]
    assert statuses == [303] * 50, [r for r in replies if r[0] != 303][:3]
    assert all(h["Location"].endswith(f"/s/{token}/thanks") for _, h, _ in replies)
    db.session.expire_all()
    (response,) = db.session.scalars(sa.select(Response)).all()
    assert response.invitation_id == invitation.id
    assert (response.nps, response.csat, response.ces, response.complete) == (9, 5, 6, True)
    assert [a.text for a in response.answers] == ["Fast delivery"]


def test_partial_saves_beside_submits_of_one_link_at_once_keep_the_complete_answer(served, invite):
    """The page's script saves the tapped score while the customer presses the button: each
    kind may lose the race to the other, and the complete answer is what stays."""
    _, token = invite(language="en")
    status, headers, page = served.request("GET", f"/s/{token}?nps=3")
    assert status == 200
    csrf = csrf_from(page)
    _no_cookie(headers)
    send_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    complete = urlencode({"csrf_token": csrf, "nps": "9", "csat": "5", "ces": "6"}).encode()
    partial = urlencode({"csrf_token": csrf, "nps": "3"}).encode()

    def send(i: int) -> tuple[int, t.Any, str]:
        if i % 2:
            return served.request("POST", f"/s/{token}/partial", partial, send_headers)
        return served.request("POST", f"/s/{token}", complete, send_headers)

    replies = served.all_at_once(40, send)

    assert sorted(status for status, _, _ in replies) == [204] * 20 + [303] * 20, [
        r for r in replies if r[0] not in (204, 303)
    ][:3]
    db.session.expire_all()
    (response,) = db.session.scalars(sa.select(Response)).all()
    assert (response.nps, response.complete) == (9, True)


#: A new event of a new contact at a new account.
EVENT = {
    "external_id": "order-1001",
    "kind": "delivery",
    "occurred_at": "2026-11-20T09:30:00+01:00",
    "account": {"external_ref": "C-17", "name": "Acme A/S", "segment": "b2b"},
    "contact": {"email": "mette@acme.example.com", "name": "Mette Hansen", "language": "da"},
}


@pytest.fixture
def wide_window(app):
    """Each look-up of an account by name waits 50 ms first: the window between the look-up
    by reference and the one by name, where a twin's commit lands about once in a dozen
    runs under gunicorn, is then one that every racing request is in."""

    def pause(_conn, _cursor, statement: str, *_args: t.Any) -> None:
        if statement.lstrip().startswith("SELECT") and "accounts.name = " in statement:
            time.sleep(0.05)

    sa.event.listen(db.engine, "before_cursor_execute", pause)
    yield
    sa.event.remove(db.engine, "before_cursor_execute", pause)


@pytest.fixture
def post_event(app, served, wide_window):
    from loyalty.api.keys import create_key

    _, key = create_key("tests")
    db.session.commit()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(body: dict) -> tuple[int, t.Any, str]:
        return served.request("POST", "/api/v1/events", json.dumps(body).encode(), headers)

    return post


def test_identical_new_events_posted_at_once_are_one_event_and_idempotent_200s(served, post_event):
    """The same new event, posted by a retrying client, at once: one 201, the rest 200 with
    the same ids; never a 422 saying the account's name belongs to "another account" (a
    twin created the account between the look-ups by reference and by name), never a 500."""
    replies = served.all_at_once(20, lambda _: post_event(EVENT))

    statuses = sorted(status for status, _, _ in replies)
    assert statuses == [200] * 19 + [201], [r[2] for r in replies if r[0] not in (200, 201)][:3]
    bodies = [json.loads(body) for _, _, body in replies]
    assert len({b["event_id"] for b in bodies}) == 1
    assert len({tuple(i["id"] for i in b["invitations"]) for b in bodies}) == 1
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 1


def test_different_events_of_one_new_account_posted_at_once_all_land_on_it(served, post_event):
    """Orders of several people at a new customer, told at once: one account, one contact
    each, every event stored."""

    def one(i: int) -> tuple[int, t.Any, str]:
        contact = {"email": f"buyer{i}@acme.example.com", "name": f"Buyer {i}", "language": "da"}
        return post_event({**EVENT, "external_id": f"order-{i}", "contact": contact})

    replies = served.all_at_once(12, one)

    assert [status for status, _, _ in replies] == [201] * 12, [
        r[2] for r in replies if r[0] != 201
    ][:3]
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 12
    assert db.session.scalars(sa.select(Account.external_ref)).all() == ["C-17"]
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 12
