"""The dispatcher: the invitation email, sending once, skipping, retrying."""

from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from loyalty.db import db
from loyalty.dispatch import MAX_ATTEMPTS, send_due
from loyalty.models import Invitation, utcnow


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
