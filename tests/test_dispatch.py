"""The dispatcher: the invitation email, sending once, skipping, retrying, reminders, and the
dispatcher as a process: killed mid-batch, two at once, the loop and its graceful stop."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from conftest import free_port

from loyalty.db import db
from loyalty.models import Invitation, utcnow
from loyalty.outreach.dispatch import MAX_ATTEMPTS, send_due


def test_invitation_email_in_the_contacts_language(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invitation, token = invite(language="da", name="Søren Ørsted")
    assert send_due().sent == 1
    (msg,) = smtp_server.messages
    assert msg["Subject"] == "Hvordan var dit køb hos Loyalty Demo A/S?"
    assert "Søren Ørsted" in str(msg["To"])
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Hej Søren Ørsted" in text and '<html lang="da">' in html
    for n in range(11):  # one button per NPS score, each opening the survey with it chosen
        assert f"http://survey.test/s/{token}?nps={n}" in html
    assert f"http://survey.test/s/{token}" in text
    assert msg["List-Unsubscribe"].startswith("<http://survey.test/u/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert invitation.status == "sent" and invitation.sent_at is not None


def test_links_use_base_url_not_the_request_host(app, client, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invite()
    with app.test_request_context(headers={"Host": "evil.example.com"}):
        send_due()
    text = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "evil.example.com" not in text and "http://survey.test/s/" in text


def test_email_link_opens_the_survey(app, client, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invite(language="en")
    send_due()
    html = smtp_server.messages[0].get_body(("html",)).get_content()
    link = re.search(r'href="http://survey.test(/s/[^"?]+\?nps=8)"', html).group(1)
    page = client.get(link)
    assert page.status_code == 200 and 'value="8"' in page.get_data(as_text=True)


def test_each_invitation_is_sent_once(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invite()
    invite()
    assert send_due().sent == 2
    assert send_due().sent == 0
    assert len(smtp_server.messages) == 2
    assert len(set(smtp_server.peers)) == 1  # one connection for the whole pass


def test_future_invitations_wait(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invite(due_at=utcnow() + dt.timedelta(days=2))
    assert send_due().sent == 0
    assert send_due(now=utcnow() + dt.timedelta(days=3)).sent == 1


def test_unsubscribed_and_bounced_contacts_are_skipped_with_reason(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    gone, _ = invite()
    gone.contact.unsubscribed_at = utcnow()
    bounced, _ = invite()
    bounced.contact.bounced_at = utcnow()
    db.session.commit()
    assert send_due().skipped == 2
    assert {gone.skip_reason, bounced.skip_reason} == {"unsubscribed", "bounced"}
    assert smtp_server.messages == []


def test_refused_mail_is_retried_then_failed_with_the_servers_answer(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    smtp_server.refuse = "451 4.3.0 Try again later"
    invitation, _ = invite()
    now = utcnow()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = send_due(now=now)
        db.session.refresh(invitation)
        assert invitation.attempts == attempt
        now = invitation.due_at
    assert result.failed == 1 and invitation.status == "failed"
    assert "Try again later" in invitation.last_error
    assert send_due(now=now + dt.timedelta(days=1)).sent == 0


def test_outbox_by_default(app, invite, tmp_path):
    invite()
    send_due()
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    statuses = db.session.scalars(sa.select(Invitation.status)).all()
    assert statuses == ["sent"]


def test_html_email_escapes_the_contacts_name(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invite(name="<b>Bold</b> & Co")
    send_due()
    html = smtp_server.messages[0].get_body(("html",)).get_content()
    assert "<b>Bold</b>" not in html and "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in html


def test_one_click_unsubscribe_works_with_the_rfc_8058_post_alone(app, invite, smtp_server):
    """A mail client POSTs exactly ``List-Unsubscribe=One-Click`` to the header's URL,
    with no cookie and no CSRF token, and the contact is unsubscribed."""
    from loyalty.models import Contact

    app.config["MAIL_URL"] = smtp_server.url
    invitation, _ = invite()
    send_due()
    url = smtp_server.messages[0]["List-Unsubscribe"].strip("<>")
    client = app.test_client(use_cookies=False)
    reply = client.post(
        url.removeprefix("http://survey.test"),
        data=b"List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert reply.status_code == 200
    db.session.expire_all()
    assert db.session.get(Contact, invitation.contact_id).unsubscribed_at is not None


def test_the_dispatch_tick_fires_after_every_pass(app):
    from loyalty.signals import dispatch_tick

    seen = []

    def receiver(sender, now, **_):
        seen.append(now)

    with dispatch_tick.connected_to(receiver, app):
        send_due()
        send_due()
    assert len(seen) == 2


# --- reminders ----------------------------------------------------------------------------

DAY = dt.timedelta(days=1)


def _sent(invite, smtp_server, **fields) -> tuple[Invitation, dt.datetime]:
    invitation, _ = invite(**fields)
    now = utcnow()
    assert send_due(now=now).sent == 1
    smtp_server.messages.clear()
    return invitation, now


def test_one_reminder_after_four_days_with_the_same_link(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invitation, sent = _sent(invite, smtp_server, language="en")
    token = invitation.token_hash  # the link is rebuilt from the nonce; its hash stays
    assert send_due(now=sent + 3.9 * DAY).reminded == 0
    assert send_due(now=sent + 4 * DAY).reminded == 1
    (reminder,) = smtp_server.messages
    assert reminder["Subject"] == "Reminder: How was your purchase from Loyalty Demo A/S?"
    text = reminder.get_body(("plain",)).get_content()
    from loyalty.outreach.invitations import survey_url

    assert survey_url(invitation) in text and "a few days ago" in text
    assert reminder["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for later in (5, 10, 29):  # never twice
        assert send_due(now=sent + later * DAY).reminded == 0
    db.session.refresh(invitation)
    assert invitation.token_hash == token and invitation.reminder_sent_at == sent + 4 * DAY
    assert len(smtp_server.messages) == 1


def test_a_danish_reminder(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    _, sent = _sent(invite, smtp_server, language="da")
    send_due(now=sent + 4 * DAY)
    assert smtp_server.messages[0]["Subject"].startswith("Påmindelse: Hvordan var dit køb")


def test_no_reminder_after_an_answer(app, client, invite, smtp_server):
    from loyalty.survey.responses import save_response

    app.config["MAIL_URL"] = smtp_server.url
    invitation, sent = _sent(invite, smtp_server)
    survey = app.extensions["loyalty.surveys"]["post-sale"]
    save_response(invitation, survey, {"nps": 7}, complete=False)  # a tapped score is enough
    db.session.commit()
    assert send_due(now=sent + 4 * DAY).reminded == 0
    assert smtp_server.messages == []
    assert invitation.reminder_sent_at is None


def test_an_answer_between_claim_and_send_still_stops_the_reminder(app, invite, smtp_server):
    from loyalty.models import Response

    app.config["MAIL_URL"] = smtp_server.url
    invitation, sent = _sent(invite, smtp_server)
    # An answer stored without the signal (as an older version would have) is caught too.
    db.session.add(
        Response(invitation=invitation, contact_id=invitation.contact_id,
                 account_id=invitation.contact.account_id, survey="post-sale",
                 survey_version=1, language="en", nps=3)
    )  # fmt: skip
    db.session.commit()
    assert invitation.reminder_due_at is not None
    assert send_due(now=sent + 4 * DAY).reminded == 0
    assert smtp_server.messages == [] and invitation.reminder_sent_at is None
    assert send_due(now=sent + 5 * DAY).reminded == 0


@pytest.mark.parametrize(
    ("setting", "value"),
    [("INVITATION_DAYS", 4), ("INVITATION_DAYS", 3), ("REMINDER_DAYS", 0)],
)
def test_no_reminder_at_or_past_expiry_or_when_turned_off(app, invite, smtp_server, setting, value):
    app.config["MAIL_URL"] = smtp_server.url
    app.extensions["loyalty.surveys"] = {  # a survey that leaves reminders to the config
        name: dataclasses.replace(s, schedule=None)
        for name, s in app.extensions["loyalty.surveys"].items()
    }
    app.config[setting] = value
    invitation, sent = _sent(invite, smtp_server)
    assert invitation.reminder_due_at is None
    assert sum(send_due(now=sent + n * DAY).reminded for n in (4, 5, 20)) == 0


def test_no_reminder_to_a_contact_who_unsubscribed(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    invitation, sent = _sent(invite, smtp_server)
    invitation.contact.unsubscribed_at = sent + DAY
    db.session.commit()
    assert send_due(now=sent + 4 * DAY).reminded == 0
    assert smtp_server.messages == []


def test_a_refused_reminder_is_retried_a_few_times_then_dropped(app, invite, smtp_server):
    from loyalty.outreach.dispatch import REMINDER_MAX_ATTEMPTS

    app.config["MAIL_URL"] = smtp_server.url
    invitation, sent = _sent(invite, smtp_server)
    smtp_server.refuse = "451 4.3.0 Try again later"
    now = sent + 4 * DAY
    for _ in range(REMINDER_MAX_ATTEMPTS):
        send_due(now=now)
        db.session.refresh(invitation)
        assert invitation.reminder_sent_at is None
        assert "reminder: " in invitation.last_error and "Try again later" in invitation.last_error
        now = invitation.reminder_due_at or now + DAY
    assert invitation.reminder_due_at is None and invitation.reminder_attempts == 3
    smtp_server.refuse = None
    assert send_due(now=now + DAY).reminded == 0
    assert invitation.status == "sent"


# --- the dispatcher as a process ----------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


class GatedSMTP:
    """A real SMTP server on loopback that can hold a message: ``hold`` names a recipient
    whose DATA is received and then not answered until ``release`` is set, or a number of
    messages that must be in flight at once before any is answered."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.hold: str | None = None
        self.together = 0
        self.in_flight = 0
        self.reached = threading.Event()
        self.release = threading.Event()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.controller.port}"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd API)
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)
        self.in_flight += 1
        try:
            if self.hold and self.hold in envelope.rcpt_tos:
                self.reached.set()
                await self._until(self.release.is_set)
            elif self.together:
                await self._until(lambda: self.in_flight >= self.together)
                self.together = 0  # once both met, everything flows
        finally:
            self.in_flight -= 1
        return "250 Message accepted for delivery"

    @staticmethod
    async def _until(condition, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def recipients(self) -> list[str]:
        return sorted(str(m["To"].addresses[0].addr_spec) for m in self.messages)

    def stop(self) -> None:
        self.release.set()
        self.controller.stop()


@pytest.fixture
def gated_smtp():
    server = GatedSMTP()
    yield server
    server.stop()


def dispatcher(database_url: str, tmp_path: Path, smtp: GatedSMTP, *args: str):
    """``flask --app loyalty dispatch`` in its own process, as cron or systemd runs it."""
    env = {
        **os.environ,
        "LOYALTY_DATABASE_URL": database_url,
        "LOYALTY_SECRET_KEY": "test-secret-key",
        "LOYALTY_MAIL_URL": smtp.url,
        "LOYALTY_INSTANCE_PATH": str(tmp_path / "dispatcher"),
        "LOYALTY_BASE_URL": "http://survey.test",
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "loyalty", "dispatch", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _statuses() -> list[str]:
    db.session.expire_all()
    return db.session.scalars(sa.select(Invitation.status).order_by(Invitation.id)).all()


def _queue(invite, count: int) -> list[Invitation]:
    """``count`` invitations due in order, a second apart."""
    now = utcnow()
    return [invite(due_at=now - dt.timedelta(seconds=count - n))[0] for n in range(count)]


def test_a_dispatcher_killed_mid_batch_never_sends_twice(
    app, invite, gated_smtp, database_url, tmp_path
):
    invitations = _queue(invite, 5)
    gated_smtp.hold = invitations[2].contact.email
    first = dispatcher(database_url, tmp_path, gated_smtp)
    assert gated_smtp.reached.wait(60), first.communicate()
    first.kill()  # SIGKILL while the third email is on the wire, its answer not yet read
    first.communicate()
    assert _statuses() == ["sent", "sent", "sending", "scheduled", "scheduled"]

    gated_smtp.hold = None
    gated_smtp.release.set()
    second = dispatcher(database_url, tmp_path, gated_smtp)
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "sent 2" in out
    # Every contact got exactly one email; the one cut off is not sent again.
    assert gated_smtp.recipients() == sorted(i.contact.email for i in invitations)
    assert _statuses() == ["sent", "sent", "sending", "sent", "sent"]

    # Once it has been `sending` for a while, it is marked failed and says why.
    result = send_due(now=utcnow() + dt.timedelta(minutes=16))
    assert (result.interrupted, result.sent) == (1, 0)
    assert _statuses()[2] == "failed"
    assert "interrupted" in db.session.get(Invitation, invitations[2].id).last_error
    assert len(gated_smtp.messages) == 5


def test_two_dispatchers_at_once_send_each_invitation_once(
    app, invite, gated_smtp, database_url, tmp_path
):
    invitations = _queue(invite, 12)
    gated_smtp.together = 2  # nothing is answered until both dispatchers have one in flight
    runs = [dispatcher(database_url, tmp_path, gated_smtp) for _ in range(2)]
    outputs = [run.communicate(timeout=90) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    sent = [int(re.search(r"sent (\d+)", out).group(1)) for out, _ in outputs]
    assert sum(sent) == 12 and min(sent) >= 1
    assert gated_smtp.recipients() == sorted(i.contact.email for i in invitations)
    assert _statuses() == ["sent"] * 12


def test_the_loop_sends_as_things_fall_due_and_stops_gracefully_on_sigterm(
    app, invite, gated_smtp, database_url, tmp_path
):
    loop = dispatcher(database_url, tmp_path, gated_smtp, "--loop", "--interval", "0.1")
    try:
        assert "dispatching every 0.1 s" in loop.stderr.readline()
        gated_smtp.hold = "late@example.com"
        later = [invite(email="late@example.com")[0], invite(email="later@example.com")[0]]
        assert gated_smtp.reached.wait(60)  # made after the loop started, and sent
        loop.send_signal(signal.SIGTERM)  # while the first email waits for its answer
        assert "SIGTERM: stopping after the current message" in loop.stderr.readline()
        gated_smtp.release.set()  # the message in hand is finished, not cut off
        out, err = loop.communicate(timeout=60)
    finally:
        loop.kill()
    assert loop.returncode == 0, err
    assert "dispatcher stopped" in err
    assert _statuses() == ["sent", "scheduled"]  # finished the one in hand, began no other
    assert gated_smtp.recipients() == [later[0].contact.email]


def test_an_email_that_cannot_be_built_fails_alone_and_says_why(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    broken, _ = invite()
    broken.survey = "retired-survey"  # its definition was removed from forms/
    fine, _ = invite()
    db.session.commit()
    result = send_due()
    assert (result.failed, result.sent) == (1, 1)
    assert broken.status == "failed" and "building the email" in broken.last_error
    assert fine.status == "sent"


def _claimed_and_cut_off(invite, *, send_began: bool) -> Invitation:
    """An invitation as a dispatcher killed after its claim leaves it: ``sending``, claimed
    now; ``send_began`` says whether it got as far as starting the SMTP transaction."""
    invitation, _ = invite(due_at=utcnow() - dt.timedelta(minutes=1))
    invitation.status, invitation.claimed_at, invitation.attempts = "sending", utcnow(), 1
    invitation.send_began_at = utcnow() if send_began else None
    db.session.commit()
    return invitation


def test_a_claim_cut_off_before_its_send_began_is_queued_again_and_sent_once(
    app, invite, smtp_server
):
    app.config["MAIL_URL"] = smtp_server.url
    invitation = _claimed_and_cut_off(invite, send_began=False)
    assert send_due().sent == 0  # still claimed: another dispatcher may be sending it
    result = send_due(now=utcnow() + dt.timedelta(minutes=16))
    assert (result.interrupted, result.sent) == (0, 1)
    assert _statuses() == ["sent"]
    (message,) = smtp_server.messages
    assert message["To"].addresses[0].addr_spec == invitation.contact.email
    assert db.session.get(Invitation, invitation.id).send_began_at is not None
    assert send_due(now=utcnow() + dt.timedelta(minutes=40)).sent == 0
    assert len(smtp_server.messages) == 1


def test_a_claim_cut_off_after_its_send_began_is_marked_for_a_person_to_check(
    app, invite, smtp_server
):
    app.config["MAIL_URL"] = smtp_server.url
    invitation = _claimed_and_cut_off(invite, send_began=True)
    result = send_due(now=utcnow() + dt.timedelta(minutes=16))
    assert (result.interrupted, result.sent) == (1, 0)
    assert _statuses() == ["failed"]
    assert "check" in db.session.get(Invitation, invitation.id).last_error
    assert smtp_server.messages == []


def test_an_email_the_server_took_while_postgresql_went_away_is_still_recorded_sent(
    app, invite, smtp_server
):
    """The database goes down between the SMTP transaction's start and its 250 (its
    connections ended, new ones refused for a moment): the dispatcher waits for it and
    records the invitation ``sent``, instead of leaving it ``sending`` to be marked failed
    ("may have been delivered") later. Found by bench_faults.py's PostgreSQL restarts."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs a database server to take away")
    app.config["MAIL_URL"] = smtp_server.url
    invitation, _ = invite()
    url = sa.engine.make_url(app.config["DATABASE_URL"])
    name = url.database
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    watch = sa.create_engine(url)
    smtp_server.hold = threading.Event()
    down: list[float] = []

    def take_the_database_away() -> None:
        began = sa.select(Invitation.send_began_at).where(Invitation.id == invitation.id)
        deadline = time.monotonic() + 20
        with watch.connect() as conn:
            while conn.scalar(began) is None and time.monotonic() < deadline:
                conn.rollback()
                time.sleep(0.05)
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            down.append(time.monotonic())
            smtp_server.hold.set()  # the server answers 250 while the database is away
            time.sleep(1.5)
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))

    helper = threading.Thread(target=take_the_database_away)
    helper.start()
    try:
        result = send_due()
    finally:
        helper.join(timeout=30)
        with admin.connect() as conn:  # whatever happened, the database opens again
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        watch.dispose()

    assert down, "the database was never taken away"
    assert result.sent == 1 and len(smtp_server.messages) == 1
    db.session.expire_all()
    stored = db.session.get(Invitation, invitation.id)
    assert (stored.status, stored.sent_at is not None) == ("sent", True)
    assert stored.reminder_due_at is not None


def test_a_long_pass_keeps_its_claim_from_a_second_dispatcher_starting_meanwhile(
    app, invite, smtp_server
):
    """Dispatcher A's pass began 20 minutes ago (a big backlog) and has just claimed an
    invitation; dispatcher B starts a pass at that moment. A claim is dated when it is
    taken, not when its pass began, so B does not take it for one a dead dispatcher left
    (older than SENDING_TIMEOUT), queue it again and send it too: the link goes out once."""
    app.config["MAIL_URL"] = smtp_server.url
    invitation, _ = invite(due_at=utcnow() - dt.timedelta(hours=1))
    a_claimed, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def pause_a(_conn, _cursor, statement: str, *_args) -> None:
        # A, right after its claim: loading the invitation it took, before sending it
        loading = statement.lstrip().startswith("SELECT") and "WHERE invitations.id =" in statement
        if threading.current_thread().name == "dispatcher-a" and loading and not a_claimed.is_set():
            a_claimed.set()
            b_done.wait(timeout=30)

    def dispatcher_a() -> None:
        try:
            with app.app_context():
                send_due(now=utcnow() - dt.timedelta(minutes=20))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    sa.event.listen(db.engine, "before_cursor_execute", pause_a)
    a = threading.Thread(target=dispatcher_a, name="dispatcher-a")
    try:
        a.start()
        assert a_claimed.wait(timeout=30), "A never claimed the invitation"
        b = send_due()  # B, on another machine, now
        b_done.set()
        a.join(timeout=30)
    finally:
        b_done.set()
        sa.event.remove(db.engine, "before_cursor_execute", pause_a)

    assert not errors, errors
    assert (b.interrupted, b.sent) == (0, 0)
    assert len(smtp_server.messages) == 1
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).status == "sent"


def _reminder_cut_off(invite, smtp_server, *, send_began: bool) -> Invitation:
    """A reminder as a dispatcher killed after its claim leaves it: leased for the claim's
    timeout; ``send_began`` says whether it got as far as the SMTP transaction."""
    invitation, _ = _sent(invite, smtp_server, language="en")
    smtp_server.messages.clear()
    invitation.reminder_due_at = utcnow() + dt.timedelta(minutes=15)
    invitation.reminder_attempts = 1
    invitation.reminder_sent_at = utcnow() if send_began else None
    db.session.commit()
    return invitation


def test_a_reminder_cut_off_before_its_send_is_sent_once_the_claim_is_over(
    app, invite, smtp_server
):
    app.config["MAIL_URL"] = smtp_server.url
    invitation = _reminder_cut_off(invite, smtp_server, send_began=False)
    assert send_due().reminded == 0  # still claimed: another dispatcher may be sending it
    assert send_due(now=utcnow() + dt.timedelta(minutes=16)).reminded == 1
    (message,) = smtp_server.messages
    assert message["Subject"].startswith("Reminder:")
    assert send_due(now=utcnow() + dt.timedelta(days=2)).reminded == 0
    db.session.refresh(invitation)
    assert invitation.reminder_sent_at is not None and invitation.reminder_due_at is None


def test_a_reminder_cut_off_after_its_send_began_is_never_sent_again(app, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    _reminder_cut_off(invite, smtp_server, send_began=True)
    for later in (dt.timedelta(minutes=16), dt.timedelta(days=3)):
        assert send_due(now=utcnow() + later).reminded == 0
    assert smtp_server.messages == []
