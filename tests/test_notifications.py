"""Notifications: a severe new case emails its assignee at once (after the commit, from a
background thread, once, with retries), and everyone gets a daily digest of new and overdue
cases; all through a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from test_cases import answer as answer_now
from test_cases import staff

from loyalty.db import db
from loyalty.models import Case, User
from loyalty.outreach.dispatch import send_due
from loyalty.triage import notifications

CPH = ZoneInfo("Europe/Copenhagen")
SCRIPT = "<script>alert('x')</script> You are useless, we will cancel."


def cph(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=CPH).astimezone(dt.UTC)


@pytest.fixture
def severe(app, invite, smtp_server):
    """An invitation whose detractor answer makes a high-severity case for lead@example.com."""
    app.config["MAIL_URL"] = smtp_server.url
    app.config["DIGEST_ROLES"] = []  # the dispatcher passes below send no digests
    owner = staff("lead@example.com")
    invitation, token = invite(segment="b2b", account="Big <Corp> A/S")
    invitation.contact.is_decision_maker = True
    invitation.contact.account.annual_value = Decimal(150_000)
    invitation.contact.account.owner = owner
    db.session.commit()
    return token


def answer(client, token: str, **fields: str):
    """Answer, then wait for the background thread's at-once email."""
    response = answer_now(client, token, **fields)
    assert notifications.wait_for_background_emails()
    return response


def only_case() -> Case:
    db.session.expire_all()
    (case,) = db.session.scalars(sa.select(Case)).all()
    return case


def test_a_severe_case_emails_the_assignee_at_once(client, severe, smtp_server):
    answer(client, severe, nps="1", reason=SCRIPT)
    case = only_case()
    assert case.severity == 4  # churn cue + annual value + decision maker
    (message,) = smtp_server.messages
    assert message["To"] == "lead@example.com"
    assert message["Subject"].startswith(f"[critical] Case #{case.id}: Big <Corp> A/S")
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert f"http://survey.test/triage/{case.id}" in text and SCRIPT in text
    assert "<script>" not in html and "<Corp>" not in html
    assert "&lt;script&gt;" in html and "Big &lt;Corp&gt; A/S" in html
    assert case.notified_at is not None and case.history[-1].kind == "notified"
    # Changing the answer (still severe) sends nothing more.
    answer(client, severe, nps="0", reason=SCRIPT + " Really.")
    assert len(smtp_server.messages) == 1


def test_a_slow_mail_server_does_not_hold_up_the_customer(client, severe, smtp_server):
    smtp_server.hold = threading.Event()
    answer_now(client, severe, nps="1", reason=SCRIPT)  # thanked (303) while the server waits
    assert smtp_server.messages == [] and not notifications.wait_for_background_emails(0.2)
    smtp_server.hold.set()
    assert notifications.wait_for_background_emails()
    assert len(smtp_server.messages) == 1 and only_case().notified_at is not None


def test_a_mild_case_emails_nobody(client, invite, smtp_server, app):
    app.config["MAIL_URL"] = smtp_server.url
    invitation, token = invite()
    invitation.contact.account.owner = staff()
    db.session.commit()
    answer(client, token, nps="5")
    assert only_case().severity == 1 and smtp_server.messages == []


def test_a_case_that_becomes_severe_emails_then(client, invite, smtp_server, app):
    app.config["MAIL_URL"] = smtp_server.url
    app.config["NOTIFY_MIN_SEVERITY"] = 2
    invitation, token = invite()
    invitation.contact.account.owner = staff()
    db.session.commit()
    answer(client, token, nps="5")
    assert smtp_server.messages == []
    answer(client, token, nps="5", reason="We will not renew.")
    assert len(smtp_server.messages) == 1


def test_a_refused_email_is_retried_by_the_dispatcher(client, severe, smtp_server):
    smtp_server.refuse = "451 Try again later"
    answer(client, severe, nps="1", reason=SCRIPT)  # the customer's answer is still saved
    assert only_case().notified_at is None and smtp_server.messages == []
    send_due()
    assert only_case().notified_at is None
    smtp_server.refuse = None
    send_due()  # the dispatcher's pass retries it
    send_due()  # and only once
    # (The pass also tells the account's owner that its health is at risk: another email.)
    case_emails = [m for m in smtp_server.messages if "Case #" in m["Subject"]]
    assert len(case_emails) == 1 and only_case().notified_at is not None


def test_nothing_is_sent_for_a_rolled_back_case(client, severe, smtp_server, invite):
    from loyalty.models import Response
    from loyalty.triage.flagging import flag_response

    answer(client, severe, nps="9")  # no case
    response = db.session.scalar(sa.select(Response))
    response.nps = 0
    flag_response(response)
    db.session.flush()
    db.session.rollback()
    db.session.commit()
    assert smtp_server.messages == [] and db.session.scalar(sa.select(Case)) is None


def test_the_email_is_claimed_so_it_goes_once(client, severe, smtp_server):
    smtp_server.refuse = "451 later"
    answer(client, severe, nps="1", reason=SCRIPT)
    smtp_server.refuse = None
    case_id = only_case().id
    assert notifications.notify_assignee(case_id) is True
    assert notifications.notify_assignee(case_id) is False
    assert len(smtp_server.messages) == 1


def test_a_case_unassigned_while_its_email_is_claimed_is_told_to_the_next_assignee(
    client, severe, smtp_server
):
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    smtp_server.refuse = "451 later"  # the at-once email fails: the case waits for a retry
    answer(client, severe, nps="1", reason=SCRIPT)
    smtp_server.refuse = None
    case_id = only_case().id

    claims = []

    def unassign_after_the_claim(session: Session) -> None:
        if claims:
            return
        claims.append(session)
        with db.engine.begin() as connection:  # another staff member, at that very moment
            connection.execute(sa.update(Case).where(Case.id == case_id).values(assignee_id=None))

    event.listen(Session, "after_commit", unassign_after_the_claim)
    try:
        assert notifications.notify_assignee(case_id) is False
    finally:
        event.remove(Session, "after_commit", unassign_after_the_claim)
    assert claims  # the listener ran right after the claim's commit
    assert only_case().notified_at is None  # the claim is given back, not kept for nobody
    only_case().assignee = staff("second@example.com")
    db.session.commit()
    assert notifications.notify_pending() == 1
    assert [m["To"] for m in smtp_server.messages] == ["second@example.com"]


# --- the digest ------------------------------------------------------------------------------


@pytest.fixture
def queue(app, client, invite, smtp_server):
    """Staff in every role, one new case and one overdue case, at Tuesday 10:00 in Copenhagen."""
    app.config["MAIL_URL"] = smtp_server.url
    for email, role in [
        ("admin@example.com", "admin"),
        ("lead@example.com", "support"),
        ("cfo@example.com", "executive"),
    ]:
        staff(email, role)
    _, old = invite(account="Slow <b>Ltd</b>")
    _, new = invite(account="Fresh ApS")
    answer(client, old, nps="3", reason="<img src=x onerror=alert(1)> awful")
    answer(client, new, nps="4")
    overdue, fresh = db.session.scalars(sa.select(Case).order_by(Case.id)).all()
    overdue.opened_at = cph("2030-03-01 09:00")
    overdue.first_contact_due_at = cph("2030-03-01 17:00")
    fresh.opened_at = cph("2030-03-05 09:30")
    fresh.first_contact_due_at = cph("2030-03-05 17:30")
    db.session.commit()
    return overdue, fresh


def test_everyone_gets_one_digest_a_working_day(queue, smtp_server):
    overdue, fresh = queue
    tuesday = cph("2030-03-05 10:00")
    assert notifications.send_digests(now=tuesday) == 3
    assert notifications.send_digests(now=tuesday + dt.timedelta(hours=3)) == 0
    assert sorted(m["To"] for m in smtp_server.messages) == [
        "admin@example.com",
        "cfo@example.com",
        "lead@example.com",
    ]
    message = smtp_server.messages[0]
    assert message["Subject"] == "Loyalty digest: 1 new, 1 overdue cases"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert f"http://survey.test/triage/{overdue.id}" in text
    assert f"#{fresh.id} [low] Fresh ApS" in text
    assert "<b>" not in html and "<img" not in html
    assert "Slow &lt;b&gt;Ltd&lt;/b&gt;" in html and "&lt;img src=x" in html
    # Wednesday morning: nothing new, and yesterday's new case is overdue too.
    smtp_server.messages.clear()
    assert notifications.send_digests(now=cph("2030-03-06 08:05")) == 3
    assert smtp_server.messages[0]["Subject"] == "Loyalty digest: 0 new, 2 overdue cases"


@pytest.mark.parametrize(
    ("now", "sent"),
    [
        ("2030-03-05 07:59", 0),  # before DIGEST_HOUR: Monday's boundary, nobody had one yet
        ("2030-03-09 12:00", 3),  # Saturday: Friday's boundary
    ],
)
def test_digest_boundary(queue, now, sent):
    for user in db.session.scalars(sa.select(User)):
        user.digest_sent_at = cph("2030-03-04 09:00")  # Monday's went out
    db.session.commit()
    assert notifications.send_digests(now=cph(now)) == sent


def test_digest_skips_when_nothing_to_say_and_respects_roles(app, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    app.config["DIGEST_ROLES"] = ["support"]
    lead, boss = staff(), staff("cfo@example.com", "executive")
    assert notifications.send_digests(now=cph("2030-03-05 10:00")) == 0
    assert smtp_server.messages == []
    assert lead.digest_sent_at is not None and boss.digest_sent_at is None


def test_a_refused_digest_is_tried_again(queue, smtp_server):
    smtp_server.refuse = "451 later"
    tuesday = cph("2030-03-05 10:00")
    assert notifications.send_digests(now=tuesday) == 0
    assert all(u.digest_sent_at is None for u in db.session.scalars(sa.select(User)))
    smtp_server.refuse = None
    assert notifications.send_digests(now=tuesday) == 3


def test_the_dispatcher_sends_the_digest(queue, smtp_server):
    send_due(now=cph("2030-03-05 10:00"))
    assert len(smtp_server.messages) == 3


def test_digest_command_for_cron(queue, runner, smtp_server):
    result = runner.invoke(args=["digest", "--force"])
    assert result.exit_code == 0, result.output
    assert "digests sent 3" in result.output
    assert len(smtp_server.messages) == 3


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("DIGEST_HOUR", 24, "not an hour"),
        ("DIGEST_HOUR", "8", "not an hour"),
        ("DIGEST_ROLES", ["boss"], "must be a list of"),
        ("DIGEST_ROLES", "admin", "must be a list of"),
    ],
)
def test_bad_digest_settings_stop_start_up(tmp_path, setting, value, message):
    from loyalty import create_app

    with pytest.raises(ValueError, match=message):
        create_app({"INSTANCE_PATH": tmp_path, "SECRET_KEY": "x", setting: value})


def test_the_assignee_email_and_the_digest_show_one_time_in_one_zone(client, severe, app):
    """Both say when first contact is due in the configured zone, the zone named ("16:00
    UTC" in one and "17:00" in the other read as an hour apart)."""
    from loyalty import emails

    answer(client, severe, nps="1", reason=SCRIPT)
    case = only_case()
    case.first_contact_due_at = cph("2030-03-01 17:00")  # 16:00 UTC
    db.session.commit()
    assigned = emails.case_assigned(case).get_body(("plain",)).get_content()
    digest = emails.digest(
        case.assignee, new=[], overdue=[case], new_total=0, overdue_total=1, tz=CPH
    )
    for message in (assigned, digest.get_body(("plain",)).get_content()):
        assert "2030-03-01 17:00 CET" in message and "UTC" not in message
    summer = cph("2030-07-01 17:00")
    case.first_contact_due_at = summer
    assigned = emails.case_assigned(case).get_body(("html",)).get_content()
    assert "2030-07-01 17:00 CEST" in assigned
