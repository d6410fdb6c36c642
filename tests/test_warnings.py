"""Early warnings: the owner is emailed once through a real SMTP server, other systems get an
``account.warning`` webhook, people acknowledge or resolve them with a note, and a warning
whose condition clears resolves itself."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from test_cases import staff

from loyalty.accounts import rollup, warnings
from loyalty.db import db
from loyalty.models import Account, HealthWarning, WebhookDelivery, utcnow
from loyalty.outreach.webhooks import add_webhook

ANGRY = "Terrible support. We will cancel and switch to a competitor."


def only_account() -> Account:
    return db.session.scalars(sa.select(Account)).one()


def open_warnings() -> list[HealthWarning]:
    return list(
        db.session.scalars(
            sa.select(HealthWarning).where(HealthWarning.status == "open").order_by("kind")
        )
    )


def test_the_owner_is_emailed_once_and_other_systems_are_told(app, stored_answer, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    add_webhook("https://crm.example.com/hooks", ["account.warning"])
    owner = staff("owner@example.com")
    account = stored_answer(days_ago=2, nps=0, reason=ANGRY)
    account.owner = owner
    db.session.commit()
    raised = rollup.refresh([account.id])
    db.session.commit()
    assert {w.kind for w in raised} >= {"churn_cue"}
    assert warnings.notify_owners() == len(raised)
    assert warnings.notify_owners() == 0  # claimed: never twice
    subjects = [m["Subject"] for m in smtp_server.messages]
    assert len(subjects) == len(raised) and all("Acme A/S" in s for s in subjects)
    assert all(m["To"] == "owner@example.com" for m in smtp_server.messages)
    deliveries = db.session.scalars(sa.select(WebhookDelivery)).all()
    payloads = [json.loads(d.payload) for d in deliveries]
    assert {p["event"] for p in payloads} == {"account.warning"}
    assert {p["data"]["kind"] for p in payloads} == {w.kind for w in raised}


def test_a_refused_email_is_tried_again(app, stored_answer, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    account = stored_answer(days_ago=2, nps=0, reason=ANGRY)
    account.owner = staff("owner@example.com")
    db.session.commit()
    rollup.refresh([account.id])
    db.session.commit()
    smtp_server.refuse = "451 later"
    assert warnings.notify_owners() == 0
    smtp_server.refuse = None
    assert warnings.notify_owners() == len(open_warnings()) > 0


def test_history_is_not_emailed(app, stored_answer, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    account = stored_answer(days_ago=200, nps=0, reason=ANGRY)
    account.owner = staff("owner@example.com")
    db.session.commit()
    now = utcnow()
    weeks = rollup.week_ends(
        (now - dt.timedelta(days=210)).date(), (now - dt.timedelta(days=30)).date(), dt.UTC
    )
    rollup.rebuild(weeks)
    assert db.session.scalar(sa.select(sa.func.count(HealthWarning.id)))  # warnings, then
    assert warnings.notify_owners() == 0 and smtp_server.messages == []  # not news now


@pytest.mark.parametrize(
    ("role", "status", "note", "message"),
    [
        ("executive", "acknowledged", "On it", "Only support and admin"),
        ("support", "snoozed", "On it", "acknowledge or resolve"),
        ("support", "acknowledged", "   ", "Please write a note"),
        ("support", "acknowledged", "bad \x1b char", "control characters"),
    ],
)
def test_acting_on_a_warning_needs_a_role_a_status_and_a_note(
    stored_answer, role, status, note, message
):
    account = stored_answer(days_ago=2, nps=0, reason=ANGRY)
    rollup.refresh([account.id])
    (warning, *_) = open_warnings()
    with pytest.raises(warnings.WarningError, match=message):
        warnings.act_on_warning(warning, staff(f"{role}@example.com", role=role), status, note)


def test_an_acknowledged_warning_keeps_its_note_and_blocks_a_second(stored_answer):
    account = stored_answer(days_ago=2, nps=0, reason=ANGRY)
    rollup.refresh([account.id])
    (warning, *_) = open_warnings()
    lead = staff("lead@example.com")
    warnings.act_on_warning(warning, lead, "acknowledged", "Called them; meeting Friday.")
    db.session.commit()
    rollup.refresh([account.id])
    db.session.commit()
    same = db.session.scalars(
        sa.select(HealthWarning).where(HealthWarning.kind == warning.kind)
    ).all()
    assert same == [warning] and warning.note == "Called them; meeting Friday."
    assert warning.acted_by == lead
    warnings.act_on_warning(warning, lead, "resolved", "They stay.")
    with pytest.raises(warnings.WarningError, match="resolved already"):
        warnings.act_on_warning(warning, lead, "acknowledged", "again")


def test_a_warning_whose_condition_clears_resolves_itself(stored_answer):
    account = stored_answer(days_ago=30, nps=0, reason=ANGRY)
    rollup.refresh([account.id], now=utcnow() - dt.timedelta(days=29))
    churn = [w for w in open_warnings() if w.kind == "churn_cue"]
    assert churn
    # Half a year later nobody wrote of leaving any more.
    rollup.refresh([account.id], now=utcnow() + dt.timedelta(days=200))
    db.session.commit()
    db.session.expire_all()
    (again,) = db.session.scalars(
        sa.select(HealthWarning).where(HealthWarning.id == churn[0].id)
    ).all()
    assert again.status == "resolved" and "Cleared by itself." in (again.note or "")


def test_quieter_warnings_wait_for_the_owners_digest(app, stored_answer, smtp_server):
    from loyalty.triage import notifications

    app.config["MAIL_URL"] = smtp_server.url
    owner = staff("owner@example.com")
    account = stored_answer(days_ago=20, nps=9)
    account.owner = owner
    quiet = HealthWarning(
        account=account,
        kind="silent",
        reasons=json.dumps(["0 answers in 180 days, <b>12</b> in the year before"]),
        score=55,
        raised_at=utcnow(),
    )
    db.session.add(quiet)
    db.session.commit()
    assert warnings.notify_owners() == 0  # not at once
    assert notifications.send_digests(force=True) >= 1
    (digest,) = [m for m in smtp_server.messages if m["To"] == "owner@example.com"]
    html = digest.get_body(("html",)).get_content()
    assert "Your accounts: early warnings" in html and "gone silent" in html
    assert "&lt;b&gt;12&lt;/b&gt;" in html and "<b>12" not in html
    db.session.expire_all()
    assert db.session.get(HealthWarning, quiet.id).notified_at is not None
    smtp_server.messages.clear()
    notifications.send_digests(force=True)  # told once: not in the next digest
    assert all(
        "early warnings" not in m.get_body(("plain",)).get_content() for m in smtp_server.messages
    )
