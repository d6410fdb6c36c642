"""The SLA clock's figures kept on each case: counted once, counted again when the case, its
flags, its contacts' answers or the clock settings change, never overwritten by a count of
old values."""

from __future__ import annotations

from types import SimpleNamespace

import sqlalchemy as sa
from test_cases import staff
from test_responsiveness import NOW, cph, later_answer, make_case

from loyalty import signals
from loyalty.db import db
from loyalty.models import Case
from loyalty.outreach.invitations import create_invitation
from loyalty.specs import surveys
from loyalty.survey import follow_ups
from loyalty.survey.responses import save_first
from loyalty.triage import cases, clock
from loyalty.triage.responsiveness import case_facts

PERIOD = (cph("2025-03-01 00:00"), cph("2025-03-15 00:00"))


def stored(case_id: int) -> sa.Row:
    return db.session.execute(
        sa.select(
            Case.hours_to_first_contact,
            Case.hours_to_resolution,
            Case.resolution_due_at,
            Case.detractors_answered_again,
            Case.detractors_recovered,
            Case.clock_key,
        ).where(Case.id == case_id)
    ).one()


def stale_count() -> int:
    key = clock.clock_key()
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Case)
        .where(sa.or_(Case.clock_key.is_(None), Case.clock_key != key))  # not clock.stale
    )


def test_figures_are_counted_once_and_kept(app):
    # Monday 09:00, contacted 11:00, resolved Tuesday 09:00: 2 and 9 business hours.
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00", resolved="2025-03-04 09:00")
    assert stored(case.id).clock_key is None  # new: not counted yet
    assert clock.refresh() == 1
    row = stored(case.id)
    assert (row.hours_to_first_contact, row.hours_to_resolution) == (2, 9)
    # 40 business hours (9 a day) after Monday 09:00 is Friday 13:00.
    assert row.resolution_due_at == cph("2025-03-07 13:00")
    assert row.clock_key == clock.clock_key()
    assert clock.refresh() == 0  # nothing changed: nothing to count


def test_a_staff_action_counts_the_case_again(app):
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00")
    clock.refresh()
    assert stored(case.id).hours_to_resolution is None
    cases.resolve(case, staff(), "recovered", now=cph("2025-03-05 10:00"))
    db.session.commit()
    assert stored(case.id).clock_key is None
    (fact,) = case_facts(*PERIOD, now=NOW)
    assert fact.hours_to_resolution == 19  # Mon 8 h + Tue 9 h + Wed 2 h
    assert fact.resolution_in_sla is True


def test_a_later_answer_counts_the_recovery_again(app):
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00", resolved="2025-03-04 09:00")
    other = make_case("2025-03-03 10:00", contacted="2025-03-03 11:00", resolved="2025-03-04 09:00")
    clock.refresh()
    assert stored(case.id).detractors_answered_again == 0
    later_answer(case, "2025-03-06 10:00", 9)  # written straight to the table: still found
    assert stored(case.id).clock_key is None
    assert stored(other.id).clock_key is not None  # another contact's case is left alone
    facts = {f.id: f for f in case_facts(*PERIOD, now=NOW)}
    assert (facts[case.id].detractors_answered_again, facts[case.id].detractors_recovered) == (
        1,
        1,
    )
    assert facts[other.id].detractors_answered_again == 0


def test_a_first_answer_to_a_link_counts_the_recovery_again_in_its_follow_up(app):
    # A first answer is written without the ORM, so no flush sees it; its follow-up does.
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00", resolved="2025-03-04 09:00")
    clock.refresh()
    contact = case.flags[0].response.contact
    invitation = create_invitation(contact, "post-sale")
    db.session.commit()
    link = SimpleNamespace(
        invitation_id=invitation.id,
        contact_id=contact.id,
        account_id=contact.account_id,
        language="da",
    )
    save_first(
        link, surveys(app)["post-sale"], {"nps": 9}, complete=True, now=cph("2025-03-06 10:00")
    )
    db.session.commit()
    assert stored(case.id).clock_key is not None  # the answer alone marks nothing
    assert follow_ups.process_pending() == 1
    assert stored(case.id).clock_key is None
    (fact,) = case_facts(*PERIOD, now=NOW)
    assert (fact.detractors_answered_again, fact.detractors_recovered) == (1, 1)


def test_changed_clock_settings_count_every_case_again(app):
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00")
    clock.refresh()
    assert stored(case.id).hours_to_first_contact == 2
    app.config["SLA_WORKING_HOURS"] = "10:00-17:00"
    assert stale_count() == 1
    (fact,) = case_facts(*PERIOD, now=NOW)
    assert fact.hours_to_first_contact == 1  # the working day starts at 10:00 now
    assert stale_count() == 0


def test_a_count_of_old_values_leaves_a_newer_change_marked(app):
    """A change committed while a count was running wins: the case stays stale."""
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00")
    engine = db.engine
    interleaved = []

    def change_meanwhile(conn, cursor, statement, parameters, context, executemany):
        if "SET hours_to_first_contact" in statement and not interleaved:
            interleaved.append(True)
            cursor.execute("UPDATE cases SET clock_mark = clock_mark + 1")

    sa.event.listen(engine, "before_cursor_execute", change_meanwhile)
    try:
        clock.refresh()
    finally:
        sa.event.remove(engine, "before_cursor_execute", change_meanwhile)
    assert interleaved
    assert stored(case.id).clock_key is None  # not written over the newer mark
    assert clock.refresh() == 1
    assert stored(case.id).hours_to_first_contact == 2


def test_the_dispatcher_pass_counts_stale_cases(app):
    make_case("2025-03-03 09:00", contacted="2025-03-03 11:00")
    make_case("2025-03-04 09:00")
    assert stale_count() == 2
    signals.dispatch_tick.send(app, now=NOW)
    assert stale_count() == 0


def test_a_flag_joining_a_case_counts_it_again(app):
    case = make_case("2025-03-03 09:00", contacted="2025-03-03 11:00", resolved="2025-03-04 09:00")
    other = make_case("2025-03-03 10:00")
    clock.refresh()
    other.flags[0].case = case
    db.session.commit()
    assert stored(case.id).clock_key is None
