"""Cases: flags raised as answers are saved, cases opened or joined, staff actions and their
history, and the reply that closes the loop, through a real SMTP server."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from conftest import csrf_from, follow_up

from loyalty.auth import create_user
from loyalty.db import db
from loyalty.mailer import MailError
from loyalty.models import Account, Case, CaseEvent, Flag, FollowUp, Response, User, utcnow
from loyalty.triage import cases, flagging

ANGRY = "Terrible support, nobody answers the phone. I want to cancel."
HAPPY = {"nps": "10", "csat": "5", "ces": "7", "reason": "Lovely", "improve": ""}


def answer(client, token: str, **fields: str):
    """Answer the survey as the customer does, then do its follow-up (flag, case) as the
    worker does seconds later; returns the stored response."""
    html = client.get(f"/s/{token}").get_data(as_text=True)
    data = {"csrf_token": csrf_from(html), **HAPPY, **fields}
    reply = client.post(f"/s/{token}", data=data)
    assert reply.status_code == 303, reply.get_data(as_text=True)
    follow_up()
    db.session.expire_all()
    return db.session.scalars(sa.select(Response).order_by(Response.updated_at.desc())).first()


def staff(email: str = "lead@example.com", role: str = "support") -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        user = create_user(email, role, "correct horse battery")
        db.session.commit()
    return user


def all_cases() -> list[Case]:
    return list(db.session.scalars(sa.select(Case).order_by(Case.id)))


def kinds(case: Case) -> list[str]:
    return [e.kind for e in case.history]


def test_a_detractor_opens_a_case_for_the_account_owner(app, client, invite):
    owner = staff("owner@example.com")
    invitation, token = invite(language="en")
    invitation.contact.account.owner = owner
    db.session.commit()
    response = answer(client, token, nps="3", csat="2", reason=ANGRY)
    (case,) = all_cases()
    (flag,) = case.flags
    assert flag.response_id == response.id
    assert flag.rules == "detractor,low_csat,negative_comment,churn_cue"
    assert flag.severity == case.severity == 2  # a churn cue
    assert case.status == "open" and case.assignee == owner
    assert case.account_id == response.account_id
    calendar = cases.settings().calendar
    assert case.first_contact_due_at == calendar.add(case.opened_at, 8)
    assert kinds(case) == ["opened"]
    assert "owner@example.com" in case.history[0].body
    assert not cases.is_overdue(case)
    assert cases.is_overdue(case, case.first_contact_due_at)


def test_a_happy_answer_raises_nothing(client, invite):
    _, token = invite()
    answer(client, token)
    assert all_cases() == [] and db.session.scalar(sa.select(sa.func.count(Flag.id))) == 0


def test_a_tapped_score_is_flagged_and_the_full_answer_updates_it(client, invite):
    _, token = invite()
    html = client.get(f"/s/{token}?nps=2").get_data(as_text=True)
    client.post(f"/s/{token}/partial", data={"nps": "2", "csrf_token": csrf_from(html)})
    follow_up()
    (case,) = all_cases()
    assert case.flags[0].rules == "detractor"
    answer(client, token, nps="2", reason="We will switch to a competitor.")
    (case,) = all_cases()
    assert case.flags[0].rules == "detractor,negative_comment,churn_cue"
    assert case.severity == 2
    assert kinds(case) == ["opened", "flag_changed"]


def test_a_tapped_score_raised_before_anyone_looked_closes_its_case(client, invite):
    _, token = invite()
    html = client.get(f"/s/{token}?nps=2").get_data(as_text=True)
    client.post(f"/s/{token}/partial", data={"nps": "2", "csrf_token": csrf_from(html)})
    follow_up()
    answer(client, token, nps="9")
    (case,) = all_cases()
    assert (case.status, case.outcome) == ("resolved", "no_action_needed")
    assert kinds(case) == ["opened", "flag_changed", "resolved"]
    assert case.history[-1].user is None and "by itself" in case.history[-1].body
    # Lowering the score again reopens it.
    answer(client, token, nps="1")
    (case,) = all_cases()
    assert case.status == "open" and kinds(case)[-1] == "reopened"


def test_a_case_keeps_other_flagged_answers_open(client, invite):
    _, first = invite(account="Acme A/S")
    _, second = invite(account="Acme A/S")
    answer(client, first, nps="2")
    answer(client, second, nps="3")
    answer(client, first, nps="10")
    (case,) = all_cases()
    assert case.status == "open" and kinds(case) == ["opened", "flag_joined", "flag_changed"]


def test_two_answers_from_one_account_at_once_open_one_case(app, invite):
    """Two follow-ups at once (two workers): the second transaction waits for the first (its
    account row is locked on PostgreSQL) and then joins the first one's case instead of
    opening its own."""
    from loyalty.survey.responses import save_response

    survey = app.extensions["loyalty.surveys"]["post-sale"]
    first, _ = invite(account="Acme A/S")
    second, _ = invite(account="Acme A/S")
    first_response = save_response(first, survey, {"nps": 2}, complete=True)
    save_response(second, survey, {"nps": 3}, complete=True)
    db.session.commit()
    # A worker does the first answer's follow-up and has not committed yet (its claim has
    # the write lock on SQLite, its case's account row is locked on PostgreSQL) ...
    db.session.execute(sa.delete(FollowUp).where(FollowUp.response_id == first_response.id))
    flagging.flag_response(first_response)
    db.session.flush()

    def answer_in_another_request() -> None:
        with app.app_context():  # ... while another worker takes the second's
            follow_up()

    other = threading.Thread(target=answer_in_another_request)
    other.start()
    other.join(timeout=1.0)
    assert other.is_alive()  # waiting for the first transaction
    db.session.commit()
    other.join(timeout=30)
    assert not other.is_alive()
    (case,) = all_cases()
    assert len(case.flags) == 2 and kinds(case) == ["opened", "flag_joined"]


def test_another_contact_of_the_account_joins_the_open_case(client, invite):
    _, first = invite(account="Acme A/S")
    _, second = invite(account="Acme A/S")
    _, other = invite(account="Other ApS")
    answer(client, first, nps="5")
    answer(client, second, nps="1", reason=ANGRY)
    answer(client, other, nps="4")
    acme, other_case = all_cases()
    assert [f.response.contact.email for f in acme.flags] == [
        "contact1@example.com",
        "contact2@example.com",
    ]
    assert acme.severity == 2  # the worse flag's
    assert kinds(acme) == ["opened", "flag_joined"]
    assert len(other_case.flags) == 1


def test_a_flag_after_the_window_or_after_resolution_opens_a_new_case(client, invite):
    lead = staff()
    _, first = invite(account="Acme A/S")
    _, second = invite(account="Acme A/S")
    _, third = invite(account="Acme A/S")
    answer(client, first, nps="5")
    (case,) = all_cases()
    case.opened_at -= dt.timedelta(hours=73)  # older than CASE_JOIN_HOURS
    db.session.commit()
    answer(client, second, nps="5")
    assert len(all_cases()) == 2
    newest = all_cases()[-1]
    cases.resolve(newest, lead, "recovered")
    db.session.commit()
    answer(client, third, nps="5")
    assert len(all_cases()) == 3


def test_changing_the_answer_recomputes_the_flag_and_can_reopen(client, invite):
    lead = staff()
    _, token = invite()
    answer(client, token, nps="4")
    (case,) = all_cases()
    cases.add_note(case, lead, "Calling them tomorrow.")
    db.session.commit()
    answer(client, token, nps="9")
    (case,) = all_cases()
    assert case.flags[0].rules == "" and case.flags[0].severity == 0 and case.severity == 0
    assert "no rule fires any more" in case.history[-1].body
    assert case.status == "open"  # worked on: closing it is the lead's call
    cases.resolve(case, lead, "no_action_needed")
    db.session.commit()
    answer(client, token, nps="9", reason="Fine, but we are going to cancel the contract.")
    (case,) = all_cases()
    assert case.status == "open" and case.outcome is None and case.resolved_at is None
    assert kinds(case)[-2:] == ["flag_changed", "reopened"]
    assert case.history[-1].user is None  # the system did it, for the customer
    # Changing only the wording of the same complaint changes nothing.
    before = len(case.history)
    answer(client, token, nps="9", reason="Fine, but we are going to cancel our contract.")
    (case,) = all_cases()
    assert len(case.history) == before


def test_severity_uses_annual_value_and_decision_makers(client, invite):
    invitation, token = invite(segment="b2b")
    invitation.contact.is_decision_maker = True
    invitation.contact.account.annual_value = Decimal(250_000)
    db.session.commit()
    answer(client, token, nps="6")
    (case,) = all_cases()
    assert case.severity == 3
    assert flagging.verdict_for(case.flags[0].response).reasons == (
        "+1 annual value at least 100,000",
        "+1 B2B decision maker",
    )


def test_the_case_page_shows_what_was_decided_not_what_todays_settings_say(
    app, client, auth, invite
):
    invitation, token = invite(segment="b2b")
    invitation.contact.is_decision_maker = True
    db.session.commit()
    answer(client, token, nps="6")
    (case,) = all_cases()
    assert flagging.flag_reasons(case.flags[0]) == ("+1 B2B decision maker",)
    # The company stops counting decision makers: the flag raised before keeps its reason.
    app.config["FLAG_SEVERITY"] = {"decision_maker_points": 0}
    assert flagging.verdict_for(case.flags[0].response).reasons == ()
    auth.login("support")
    html = client.get(f"/triage/{case.id}").get_data(as_text=True)
    assert "+1 B2B decision maker" in html


def test_owners_who_cannot_act_hand_cases_to_the_default_assignee(app, client, invite):
    boss = staff("cfo@example.com", role="executive")
    fallback = staff("triage@example.com")
    app.config["CASE_DEFAULT_ASSIGNEE"] = "Triage@Example.com"
    invitation, token = invite()
    invitation.contact.account.owner = boss
    db.session.commit()
    answer(client, token, nps="2")
    assert all_cases()[0].assignee == fallback
    app.config["CASE_DEFAULT_ASSIGNEE"] = ""
    _, token = invite(account="Nobody's A/S")
    answer(client, token, nps="2")
    assert all_cases()[1].assignee is None


def test_imported_history_is_not_flagged(app, invite):
    invitation, _ = invite()
    response = Response(
        source="import",
        import_key="old-1",
        contact_id=invitation.contact_id,
        account_id=invitation.contact.account_id,
        survey="post-sale",
        survey_version=1,
        language="en",
        nps=0,
    )
    db.session.add(response)
    db.session.flush()
    assert flagging.flag_response(response) is None


def test_bad_rules_stop_start_up(tmp_path):
    from loyalty import create_app

    with pytest.raises(ValueError, match="FLAG_RULES\\['detractor'\\]: metric must be one of"):
        create_app(
            {
                "INSTANCE_PATH": tmp_path,
                "SECRET_KEY": "x",
                "FLAG_RULES": {"detractor": {"metric": "mood", "at_most": 6}},
            }
        )
    with pytest.raises(ValueError, match="SLA settings: time zone"):
        create_app({"INSTANCE_PATH": tmp_path, "SECRET_KEY": "x", "SLA_TIMEZONE": "Nowhere/X"})


@pytest.fixture
def case(client, invite) -> Case:
    _, token = invite(language="da", name="Søren <b>Ørsted</b>")
    answer(client, token, nps="2", reason="Elendig service. Ingen svarer telefonen.")
    return all_cases()[0]


def test_staff_actions_are_recorded_with_who_and_when(case):
    lead, other = staff(), staff("other@example.com")
    cases.assign(case, lead, other)
    cases.add_note(case, lead, "  Called twice, no answer.\r\nWill try again.  ")
    cases.set_status(case, lead, "waiting_on_customer")
    cases.log_contact(case, other, "phone", "Spoke with Søren; replacement sent.")
    cases.resolve(case, other, "recovered", "Happy again.")
    db.session.commit()
    history = [(e.kind, e.user.email if e.user else None) for e in case.history]
    assert history == [
        ("opened", None),
        ("assigned", "lead@example.com"),
        ("note", "lead@example.com"),
        ("status", "lead@example.com"),
        ("contact", "other@example.com"),
        ("resolved", "other@example.com"),
    ]
    assert case.history[2].body == "Called twice, no answer.\nWill try again."
    assert cases.event_detail(case.history[4]) == {"channel": "phone"}
    assert case.first_contact_at == case.history[4].created_at
    assert case.status == "resolved" and case.outcome == "recovered"
    assert all(e.created_at.tzinfo == dt.UTC for e in case.history)
    cases.reopen(case, lead, "Customer called back.")
    assert case.status == "open" and case.first_contact_at is not None


def test_first_contact_moves_an_open_case_in_progress_once(case):
    lead = staff()
    cases.log_contact(case, lead, "meeting", "Met at their office.")
    first = case.first_contact_at
    cases.log_contact(case, lead, "email", "Sent the details.")
    assert case.status == "in_progress" and case.first_contact_at == first
    assert kinds(case) == ["opened", "contact", "status", "contact"]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda c, u: cases.add_note(c, u, "   "), "write the note"),
        (lambda c, u: cases.add_note(c, u, "x" * 5001), "at most 5000"),
        (lambda c, u: cases.add_note(c, u, "bell\x07"), "control characters"),
        (lambda c, u: cases.log_contact(c, u, "pigeon", "Coo"), "how you contacted"),
        (lambda c, u: cases.set_status(c, u, "resolved"), "resolve with an outcome"),
        (lambda c, u: cases.set_status(c, u, "done"), "Choose open"),
        (lambda c, u: cases.resolve(c, u, "fixed"), "Choose an outcome"),
        (lambda c, u: cases.reopen(c, u), "Only a resolved case"),
    ],
)
def test_bad_actions_say_why(case, action, message):
    with pytest.raises(cases.CaseError, match=message):
        action(case, staff())


def test_resolved_cases_take_no_contact_until_reopened(case):
    lead = staff()
    cases.resolve(case, lead, "no_action_needed")
    with pytest.raises(cases.CaseError, match="reopen it first"):
        cases.log_contact(case, lead, "phone", "Hello")
    with pytest.raises(cases.CaseError, match="already resolved"):
        cases.resolve(case, lead, "recovered")


def test_executives_cannot_act_and_cases_go_only_to_those_who_can(case):
    boss = staff("cfo@example.com", role="executive")
    with pytest.raises(cases.CaseError, match="Only support and admin"):
        cases.add_note(case, boss, "Hm")
    with pytest.raises(cases.CaseError, match="active support or admin"):
        cases.assign(case, staff(), boss)


def test_reply_email_in_the_customers_language_through_smtp(app, case, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    lead = staff()
    (contact,) = cases.reply_contacts(case)
    body = cases.default_reply(contact) + "\n\n<script>alert(1)</script>"
    cases.send_reply(case, lead, contact, body)
    db.session.commit()
    (message,) = smtp_server.messages
    assert message["Subject"] == "Om din feedback til Loyalty Demo A/S"
    assert message["Reply-To"] == "lead@example.com"
    assert message["Content-Language"] == "da"
    assert contact.email in message["To"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("Hej Søren <b>Ørsted</b>,") and "Venlig hilsen" in text
    assert "Tak fordi du fortalte os" in text and "<script>alert(1)</script>" in text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Hej Søren &lt;b&gt;Ørsted&lt;/b&gt;," in html
    event = case.history[-2]  # the reply, then the status change it caused
    assert event.kind == "email_sent" and event.user == lead and event.body == body
    assert cases.event_detail(event)["to"] == contact.email
    assert case.first_contact_at == event.created_at and case.status == "in_progress"


def test_english_reply(app, client, invite, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    _, token = invite(language="en", name="Ann")
    answer(client, token, nps="0")
    (case,) = all_cases()
    (contact,) = cases.reply_contacts(case)
    cases.send_reply(case, staff(), contact, cases.default_reply(contact))
    (message,) = smtp_server.messages
    assert message["Subject"] == "About your feedback to Loyalty Demo A/S"
    assert message.get_body(("plain",)).get_content().startswith("Hi Ann,")


def test_a_refused_reply_records_nothing(app, case, smtp_server):
    app.config["MAIL_URL"] = smtp_server.url
    smtp_server.refuse = "550 No such user"
    (contact,) = cases.reply_contacts(case)
    with pytest.raises(MailError, match="550"):
        cases.send_reply(case, staff(), contact, "Sorry")
    assert kinds(case) == ["opened"] and case.first_contact_at is None


def test_replies_go_only_to_the_cases_customers(case, invite):
    stranger, _ = invite(account="Elsewhere")
    with pytest.raises(cases.CaseError, match="whose answer is in this case"):
        cases.send_reply(case, staff(), stranger.contact, "Hello")
    assert db.session.scalar(sa.select(sa.func.count(CaseEvent.id))) == 1


def test_overdue_in_sql_matches_python(case):
    later = case.first_contact_due_at + dt.timedelta(minutes=1)
    query = sa.select(Case.id).where(cases.overdue_clause(later))
    assert db.session.scalars(query).all() == [case.id]
    cases.log_contact(case, staff(), "phone", "Called")
    db.session.flush()
    assert db.session.scalars(query).all() == []
    assert not cases.is_overdue(case, later)


def test_settings_follow_config_changes(app):
    first = cases.settings()
    assert cases.settings() is first
    app.config["SLA_FIRST_CONTACT_HOURS"] = 4
    assert cases.settings().first_contact_hours == 4
    assert utcnow().tzinfo == dt.UTC
    assert Account.__tablename__ == "accounts"


def test_configured_rules_are_laid_over_the_defaults(app, client, invite):
    app.config["FLAG_RULES"] = {"detractor": {"metric": "nps", "at_most": 3}, "low_csat": None}
    names = [rule.name for rule in cases.settings().rules]
    assert "low_csat" not in names and "hard_to_get_help" in names
    _, token = invite()
    answer(client, token, nps="5", csat="1")
    assert all_cases() == []
    _, token = invite(account="Other")
    answer(client, token, nps="3")
    assert all_cases()[0].flags[0].rules == "detractor"
