"""Every e-mail Loyalty composes: built through ``mailer.build_message`` with clean headers
(a name carrying ``CR LF Bcc:`` adds no header), customer text escaped in the HTML part, and
``transport()`` writing to the instance outbox."""

from __future__ import annotations

import datetime as dt
import inspect
import re
import typing as t
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import current_app
from test_cases import answer, staff

from loyalty import emails, mailer
from loyalty.db import db
from loyalty.models import Case, HealthWarning, utcnow
from loyalty.triage import cases
from loyalty.triage.flags import severity_name

CPH = ZoneInfo("Europe/Copenhagen")
INJECTION = "\r\nBcc: evil@example.com"
CONTACT_NAME = "Mette <b>Hansen</b>" + INJECTION
ACCOUNT_NAME = "Acme <i>A/S</i>" + INJECTION
COMMENT = "<script>alert(1)</script> Awful support, nobody answers."
REPLY = "Sorry, <b>Mette</b> & team.\nWe will call you."
COMPANY = "Loyalty Demo A/S"
KINDS = ["invitation", "reminder", "case_assigned", "digest", "case_reply", "health_warning"]
KINDS += ["scheduled_report", "set_password"]
REASON = "NPS fell from +40 to <b>-10</b>"


class World(t.NamedTuple):
    lead: t.Any
    invitation: t.Any
    case: Case


@pytest.fixture
def world(app, client, invite) -> World:
    """A case for lead@example.com from a detractor's answer; then names an old import could
    have stored before names were checked, with markup and a forged header in them."""
    lead = staff("lead@example.com")
    invitation, token = invite(language="en", email="mette@acme.example.com")
    invitation.contact.account.owner = lead
    db.session.commit()
    answer(client, token, nps="2", reason=COMMENT)
    (case,) = db.session.scalars(sa.select(Case)).all()
    invitation.contact.name = CONTACT_NAME
    invitation.contact.account.name = ACCOUNT_NAME
    db.session.commit()
    return World(lead, invitation, case)


def compose(kind: str, world: World) -> EmailMessage:
    if kind == "invitation":
        return emails.invitation(world.invitation)
    if kind == "reminder":
        return emails.invitation(world.invitation, reminder=True)
    if kind == "case_assigned":
        return emails.case_assigned(world.case)
    if kind == "digest":
        return emails.digest(
            world.lead, new=[world.case], overdue=[], new_total=1, overdue_total=0, tz=CPH
        )
    if kind == "health_warning":
        account = world.invitation.contact.account
        warning = HealthWarning(
            account=account, kind="at_risk", reasons="[]", score=31, raised_at=utcnow()
        )
        return emails.health_warning(warning, account, world.lead, [REASON])
    if kind == "scheduled_report":
        from loyalty.dashboard import queries, schedule
        from loyalty.specs import reports

        period = schedule.last_period("month", utcnow().date())
        summary = queries.summary(period, schedule.last_period("month", period.first))
        spec = reports(current_app)["executive-monthly"]
        return emails.scheduled_report(world.lead, spec, "en", summary, "<html>report</html>")
    if kind == "set_password":
        url = "http://survey.test/password/abc"
        return emails.set_password(world.lead, url, invited_by=world.lead, reset=False)
    return emails.case_reply(world.lead, world.invitation.contact, REPLY)


def on_the_wire(message: EmailMessage) -> EmailMessage:
    return message_from_bytes(message.as_bytes(), policy=policy.default)


def test_every_composer_is_tested():
    composers = {
        name
        for name, function in inspect.getmembers(emails, inspect.isfunction)
        if function.__module__ == emails.__name__
        and inspect.signature(function).return_annotation == "EmailMessage"
    }
    assert composers == {
        "invitation", "case_assigned", "digest", "case_reply", "health_warning", "scheduled_report",
        "set_password",
    }  # fmt: skip
    assert composers <= set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_message_is_built_by_build_message(world, monkeypatch, kind):
    built = []

    def spy(**fields):
        built.append(fields)
        return mailer.build_message(**fields)

    monkeypatch.setattr(emails, "build_message", spy)
    message = compose(kind, world)
    assert len(built) == 1
    assert built[0]["sender"] == "Loyalty <loyalty@localhost>"
    assert message["Subject"] == mailer.clean_header_text(built[0]["subject"])


def _expected(kind: str, world: World) -> tuple[str, str]:
    """(the one recipient, the subject) of each message."""
    subject = f"How was your purchase from {COMPANY}?"
    case = world.case
    from loyalty.dashboard.schedule import last_period

    month = last_period("month", utcnow().date())
    return {
        "scheduled_report": (
            "lead@example.com",
            f"Loyalty, month by month: NPS no answers ({month.first} to {month.last})",
        ),
        "invitation": ("mette@acme.example.com", subject),
        "reminder": ("mette@acme.example.com", f"Reminder: {subject}"),
        "case_assigned": (
            "lead@example.com",
            f"[{severity_name(case.severity)}] Case #{case.id}: Acme <i>A/S</i> Bcc:"
            " evil@example.com — detractor, negative comment",
        ),
        "digest": ("lead@example.com", "Loyalty digest: 1 new, 0 overdue cases"),
        "set_password": ("lead@example.com", f"You are invited to Loyalty at {COMPANY}"),
        "case_reply": ("mette@acme.example.com", f"About your feedback to {COMPANY}"),
        "health_warning": (
            "lead@example.com",
            "[health at risk] Acme <i>A/S</i> Bcc: evil@example.com: health 31",
        ),
    }[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_headers_are_clean(world, kind):
    message = on_the_wire(compose(kind, world))
    recipient, subject = _expected(kind, world)
    assert message["From"] == "Loyalty <loyalty@localhost>"
    assert [a.addr_spec for a in message["To"].addresses] == [recipient]
    assert message["Subject"] == subject
    assert message["Message-ID"] and message["Date"]
    # a scheduled report carries its HTML file: text and HTML alternatives, then the file
    mixed = kind == "scheduled_report"
    assert message.get_content_type() == ("multipart/mixed" if mixed else "multipart/alternative")


@pytest.mark.parametrize("kind", KINDS)
def test_a_name_cannot_add_a_header(world, kind):
    built = compose(kind, world)
    head = built.as_bytes().partition(b"\n\n")[0]  # the body may say what it likes
    message = on_the_wire(built)
    assert "Bcc" not in message and "Cc" not in message
    assert not re.search(rb"^(bcc|cc):", head, re.IGNORECASE | re.MULTILINE)
    for name, value in message.items():
        assert "\r" not in value and "\n" not in value, name
        addresses = getattr(value, "addresses", ())
        assert all(a.addr_spec != "evil@example.com" for a in addresses), name


def test_the_contact_name_in_to_is_the_cleaned_name(world):
    message = on_the_wire(compose("invitation", world))
    (address,) = message["To"].addresses
    assert address.display_name == "Mette <b>Hansen</b> Bcc: evil@example.com"


@pytest.mark.parametrize(
    ("kind", "escaped", "raw"),
    [
        ("invitation", ["Mette &lt;b&gt;Hansen&lt;/b&gt;"], ["<b>Hansen</b>"]),
        ("reminder", ["Mette &lt;b&gt;Hansen&lt;/b&gt;"], ["<b>Hansen</b>"]),
        (
            "case_assigned",
            ["Acme &lt;i&gt;A/S&lt;/i&gt;", "&lt;b&gt;Hansen&lt;/b&gt;", "&lt;script&gt;alert(1)"],
            ["<i>A/S</i>", "<b>Hansen</b>", "<script>"],
        ),
        ("digest", ["Acme &lt;i&gt;A/S&lt;/i&gt;", "&lt;script&gt;alert(1)"], ["<i>", "<script>"]),
        (
            "case_reply",
            ["Hi Mette &lt;b&gt;Hansen&lt;/b&gt;", "Sorry, &lt;b&gt;Mette&lt;/b&gt; &amp; team."],
            ["<b>"],
        ),
        (
            "health_warning",
            ["Acme &lt;i&gt;A/S&lt;/i&gt;", "NPS fell from +40 to &lt;b&gt;-10&lt;/b&gt;"],
            ["<i>A/S</i>", "<b>-10"],
        ),
    ],
)
def test_customer_text_is_escaped_in_html(world, kind, escaped, raw):
    message = compose(kind, world)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    for fragment in escaped:
        assert fragment in html
    for fragment in raw:
        assert fragment not in html
    assert "&lt;" not in text  # the text part is shown as it was typed


def test_the_invitation_headers_and_links(world):
    message = on_the_wire(compose("invitation", world))
    unsubscribe = message["List-Unsubscribe"]
    assert re.fullmatch(r"<http://survey\.test/u/[^>\s]+>", unsubscribe)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Content-Language"] == "en"
    text = message.get_body(("plain",)).get_content()
    assert "http://survey.test/s/" in text and unsubscribe[1:-1] in text


def test_the_reply_answers_to_the_support_lead(world):
    message = on_the_wire(compose("case_reply", world))
    assert message["Reply-To"] == "lead@example.com"
    assert message["Content-Language"] == "en"


def test_transport_writes_into_the_instance_outbox(app, world):
    app.config["MAIL_URL"] = "outbox:"
    outbox = Path(app.instance_path) / "outbox"
    before = set(outbox.glob("*.eml"))
    with emails.transport() as transport:
        assert isinstance(transport, mailer.OutboxTransport)
        transport.send(compose("digest", world))
    (written,) = set(outbox.glob("*.eml")) - before
    stored = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert stored["Subject"] == "Loyalty digest: 1 new, 0 overdue cases"


def test_a_reply_goes_through_the_transport(app, world):
    app.config["MAIL_URL"] = "outbox:"
    outbox = Path(app.instance_path) / "outbox"
    before = set(outbox.glob("*.eml"))
    contact = world.invitation.contact
    cases.send_reply(world.case, world.lead, contact, REPLY)
    db.session.commit()
    (written,) = set(outbox.glob("*.eml")) - before
    stored = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert [a.addr_spec for a in stored["To"].addresses] == ["mette@acme.example.com"]
    assert "Bcc" not in stored
    assert "email_sent" in [event.kind for event in world.case.history]


@pytest.mark.parametrize(("language", "word"), [("en", "Unsubscribe"), ("da", "Afmeld")])
def test_the_invitation_links_unsubscribe_by_a_word_not_a_raw_url(
    invite, smtp_server, app, language, word
):
    """A raw URL made the email wider than a phone; the text part keeps it (issue 13)."""
    invitation, _ = invite(language=language)
    app.config["MAIL_URL"] = smtp_server.url
    with emails.transport() as transport:
        transport.send(emails.invitation(invitation))
    assert smtp_server.received.wait(5)
    (message,) = smtp_server.messages
    url = message["List-Unsubscribe"][1:-1]
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert re.search(rf'<a href="{re.escape(url)}"[^>]*>{word}</a>', html)
    assert html.count(url) == 1  # in the link's href only, never as visible text
    assert url in text


def test_the_invitations_score_buttons_are_a_fingers_height(world):
    """Each tap-to-score button is at least 44 px high: 2 × 10 px padding, a 24 px line and
    its border (the browser test measures it at 390 px)."""
    html = compose("invitation", world).get_body(("html",)).get_content()
    buttons = re.findall(r'<a href="[^"]*\?nps=\d+" style="([^"]+)"', html)
    assert len(buttons) == 11
    for style in buttons:
        assert "padding:10px 0;" in style and "line-height:24px;" in style


@pytest.mark.parametrize(
    ("then", "now"),
    [
        ((10.0, 5.0, 100, False), (30.0, 5.0, 100, False)),  # beyond the noise
        ((10.0, 20.0, 100, False), (12.0, 20.0, 100, False)),  # within it
        ((10.0, 5.0, 100, False), (10.0, 5.0, 100, False)),  # did not move
        ((-20.0, 30.0, 10, True), (20.0, 30.0, 12, True)),  # few answers
        ((None, None, 0, True), (10.0, 5.0, 100, False)),  # nothing to compare
        ((10.0, None, 1, True), (20.0, 5.0, 100, False)),  # no margin
    ],
)
def test_the_report_says_the_comparison_in_the_metrics_own_words(app, then, now):
    """English: exactly the words of metrics.compare; Danish: built from the same numbers."""
    from loyalty import metrics, periods
    from loyalty.dashboard.queries import Summary
    from loyalty.emails import change_words

    before, after = metrics.Reading(*then), metrics.Reading(*now)
    day = dt.date(2026, 1, 1)
    summary = Summary(
        periods.Period(day, day), periods.Period(day, day), after, before,
        metrics.compare(before, after),
    )  # fmt: skip
    assert change_words(summary, "en") == summary.comparison.words
    danish = change_words(summary, "da")
    assert danish != summary.comparison.words
    assert "point" in danish or "flyttede" in danish or "svar" in danish, danish
