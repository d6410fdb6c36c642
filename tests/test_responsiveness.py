"""Responsiveness: business hours to first contact and resolution, share within SLA per
assignee and segment, recovery rate; the page and ``flask export cases``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from test_cases import staff

from loyalty.db import db
from loyalty.metrics import percentile
from loyalty.models import Account, Case, Contact, Flag, Response
from loyalty.triage.responsiveness import case_facts, parse_period, summarize

CPH = ZoneInfo("Europe/Copenhagen")


def cph(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=CPH).astimezone(dt.UTC)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([4], 50, 4),
        ([4], 90, 4),
        ([1, 2, 3], 50, 2),
        ([1, 2, 3, 4], 50, 2.5),
        ([3, 1, 2, 4], 50, 2.5),  # order does not matter
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9.1),
        ([0, 10], 90, 9),
        ([5, 5, 5], 90, 5),
    ],
)
def test_percentile(values, q, expected):
    result = percentile(values, q)
    assert result is None if expected is None else result == pytest.approx(expected)


_n = iter(range(1, 100_000))


def make_case(
    opened: str,
    *,
    contacted: str | None = None,
    resolved: str | None = None,
    assignee=None,
    segment: str = "b2c",
    nps: int = 3,
    account: str | None = None,
    contact: Contact | None = None,
) -> Case:
    """A case with its clock stops at the given Copenhagen times (due 8 business hours in)."""
    n = next(_n)
    if contact is None:
        acc = Account(name=account or f"Account {n}", segment=segment, annual_value=Decimal(0))
        contact = Contact(account=acc, email=f"c{n}@example.com", name=f"C {n}", language="da")
    opened_at = cph(opened)
    response = Response(
        contact=contact, account=contact.account, survey="post-sale", survey_version=1,
        language="da", nps=nps, submitted_at=opened_at, updated_at=opened_at,
    )  # fmt: skip
    from loyalty.triage import cases

    case = Case(
        account=contact.account, assignee=assignee, severity=1, opened_at=opened_at,
        updated_at=opened_at,
        first_contact_due_at=cases.settings().calendar.add(opened_at, 8),
        first_contact_at=cph(contacted) if contacted else None,
        resolved_at=cph(resolved) if resolved else None,
        status="resolved" if resolved else ("in_progress" if contacted else "open"),
        outcome="recovered" if resolved else None,
    )  # fmt: skip
    db.session.add_all(
        [contact, response, case, Flag(response=response, case=case, rules="detractor", severity=1)]
    )
    db.session.commit()
    return case


def later_answer(case: Case, at: str, nps: int) -> None:
    contact = case.flags[0].response.contact
    db.session.add(
        Response(
            contact=contact,
            account=contact.account,
            survey="post-sale",
            survey_version=1,
            language="da",
            nps=nps,
            submitted_at=cph(at),
            updated_at=cph(at),
        )  # fmt: skip
    )
    db.session.commit()


NOW = cph("2025-03-14 12:00")  # a Friday


@pytest.fixture
def history(app):
    """Four cases in the week of Monday 3 March 2025, by two support leads, B2B and B2C."""
    ann, bo = staff("ann@example.com"), staff("bo@example.com")
    quick = make_case(  # 2 h to contact, 9 h to resolve: both within SLA
        "2025-03-03 09:00", contacted="2025-03-03 11:00", resolved="2025-03-04 09:00",
        assignee=ann, segment="b2b",
    )  # fmt: skip
    slow = make_case(  # 17 h to contact (missed), 54 h to resolve (missed)
        "2025-03-03 09:00", contacted="2025-03-04 17:00", resolved="2025-03-10 09:00",
        assignee=bo, segment="b2c",
    )  # fmt: skip
    late = make_case("2025-03-05 09:00", assignee=bo)  # never contacted: overdue, missed
    fresh = make_case("2025-03-14 09:00", assignee=ann)  # due later today: not judged yet
    later_answer(quick, "2025-03-07 10:00", 9)  # recovered
    later_answer(slow, "2025-03-09 10:00", 10)  # before its case was resolved: does not count
    later_answer(slow, "2025-03-11 10:00", 4)  # the next answer after: still a detractor
    return quick, slow, late, fresh


def test_figures_in_total_per_assignee_and_per_segment(history):
    facts = case_facts(cph("2025-02-28 00:00"), cph("2025-03-15 00:00"), now=NOW)
    quick, slow, late, fresh = (f for f in facts)
    assert (quick.hours_to_first_contact, quick.hours_to_resolution) == (2, 9)
    assert (slow.hours_to_first_contact, slow.hours_to_resolution) == (17, 45)
    assert (quick.first_contact_in_sla, slow.first_contact_in_sla) == (True, False)
    assert (late.first_contact_in_sla, fresh.first_contact_in_sla) == (False, None)
    assert (slow.resolution_in_sla, late.resolution_in_sla, fresh.resolution_in_sla) == (
        False,
        False,  # open for 63 business hours, past the 40-hour target
        None,
    )
    groups = summarize(facts)
    (total,) = groups["total"]
    assert total.cases == 4
    assert total.first_contact.median == pytest.approx(9.5)
    assert total.first_contact.p90 == pytest.approx(15.5)
    assert (total.first_contact.in_sla, total.first_contact.judged) == (1, 3)
    assert total.resolution.median == pytest.approx(27)
    assert total.resolution.share_in_sla == pytest.approx(1 / 3)
    assert (total.answered_again, total.recovered, total.recovery_rate) == (2, 1, 0.5)
    ann, bo = groups["assignee"]
    assert (ann.label, ann.cases, ann.first_contact.share_in_sla) == ("ann@example.com", 2, 1)
    assert (bo.label, bo.cases, bo.first_contact.share_in_sla) == ("bo@example.com", 2, 0)
    assert [(g.label, g.cases) for g in groups["segment"]] == [("B2B", 1), ("B2C", 3)]
    assert groups["segment"][0].recovery_rate == 1


def test_period_limits_the_cases(history):
    assert len(case_facts(cph("2025-03-04 00:00"), cph("2025-03-15 00:00"), now=NOW)) == 2


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2030-13-01", None, "like 2026-03-31"),
        ("yesterday", None, "like 2026-03-31"),
        ("2025-03-09", "2025-02-28", "start before it ends"),
        ("2001-01-01", "2025-02-28", "ten years"),
        ("0001-01-01", "0001-01-02", "between the years"),
        ("9999-12-30", "9999-12-31", "between the years"),
    ],
)
def test_bad_periods(app, start, end, message):
    with pytest.raises(ValueError, match=message):
        parse_period(start, end)


def test_default_period_is_the_last_90_days(app):
    assert parse_period(None, None, today=dt.date(2030, 3, 31)) == (
        dt.date(2029, 12, 31),
        dt.date(2030, 3, 31),
    )


def test_the_page(client, auth, history):
    auth.login("executive")
    reply = client.get("/responsiveness?from=2025-02-28&to=2025-03-14")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200
    assert "ann@example.com" in html and "bo@example.com" in html and "B2B" in html
    # By today every case is judged: only the quick one made either target.
    assert html.count("25 %") == 2 and "50 %" in html and "1 / 2" in html
    bad = client.get("/responsiveness?from=someday")
    assert bad.status_code == 400 and "like 2026-03-31" in bad.get_data(as_text=True)


def test_export_cases_csv(runner, history):
    make_case("2025-03-06 10:00", account='=HYPERLINK("http://evil")')
    result = runner.invoke(args=["export", "cases", "--from", "2025-02-28", "--to", "2025-03-14"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 5
    assert rows[0]["business_hours_to_first_contact"] == "2.0"
    assert rows[0]["first_contact_within_sla"] == "yes"
    assert rows[0]["detractors_recovered"] == "1"
    assert (rows[2]["first_contact_at"], rows[2]["first_contact_within_sla"]) == ("", "no")
    evil = next(r for r in rows if "HYPERLINK" in r["account"])
    assert evil["account"].startswith("'=")  # spreadsheet-safe
    for row in rows:  # ISO 8601 with the offset and whole seconds
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", row["opened_at"])
    everything = runner.invoke(args=["export", "cases"])
    assert len(list(csv.DictReader(io.StringIO(everything.output)))) == 5


def test_export_summary_csv(runner, history):
    result = runner.invoke(
        args=["export", "cases", "--summary", "--from", "2025-02-28", "--to", "2025-03-14"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["group"], r["label"]) for r in rows] == [
        ("total", "All cases"),
        ("assignee", "ann@example.com"),
        ("assignee", "bo@example.com"),
        ("segment", "B2B"),
        ("segment", "B2C"),
    ]
    assert rows[0]["recovery_rate"] == "0.5" and rows[0]["cases"] == "4"


@pytest.mark.parametrize(
    "args",
    [
        ["--from", "someday"],
        ["--to", "2030-02-30"],
        ["--to", "9999-12-31"],
        ["--from", "2025-03-01", "--to", "2025-02-28"],
    ],
)
def test_export_refuses_bad_dates(runner, args):
    result = runner.invoke(args=["export", "cases", *args])
    assert result.exit_code == 2 and "Error" in result.output
