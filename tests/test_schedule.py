"""Scheduled reports (``loyalty.dashboard.schedule``): checked at start-up, due when a period
ends, emailed to the roles with the HTML attached and the NPS summary in the body, once per
period across restarts, from the dispatcher's pass or ``flask report send``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from conftest import _config
from test_cases import staff

from loyalty import create_app, periods
from loyalty.dashboard import schedule
from loyalty.dashboard.rollups import tz
from loyalty.db import db
from loyalty.models import ReportDelivery, utcnow
from loyalty.outreach.dispatch import send_due as dispatch_pass

TITLE = "Loyalty, month by month"
MONTHLY = [{"report": "executive-monthly", "every": "month", "roles": ["executive"]}]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"report": "x"}, "REPORT_SCHEDULE: must be a list"),
        ([{"report": "nope", "every": "month", "roles": ["executive"]}], "[0].report: 'nope'"),
        ([{"report": "executive-monthly", "every": "day", "roles": ["executive"]}], "[0].every"),
        ([{"report": "executive-monthly", "every": "month", "roles": []}], "[0].roles"),
        ([{"report": "executive-monthly", "every": "month", "roles": ["ceo"]}], "[0].roles"),
        ([{**MONTHLY[0], "language": "de"}], "[0].language"),
        ([{**MONTHLY[0], "hour": 24}], "[0].hour"),
        ([{**MONTHLY[0], "hour": True}], "[0].hour"),
        ([{**MONTHLY[0], "to": "x"}], "unknown fields ['to']"),
    ],
)
def test_a_bad_schedule_stops_start_up_naming_the_field(tmp_path, database_url, entries, message):
    with pytest.raises(schedule.ScheduleError, match=None) as raised:
        create_app({**_config(tmp_path, database_url), "REPORT_SCHEDULE": entries})
    assert message in str(raised.value)


def test_the_default_schedule_is_valid(app):
    from loyalty.config import SETTINGS

    parsed = schedule.parse(SETTINGS["REPORT_SCHEDULE"][0], {"executive-monthly", "support-weekly"})
    assert [(e.report, e.every, e.roles) for e in parsed][0] == (
        "executive-monthly",
        "month",
        ("executive",),
    )


@pytest.mark.parametrize(
    ("every", "today", "first", "last"),
    [
        ("month", "2026-12-04", "2026-11-01", "2026-11-30"),
        ("month", "2026-01-01", "2025-12-01", "2025-12-31"),
        ("week", "2026-12-03", "2026-11-23", "2026-11-29"),  # Monday to Sunday
        ("quarter", "2026-12-04", "2026-07-01", "2026-09-30"),
    ],
)
def test_the_last_whole_period(every, today, first, last):
    period = schedule.last_period(every, dt.date.fromisoformat(today))
    assert period == (dt.date.fromisoformat(first), dt.date.fromisoformat(last))


def _answers(stored_answer, period: periods.Period) -> None:
    """Answers in the period that ended (3 promoters, 1 detractor), and in the one before
    (2 promoters, 2 detractors)."""
    now = utcnow()

    def ago(day: dt.date) -> float:
        return (now - periods.midnight(day, tz())).total_seconds() / 86400 - 0.5

    for nps in (10, 9, 9, 2):
        stored_answer("Monthly A/S", days_ago=ago(period.first + dt.timedelta(days=3)), nps=nps)
    before = schedule.last_period("month", period.first)
    for nps in (10, 10, 1, 0):
        stored_answer("Monthly A/S", days_ago=ago(before.first + dt.timedelta(days=3)), nps=nps)


def test_a_monthly_report_goes_out_once_with_its_summary_and_file(
    app, smtp_server, stored_answer, runner
):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    staff("ceo@example.com", role="executive")
    staff("cfo@example.com", role="executive")
    staff("lead@example.com", role="support")
    period = schedule.last_period("month", periods.today(tz()))
    _answers(stored_answer, period)

    dispatch_pass()  # the dispatcher's pass sends what is due (and the digests)
    sent = [m for m in smtp_server.messages if m["Subject"].startswith(TITLE)]
    assert sorted(m["To"] for m in sent) == ["ceo@example.com", "cfo@example.com"]
    message = sent[0]
    assert "NPS +50.0 ±" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert f"{period.first.isoformat()} to {period.last.isoformat()}" in body
    assert "NPS: +50.0 ±" in body and "(n=4)" in body
    assert "The period before" in body and "+0.0 ±" in body
    assert "within the noise" in body  # 4 answers: nothing is beyond the noise
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == f"executive-monthly-{period.first.isoformat()}.html"
    html = attachment.get_content()
    assert "Plotly" in html and 'src="http' not in html and "<script src=" not in html

    # Once per period: another pass, a restarted app, and the command all leave it.
    dispatch_pass()
    config = _config(Path(app.instance_path), app.config["DATABASE_URL"])
    restarted = create_app({**config, "MAIL_URL": smtp_server.url, "REPORT_SCHEDULE": MONTHLY})
    with restarted.app_context():
        assert schedule.send_due() == []
        db.session.remove()
        db.engine.dispose()  # its own engine: closed, so no connection outlives it
    result = runner.invoke(args=["report", "send", "executive-monthly"])
    assert result.exit_code == 0 and "not again" in result.output, result.output
    assert len([m for m in smtp_server.messages if m["Subject"].startswith(TITLE)]) == 2
    (delivery,) = db.session.query(ReportDelivery).all()
    assert (delivery.period_first, delivery.recipients) == (period.first, 2)
    assert delivery.sent_at is not None


def test_not_due_before_its_hour(app, smtp_server):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    staff("ceo@example.com", role="executive")
    first = periods.bucket_start(periods.today(tz()), "month")
    opening = periods.midnight(first, tz())
    assert schedule.send_due(now=opening + dt.timedelta(hours=6, minutes=59)) == []
    assert len(schedule.send_due(now=opening + dt.timedelta(hours=7))) == 1


def test_a_refused_send_is_tried_again_on_the_next_pass(app, smtp_server):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    staff("ceo@example.com", role="executive")
    smtp_server.refuse = "550 mailbox unavailable"
    assert schedule.send_due() == []
    (delivery,) = db.session.query(ReportDelivery).all()
    assert delivery.claimed_at is None and delivery.sent_at is None  # the claim given up
    smtp_server.refuse = None
    assert len(schedule.send_due()) == 1
    assert len(smtp_server.messages) == 1


def test_a_report_refused_for_one_recipient_goes_to_the_others_once(app, smtp_server, runner):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        staff(email, role="executive")
    smtp_server.refuse_to = {"b@example.com"}
    assert schedule.send_due() == []  # refused half-way: given up, a got it
    assert [m["To"] for m in smtp_server.messages] == ["a@example.com"]
    result = runner.invoke(args=["report", "send", "executive-monthly"])
    assert result.exit_code == 1 and "refused" in result.output  # b still refused
    assert [m["To"] for m in smtp_server.messages] == ["a@example.com"]
    smtp_server.refuse_to = set()
    (delivery,) = schedule.send_due()
    assert [m["To"] for m in smtp_server.messages] == [
        "a@example.com", "b@example.com", "c@example.com",
    ]  # fmt: skip
    assert delivery.recipients == 3 and delivery.sent_at is not None
    assert schedule.send_due() == []  # and not again


def test_a_claim_left_by_a_process_that_died_is_taken_up_again(app, smtp_server):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    staff("ceo@example.com", role="executive")
    period = schedule.last_period("month", periods.today(tz()))
    now = utcnow()
    db.session.add(
        ReportDelivery(report="executive-monthly", period_first=period.first,
                       period_last=period.last, claimed_at=now - dt.timedelta(minutes=5))
    )  # fmt: skip
    db.session.commit()
    assert schedule.send_due(now=now) == []  # another process may still be sending it
    later = now + schedule.CLAIM_TIMEOUT
    assert len(schedule.send_due(now=later)) == 1
    assert len(smtp_server.messages) == 1


def test_nobody_with_the_roles_means_not_yet(app, smtp_server, runner):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    assert schedule.send_due() == []
    assert db.session.query(ReportDelivery).count() == 0
    result = runner.invoke(args=["report", "send", "executive-monthly"])
    assert result.exit_code == 1 and "nobody has the roles executive" in result.output


def test_the_command_sends_a_scheduled_report_and_refuses_others(app, smtp_server, runner):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    staff("ceo@example.com", role="executive")
    result = runner.invoke(args=["report", "send", "executive-monthly"])
    assert result.exit_code == 0 and "to 1 people" in result.output, result.output
    assert len(smtp_server.messages) == 1
    result = runner.invoke(args=["report", "send", "support-weekly"])
    assert result.exit_code == 2 and "not in REPORT_SCHEDULE" in result.output


def test_the_command_says_when_the_mail_server_refused_it(app, smtp_server, runner):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=MONTHLY)
    staff("ceo@example.com", role="executive")
    smtp_server.refuse = "550 mailbox unavailable"
    result = runner.invoke(args=["report", "send", "executive-monthly"])
    assert result.exit_code == 1 and "the mail server refused it" in result.output
    assert "sent already" not in result.output and "not again" not in result.output


def test_a_danish_schedule_mails_its_summary_in_danish(app, smtp_server, stored_answer):
    app.config.update(MAIL_URL=smtp_server.url, REPORT_SCHEDULE=[{**MONTHLY[0], "language": "da"}])
    staff("ceo@example.com", role="executive")
    period = schedule.last_period("month", periods.today(tz()))
    _answers(stored_answer, period)
    (delivery,) = schedule.send_due()
    (message,) = smtp_server.messages
    body = message.get_body(("plain",)).get_content()
    assert f"{period.first.isoformat()} til {period.last.isoformat()}" in body
    assert "Perioden før" in body and "inden for støjen" in body
    assert "vedhæftet" in body and "The period before" not in body
    html = message.get_body(("html",)).get_content()
    assert '<html lang="da">' in html and "Åbn dashboardet" in html
