"""Scheduling rules as tables: triggers and delays, throttling per contact and per B2B
account, unreachable contacts, stale events, reminders; and the [schedule] table of a
survey definition."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from loyalty.config import PROJECT_ROOT
from loyalty.outreach.scheduling import (
    Limits,
    Schedule,
    Touch,
    parse_duration,
    plan,
    reminder_due,
    skip_reason,
)
from loyalty.specs import SurveyDefinitionError, load_file

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
ME = 1
LIMITS = Limits(contact_days=30, account_days=7, account_contacts=2, invitation_days=30)


def days(n: float) -> dt.datetime:
    return NOW + n * DAY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2d", dt.timedelta(days=2)),
        ("0d", dt.timedelta(0)),
        ("36h", dt.timedelta(hours=36)),
        ("90m", dt.timedelta(minutes=90)),
        (" 1d ", dt.timedelta(days=1)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "d", "2 d", "-1d", "2w", "1.5d", "12345d", 2])
def test_bad_durations_say_what_is_accepted(text):
    with pytest.raises(ValueError, match="like '2d', '36h' or '90m'"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("segment", "unreachable", "touches", "expected"),
    [
        # nobody asked yet
        ("b2b", None, [], None),
        # unreachable contacts, whatever else is true
        ("b2c", "unsubscribed", [], "unsubscribed"),
        ("b2c", "bounced", [], "bounced"),
        ("b2c", "erased", [Touch(ME, days(-100))], "erased"),
        # the same contact: within 30 days either side is too soon, 30 days apart is fine
        ("b2c", None, [Touch(ME, days(-29.9))], "throttled_contact"),
        ("b2c", None, [Touch(ME, days(-30))], None),
        ("b2c", None, [Touch(ME, days(10))], "throttled_contact"),  # already planned later
        ("b2c", None, [Touch(ME, days(30))], None),
        # other contacts of a B2B account: two in the week is the limit, a third is not
        ("b2b", None, [Touch(2, days(-1))], None),
        ("b2b", None, [Touch(2, days(-1)), Touch(3, days(-6))], "throttled_account"),
        ("b2b", None, [Touch(2, days(-1)), Touch(3, days(3))], "throttled_account"),
        ("b2b", None, [Touch(2, days(-1)), Touch(2, days(-2))], None),  # one contact, twice
        ("b2b", None, [Touch(2, days(-1)), Touch(3, days(-7))], None),  # 7 days ago: outside
        # each within a week of this one, but never three in one 7-day window
        ("b2b", None, [Touch(2, days(-4)), Touch(3, days(4))], None),
        ("b2b", None, [Touch(2, days(-4)), Touch(3, days(2.9))], "throttled_account"),
        # B2C accounts have no account throttle
        ("b2c", None, [Touch(2, days(-1)), Touch(3, days(-2))], None),
    ],
)
def test_who_may_be_asked(segment, unreachable, touches, expected):
    reason = skip_reason(
        contact_id=ME,
        segment=segment,
        unreachable=unreachable,
        due_at=NOW,
        touches=touches,
        limits=LIMITS,
    )
    assert reason == expected


@pytest.mark.parametrize(
    ("limits", "others", "expected"),
    [
        (Limits(account_contacts=1), 1, "throttled_account"),
        (Limits(account_contacts=3), 2, None),
        (Limits(account_contacts=3), 3, "throttled_account"),
        (Limits(account_days=1, account_contacts=1), 1, None),  # the others were 2 days ago
        (Limits(contact_days=0), 0, None),
    ],
)
def test_limits_are_settings(limits, others, expected):
    touches = [Touch(10 + n, days(-2)) for n in range(others)]
    touches += [Touch(ME, days(-1))] if limits.contact_days == 0 else []
    reason = skip_reason(
        contact_id=ME, segment="b2b", unreachable=None, due_at=NOW, touches=touches, limits=limits
    )
    assert reason == expected


SCHEDULES = {
    "post-sale": Schedule(triggers={"sale": 3 * DAY, "delivery": 2 * DAY}),
    "support": Schedule(triggers={"support_ticket_closed": dt.timedelta(0)}),
}


def decide(kind: str, occurred_at: dt.datetime, *, touches=(), schedules=SCHEDULES, **kwargs):
    fields = dict(contact_id=ME, segment="b2c", unreachable=None, limits=LIMITS, now=NOW)
    return plan(
        kind=kind,
        occurred_at=occurred_at,
        touches=touches,
        schedules=schedules,
        **{**fields, **kwargs},
    )


@pytest.mark.parametrize(
    ("kind", "occurred_at", "survey", "due_at", "reason"),
    [
        ("delivery", NOW, "post-sale", days(2), None),  # two days after the delivery
        ("sale", days(-1), "post-sale", days(2), None),  # three days after the sale
        ("support_ticket_closed", NOW, "support", NOW, None),
        ("delivery", days(-5), "post-sale", NOW, None),  # learnt late: due now
        ("delivery", days(-31), "post-sale", NOW, None),  # a link made then is still open
        ("delivery", days(-32), "post-sale", NOW, "stale_event"),  # would have expired
    ],
)
def test_events_trigger_surveys_after_their_delay(kind, occurred_at, survey, due_at, reason):
    (decision,) = decide(kind, occurred_at)
    assert (decision.survey, decision.due_at, decision.skip_reason) == (survey, due_at, reason)
    assert decision.expires_at == due_at + 30 * DAY
    assert decision.status == ("skipped" if reason else "scheduled")


def test_kinds_no_survey_listens_to_make_no_decision():
    assert decide("renewal", NOW) == []


def test_one_event_never_asks_a_contact_twice():
    both = {
        "a": Schedule(triggers={"sale": DAY}),
        "b": Schedule(triggers={"sale": 2 * DAY}),
    }
    first, second = decide("sale", NOW, schedules=both)
    assert (first.skip_reason, second.skip_reason) == (None, "throttled_contact")


def test_a_skip_still_records_the_survey_and_times():
    (decision,) = decide("delivery", NOW, unreachable="bounced")
    assert (decision.status, decision.skip_reason, decision.due_at) == (
        "skipped",
        "bounced",
        days(2),
    )


@pytest.mark.parametrize(
    ("after", "expires", "expected"),
    [
        (4 * DAY, days(30), days(4)),
        (4 * DAY, days(4), None),  # would fall on expiry: never
        (4 * DAY, days(3), None),
        (dt.timedelta(0), days(30), None),  # reminders off
    ],
)
def test_reminder_comes_once_and_before_expiry(after, expires, expected):
    assert reminder_due(NOW, expires, after) == expected


# --- the [schedule] table of a survey definition ------------------------------------------

GOOD = (PROJECT_ROOT / "forms" / "post-sale.toml").read_text()


def test_the_real_survey_is_sent_after_sales_deliveries_and_renewals():
    survey = load_file(PROJECT_ROOT / "forms" / "post-sale.toml")
    assert survey.schedule.triggers == {"sale": 3 * DAY, "delivery": 2 * DAY, "renewal": DAY}
    assert survey.schedule.reminder_after == 4 * DAY


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (('reminder = "4d"', 'reminder = "soon"'), "schedule.reminder"),
        (('reminder = "4d"', 'reminder = "0d"'), "schedule.reminder"),
        (('reminder = "4d"', "reminder = true"), "schedule.reminder"),
        (('delivery = "2d"', 'delivery = "2"'), "schedule.triggers.delivery"),
        (('delivery = "2d"', 'shipment = "2d"'), "schedule.triggers.shipment"),
        (('delivery = "2d"', "delivery = 2"), "schedule.triggers.delivery"),
        (('reminder = "4d"', 'reminder = "4d"\nwhen = "now"'), "schedule.when"),
        (("triggers = {", "trigger = {"), "schedule.trigger"),
    ],
)
def test_broken_schedule_names_file_and_field(tmp_path: Path, change, field):
    path = tmp_path / "post-sale.toml"
    path.write_text(GOOD.replace(*change, 1))
    with pytest.raises(SurveyDefinitionError) as error:
        load_file(path)
    assert str(error.value).startswith(f"{path}: {field}:")


@pytest.mark.parametrize(
    ("line", "expected"),
    [("reminder = false", dt.timedelta(0)), ("", None), ('reminder = "2d"', 2 * DAY)],
)
def test_reminder_may_be_off_or_left_to_the_configured_default(tmp_path: Path, line, expected):
    path = tmp_path / "post-sale.toml"
    path.write_text(GOOD.replace('reminder = "4d"', line, 1))
    assert load_file(path).schedule.reminder_after == expected


def test_a_survey_without_schedule_is_only_sent_by_hand(tmp_path: Path):
    path = tmp_path / "post-sale.toml"
    path.write_text(GOOD[: GOOD.index("[schedule]")])
    assert load_file(path).schedule is None
