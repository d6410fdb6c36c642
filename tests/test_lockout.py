"""Failed sign-ins slow down and then lock, per typed address and per client, counted in
the database (issue 14); an unknown address behaves exactly like a known one."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from conftest import _config, csrf_from

from loyalty.db import db

PASSWORD = "correct horse battery"


@pytest.fixture
def staff(app):
    from loyalty.auth import create_user

    app.config.update(SIGN_IN_SLOW_AFTER=100, SIGN_IN_LOCK_FAILURES=3)
    create_user("lead@example.com", "support", PASSWORD)
    db.session.commit()


def sign_in(client, email: str, password: str, ip: str = "127.0.0.1"):
    token = csrf_from(client.get("/login").text)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": ip},
    )


def _page(reply) -> str:
    return re.sub(r'value="[^"]+"', "", reply.text)  # CSRF tokens differ, nothing else may


def test_an_address_is_locked_after_repeated_failures(client, staff):
    for _ in range(3):
        assert sign_in(client, "lead@example.com", "guess").status_code == 401
    locked = sign_in(client, "lead@example.com", PASSWORD)
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert "Too many failed sign-ins. Try again in 15 minutes." in locked.text
    with client.session_transaction() as session:
        assert "_user_id" not in session  # the right password did not sign in
    # Another address from the same client is not locked by it.
    assert sign_in(client, "other@example.com", "guess").status_code == 401


def test_an_unknown_address_answers_and_locks_like_a_known_one(client, staff):
    known = [sign_in(client, "lead@example.com", "guess") for _ in range(4)]
    unknown = [sign_in(client, "nobody@example.com", "guess") for _ in range(4)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 3 + [429]
    for a, b in zip(known, unknown, strict=True):
        assert _page(a) == _page(b)
        if a.status_code == 429:  # the same wait, give or take the seconds between them
            assert abs(int(a.headers["Retry-After"]) - int(b.headers["Retry-After"])) <= 2


def test_the_lock_ends_when_the_failures_leave_the_window(client, staff):
    for _ in range(3):
        sign_in(client, "lead@example.com", "guess")
    assert sign_in(client, "lead@example.com", PASSWORD).status_code == 429
    with db.engine.begin() as conn:  # 16 minutes later
        conn.execute(
            sa.text("UPDATE sign_in_failures SET at = :at"),
            {"at": "2020-01-01 00:00:00"},
        )
    assert sign_in(client, "lead@example.com", PASSWORD).status_code == 302


def test_a_success_starts_the_count_again(client, staff):
    for _ in range(2):
        sign_in(client, "lead@example.com", "guess")
    assert sign_in(client, "lead@example.com", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/triage").text)})
    for _ in range(2):
        assert sign_in(client, "lead@example.com", "guess").status_code == 401
    assert sign_in(client, "lead@example.com", PASSWORD).status_code == 302


def test_a_client_trying_many_addresses_is_locked_out(app, client, staff):
    app.config.update(SIGN_IN_LOCK_CLIENT_FAILURES=4)
    for n in range(4):
        assert sign_in(client, f"guess{n}@example.com", "x", ip="203.0.113.9").status_code == 401
    assert sign_in(client, "lead@example.com", PASSWORD, ip="203.0.113.9").status_code == 429
    assert sign_in(client, "lead@example.com", PASSWORD, ip="198.51.100.1").status_code == 302


def test_every_app_server_sees_the_same_count(app, client, staff, tmp_path, database_url):
    """Failures counted by one server lock the address on another (one database)."""
    from loyalty import create_app

    for _ in range(3):
        sign_in(client, "lead@example.com", "guess")
    other = create_app({**_config(tmp_path, database_url), "SIGN_IN_LOCK_FAILURES": 3})
    try:
        assert sign_in(other.test_client(), "lead@example.com", PASSWORD).status_code == 429
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def test_failures_past_the_first_few_slow_down(app, client, staff):
    app.config.update(SIGN_IN_SLOW_AFTER=1, SIGN_IN_LOCK_FAILURES=10)
    started = time.monotonic()
    sign_in(client, "lead@example.com", "guess")
    first = time.monotonic() - started
    started = time.monotonic()
    sign_in(client, "lead@example.com", "guess")
    second = time.monotonic() - started
    assert second >= 0.5 and second > first


def test_guesses_made_at_the_same_moment_never_get_past_the_limit(app, staff):
    """Each attempt is counted before its password is checked, so 24 wrong guesses from 8
    clients at once get at most the limit's worth of password checks (the rest: 429)."""
    import threading

    from loyalty.models import AuditEvent

    limit = int(app.config["SIGN_IN_LOCK_FAILURES"])
    statuses: list[int] = []
    start = threading.Barrier(8)

    def guesser(n: int) -> None:
        client = app.test_client()
        start.wait()
        for _ in range(3):
            reply = sign_in(client, "lead@example.com", f"guess {n}", ip=f"10.0.0.{n}")
            statuses.append(reply.status_code)

    threads = [threading.Thread(target=guesser, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.session.rollback()
    checked = db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.action == "sign_in.failed")
    )
    # Attempts that all arrive before any is counted may all be refused (each sees the
    # others' counts): never more than the limit is checked.
    assert len(statuses) == 24 and set(statuses) <= {401, 429}
    assert statuses.count(401) == checked <= limit
    assert sign_in(app.test_client(), "lead@example.com", PASSWORD).status_code == 429
