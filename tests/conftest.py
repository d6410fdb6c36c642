"""Shared fixtures: a migrated database per test (SQLite by default, PostgreSQL when
``LOYALTY_TEST_DATABASE_URL`` is set), the app, its client and runner, a signed-in staff
helper, invitations, and a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import socket
import threading
import typing as t
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from loyalty import create_app
from loyalty.db import db

PG_URL = os.environ.get("LOYALTY_TEST_DATABASE_URL")
BASE_URL = "http://survey.test"


def _config(tmp: Path, database_url: str) -> dict[str, t.Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": tmp,
        "MAIL_URL": f"outbox:{tmp / 'outbox'}",
        "BASE_URL": BASE_URL,
        # Scheduled reports are due in every test's "now"; tests/test_schedule.py sets them.
        "REPORT_SCHEDULE": [],
        # Rate limits would trip tests that sign in or post often; tests/test_ratelimits.py
        # switches them on.
        "RATELIMIT_ENABLED": False,
        # No background thread writes to a test's database: a test does an answer's
        # follow-ups (flag, case, webhooks) with follow_up() where it needs them, as `flask
        # work` would; tests/test_follow_ups.py tests the app's own thread.
        "FOLLOW_UPS_IN_APP": False,
    }


def _migrate(database_url: str, tmp: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(_config(tmp, database_url))
    with app.app_context():
        if PG_URL:
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run the migrations once per session; tests start from a copy of the result."""
    tmp = tmp_path_factory.mktemp("template")
    if PG_URL:
        _migrate(PG_URL, tmp)
        return PG_URL
    path = tmp / "template.db"
    _migrate(f"sqlite:///{path}", tmp)
    return str(path)


@pytest.fixture
def database_url(migrated_template: str, tmp_path: Path) -> t.Iterator[str]:
    if PG_URL:
        yield PG_URL
        engine = sa.create_engine(PG_URL)
        with engine.begin() as conn:
            tables = conn.scalars(
                sa.text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename != 'alembic_version'"
                )
            ).all()
            if tables:
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        path = tmp_path / "loyalty.db"
        shutil.copy(migrated_template, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def app(database_url: str, tmp_path: Path):
    from loyalty.triage.notifications import wait_for_background_emails

    app = create_app(_config(tmp_path, database_url))
    with app.app_context():
        yield app
        wait_for_background_emails()  # none may write to the next test's database
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def follow_up() -> int:
    """Do the follow-ups (flag, case, webhook deliveries, rollups) of the answers saved so
    far, as ``flask work`` does seconds after the customer's reply; how many were done."""
    from loyalty.survey.follow_ups import process_pending

    return process_pending()


def csrf_from(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


class StaffAuth:
    """Creates staff users and signs the test client in as one of them."""

    def __init__(self, client) -> None:
        self.client = client

    def login(self, role: str = "admin", email: str | None = None) -> t.Any:
        from loyalty.auth import create_user
        from loyalty.models import User

        email = email or f"{role}@example.com"
        if db.session.scalar(sa.select(User).where(User.email == email)) is None:
            create_user(email, role, "correct horse battery")
            db.session.commit()
        token = csrf_from(self.client.get("/login").get_data(as_text=True))
        return self.client.post(
            "/login",
            data={"email": email, "password": "correct horse battery", "csrf_token": token},
        )


@pytest.fixture
def auth(client) -> StaffAuth:
    return StaffAuth(client)


@pytest.fixture
def invite(app):
    """Make an invitation (and its account and contact); returns it with its link token."""
    from loyalty.accounts.services import Invitee, upsert_contact
    from loyalty.outreach.invitations import create_invitation, token_for

    counter = iter(range(1, 10_000))

    def make(language: str = "en", segment: str = "b2b", **fields: t.Any):
        n = next(counter)
        invitee = Invitee(
            email=fields.pop("email", f"contact{n}@example.com"),
            name=fields.pop("name", f"Contact {n}"),
            account=fields.pop("account", "Acme A/S"),
            segment=segment,
            language=language,
        )
        invitation = create_invitation(upsert_contact(invitee), "post-sale", **fields)
        db.session.commit()
        return invitation, token_for(invitation)

    return make


class Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.peers: list[tuple[str, int]] = []  # the connection each message came on
        self.received = threading.Event()
        self.refuse: str | None = None
        self.refuse_to: set[str] = set()  # addresses whose mail is refused (550)
        self.hold: threading.Event | None = None  # a slow server: answers once this is set

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        if self.hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait, 30)
        if self.refuse:
            return self.refuse
        if self.refuse_to & set(envelope.rcpt_tos):
            return "550 mailbox unavailable"
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.peers.append(session.peer)  # one (host, port) per connection
        self.received.set()
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback; ``.messages`` holds what it received, ``.url`` its
    address for ``MAIL_URL``; set ``.refuse = "550 ..."`` to make it refuse mail (or
    ``.refuse_to`` to the addresses it refuses), and
    ``.hold = threading.Event()`` to make it wait for that event before answering."""
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    collector.url = f"smtp://127.0.0.1:{controller.port}"
    yield collector
    controller.stop()


@pytest.fixture
def stored_answer(app, invite):
    """Store an answer from a new contact of ``account`` as the survey does, ``days_ago``;
    returns the account."""
    from loyalty.models import utcnow
    from loyalty.specs import surveys
    from loyalty.survey.responses import save_response

    survey = surveys(app)["post-sale"]

    def make(
        account: str = "Acme A/S",
        *,
        days_ago: float = 1,
        nps: int = 9,
        segment: str = "b2c",  # in B2B only a decision maker's churn cue is a warning
        **values,
    ):
        at = utcnow() - dt.timedelta(days=days_ago)
        invitation, _ = invite(account=account, segment=segment, due_at=at - dt.timedelta(days=1))
        invitation.status, invitation.sent_at = "sent", at - dt.timedelta(days=1)
        fields = {"nps": nps, "csat": values.pop("csat", 4), "ces": 5, **values}
        save_response(invitation, survey, fields, complete=True, now=at)
        db.session.commit()
        follow_up()
        return invitation.contact.account

    return make
