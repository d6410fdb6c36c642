"""The invitation funnel: counts per survey and segment, skip reasons, response rate,
the period filter, and who may see it."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from loyalty.dashboard.funnel import PeriodError, funnel, period
from loyalty.db import db
from loyalty.models import Response, utcnow

DAY = dt.timedelta(days=1)


@pytest.fixture
def history(app, invite):
    """Ten B2B invitations and two B2C ones, due yesterday, in every state."""
    yesterday = utcnow() - DAY

    def make(status, reason=None, segment="b2b", answered=False, reminded=False):
        invitation, _ = invite(segment=segment, due_at=yesterday,
                               account="Acme A/S" if segment == "b2b" else "Jensen")  # fmt: skip
        invitation.status, invitation.skip_reason = status, reason
        if status == "sent":
            invitation.sent_at = yesterday
        if reminded:
            invitation.reminder_sent_at = yesterday
        if answered:
            db.session.add(
                Response(invitation=invitation, contact_id=invitation.contact_id,
                         account_id=invitation.contact.account_id, survey="post-sale",
                         survey_version=1, language="en", nps=8)
            )  # fmt: skip
        return invitation

    make("scheduled")
    make("sending")
    make("skipped", "throttled_contact")
    make("skipped", "throttled_contact")
    make("skipped", "throttled_account")
    make("skipped", "unsubscribed")
    make("failed")
    make("sent", answered=True)
    make("sent", reminded=True)
    make("sent", answered=True, reminded=True)
    make("sent", segment="b2c")
    make("failed", segment="b2c", answered=True)  # cut off mid-send, yet answered
    db.session.commit()


def _window():
    return utcnow() - 2 * DAY, utcnow()


def test_counts_per_survey_and_segment(history):
    (b2b, b2c), total = funnel(*_window())
    assert (b2b.survey, b2b.segment, b2c.segment) == ("post-sale", "b2b", "b2c")
    assert (b2b.total, b2b.waiting, b2b.failed, b2b.sent, b2b.reminded, b2b.answered) == (
        10,
        2,
        1,
        3,
        2,
        2,
    )
    assert b2b.skipped == {"throttled_contact": 2, "throttled_account": 1, "unsubscribed": 1}
    assert b2b.delivered == 3 and b2b.response_rate == pytest.approx(2 / 3)
    # an answer proves delivery, even of an invitation whose send was cut off
    assert (b2c.delivered, b2c.answered, b2c.response_rate) == (2, 1, 0.5)
    assert (total.total, total.delivered, total.answered, total.skipped_total) == (12, 5, 3, 4)


def test_the_period_is_by_due_date(history):
    stages, total = funnel(utcnow() - 10 * DAY, utcnow() - 3 * DAY)
    assert stages == [] and total.total == 0


@pytest.mark.parametrize("role", ["admin", "support", "executive"])
def test_every_staff_role_reads_the_funnel(client, auth, history, role):
    auth.login(role)
    page = client.get("/funnel")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    reasons = re.sub(r"\s+", " ", html[html.index("Why invitations were skipped") :])
    assert (
        'contact surveyed recently <code class="hint">throttled_contact</code></th>'
        ' <td class="num">2</td><td class="num">0</td> <td class="num">2</td>' in reasons
    )
    assert "contact unsubscribed" in reasons and "account surveyed through other" in reasons
    assert "67&nbsp;%" in html and "of 3" in html
    assert 'aria-label="2 answered, 1 delivered without answer, 2 waiting' in html


def test_signed_out_visitors_are_sent_to_sign_in(client):
    reply = client.get("/funnel")
    assert reply.status_code == 302 and "/login" in reply.headers["Location"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=2026-13-01", "Write dates as YYYY-MM-DD"),
        ("end=tomorrow", "Write dates as YYYY-MM-DD"),
        ("start=2026-11-10&end=2026-11-01", "must not be after"),
    ],
)
def test_a_bad_period_is_explained(client, auth, query, message):
    auth.login("executive")
    page = client.get(f"/funnel?{query}")
    assert page.status_code == 400 and message in page.get_data(as_text=True)


def test_the_period_form_keeps_the_chosen_days(client, auth, history):
    auth.login("support")
    html = client.get("/funnel?start=2020-01-01&end=2020-01-31").get_data(as_text=True)
    assert 'value="2020-01-01"' in html and 'value="2020-01-31"' in html
    assert "No invitations were due in this period." in html


def test_unknown_reasons_are_shown_escaped(client, auth, invite):
    invitation, _ = invite(due_at=utcnow() - DAY)
    invitation.status, invitation.skip_reason = "skipped", "<script>x</script>"
    db.session.commit()
    auth.login("admin")
    html = client.get("/funnel").get_data(as_text=True)
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({}, (dt.date(2026, 10, 24), dt.date(2026, 11, 22))),
        ({"start": "2026-11-01"}, (dt.date(2026, 11, 1), dt.date(2026, 11, 22))),
        ({"end": "2026-01-31"}, (dt.date(2026, 1, 2), dt.date(2026, 1, 31))),
        ({"start": "2026-11-22", "end": "2026-11-22"}, (dt.date(2026, 11, 22),) * 2),
    ],
)
def test_periods(args, expected):
    assert period(args, dt.date(2026, 11, 22)) == expected


def test_bad_periods():
    with pytest.raises(PeriodError):
        period({"start": "2026-11-23"}, dt.date(2026, 11, 22))


def test_the_funnel_days_begin_at_local_midnight(client, auth, invite):
    """A day of the funnel is a day in the configured zone: due 00:30 in Copenhagen (23:30
    UTC the evening before) is that day's, not the day before's."""
    from zoneinfo import ZoneInfo

    local = dt.datetime(2026, 11, 10, 0, 30, tzinfo=ZoneInfo("Europe/Copenhagen"))
    invite(due_at=local.astimezone(dt.UTC))
    auth.login("support")
    page = client.get("/funnel?from=2026-11-10&to=2026-11-10").text
    before = client.get("/funnel?from=2026-11-09&to=2026-11-09").text
    assert "No invitations" not in page and "Europe/Copenhagen" in page
    assert "No invitations" in before, before
