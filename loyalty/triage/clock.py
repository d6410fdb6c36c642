"""The SLA clock's figures, counted once per case and kept on it, so the responsiveness page,
``export cases``, the dashboard and the reports read a year of cases instead of recounting
each one's business hours and its detractors' next answers on every view.

A case's figures (business hours to first contact and to resolution, when resolution is
due, the recovery counts) are a pure function of its times, its flagged answers, the
contacts' later answers and the clock settings. They are marked stale when one of those
changes (a case's times or flags, a contact's new or changed answer: found at flush,
whatever code made the change) and counted again by
:func:`refresh`, which every reader calls first and the dispatcher's pass runs too. A
change of the clock settings (working hours, holidays, time zone, resolution target) makes
every case stale, since the figures carry the key of the settings they were counted under.

Whether a case met its targets depends on the moment asked, so it is judged when read, in
SQL (:func:`first_contact_in_sla`, :func:`resolution_in_sla`): one definition for every page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .. import metrics
from ..db import db, write_marks
from ..models import Case, Flag, Response
from .cases import ACTIVE_STATES
from .settings import settings

#: the settings the figures depend on; a change of any of them counts every case again
_KEY_SETTINGS = (
    "SLA_TIMEZONE",
    "SLA_WORKING_DAYS",
    "SLA_WORKING_HOURS",
    "SLA_HOLIDAYS_COUNTRY",
    "SLA_EXTRA_HOLIDAYS",
    "SLA_RESOLUTION_HOURS",
)
#: the case times whose change makes its figures stale
_CLOCK_TIMES = ("opened_at", "first_contact_at", "resolved_at")
#: an answer's fields that can change whether a detractor recovered
_RECOVERY_FIELDS = ("nps", "submitted_at", "contact_id")
_CHUNK = 1000
#: the table itself, for statements that must not go through the ORM
_CASES = t.cast(sa.Table, Case.__table__)


def clock_key() -> str:
    """A short name of the clock settings in force (the same settings, the same key)."""
    values = [repr(current_app.config.get(name)) for name in _KEY_SETTINGS]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:16]


# --- judged when read ------------------------------------------------------------------------


def first_contact_in_sla(now: dt.datetime) -> sa.ColumnElement[t.Any]:
    """True: contacted by the due time; false: contacted late, or still waiting past it;
    empty: not due yet, or closed with no contact needed."""
    return sa.case(
        (Case.first_contact_at.is_not(None), Case.first_contact_at <= Case.first_contact_due_at),
        (
            sa.and_(Case.status.in_(ACTIVE_STATES), Case.first_contact_due_at <= now),
            sa.false(),
        ),
        else_=sa.null(),
    )


def resolution_in_sla(now: dt.datetime, target_hours: float) -> sa.ColumnElement[t.Any]:
    """True: resolved within the target's business hours; false: resolved later, or still
    open past the due time; empty: open and not due yet."""
    return sa.case(
        (Case.hours_to_resolution.is_not(None), Case.hours_to_resolution <= target_hours),
        (sa.and_(Case.resolved_at.is_(None), Case.resolution_due_at <= now), sa.false()),
        else_=sa.null(),
    )


def judged(value: t.Any) -> bool | None:
    """A judgement as SQL handed it back (SQLite: 0 or 1) as a truth value or None."""
    return None if value is None else bool(value)


# --- marking stale ---------------------------------------------------------------------------


@event.listens_for(Session, "before_flush")
def _mark_stale(session: Session, flush_context: t.Any, instances: t.Any) -> None:
    """Whatever code changed them: a case whose times or flags changed is counted again, and
    so are the resolved cases of a contact with a new or changed answer (it may be the
    answer that tells whether a detractor recovered)."""
    contacts: set[int] = set()
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Case) and _changed(obj, _CLOCK_TIMES):
            _stale(obj)
        elif isinstance(obj, Flag) and _changed(obj, ("case",)) and obj.case is not None:
            _stale(obj.case)
        elif isinstance(obj, Response) and _changed(obj, _RECOVERY_FIELDS):
            contact_id = obj.contact_id or (obj.contact.id if obj.contact else None)
            if contact_id is not None:
                contacts.add(contact_id)
    if contacts:
        # Core, on the flush's own connection: an ORM statement here would flush again.
        _mark_contacts(contacts, session.connection())


def on_response_committed(sender: t.Any, *, response: Response, **_: t.Any) -> None:
    """On ``response_committed``: the first answer to a link is written without the ORM, so
    no flush saw it; its contact's resolved cases count again (at most seconds later)."""
    write_marks("clock_contacts", [response.contact_id], _mark_contacts)


def _mark_contacts(contacts: t.Iterable[int], connection: t.Any = None) -> None:
    """The resolved cases of these contacts count again."""
    theirs = (
        sa.select(Flag.case_id)
        .join(Response, Flag.response_id == Response.id)
        .where(Response.contact_id.in_(sorted(contacts)), Flag.case_id.is_not(None))
    )
    (connection or db.session.connection()).execute(
        sa.update(_CASES)
        .where(Case.id.in_(theirs), Case.resolved_at.is_not(None))
        .values(clock_key=None, clock_mark=Case.clock_mark + 1)
    )


def _changed(obj: t.Any, names: t.Iterable[str]) -> bool:
    state = sa.inspect(obj)
    return state.pending or any(state.attrs[name].history.has_changes() for name in names)


def _stale(case: Case) -> None:
    case.clock_key = None
    if not sa.inspect(case).pending:
        case.clock_mark = Case.clock_mark + 1  # in the UPDATE itself: no lost increment


# --- counting --------------------------------------------------------------------------------


def stale(key: str) -> sa.ColumnElement[bool]:
    """The cases not counted under ``key``: spelled as ranges, so the index finds them (a
    page that finds none has read nothing)."""
    return sa.or_(Case.clock_key.is_(None), Case.clock_key < key, Case.clock_key > key)


def refresh() -> int:
    """Count the figures of every stale case and commit; how many were counted.

    Each row is written only if no change marked it meanwhile (its ``clock_mark`` is what
    was read), so a count of old values never hides a newer change; that case stays stale
    for the next reader. Two processes counting at once write the same figures."""
    key = clock_key()
    query = sa.select(
        Case.id, Case.clock_mark, Case.opened_at, Case.first_contact_at, Case.resolved_at
    ).where(stale(key))
    rows = sorted(db.session.execute(query).all())  # sorted here: ORDER BY would scan
    if not rows:
        return 0
    conf = settings()
    between, add = conf.calendar.between, conf.calendar.add
    update = (
        sa.update(_CASES)
        .where(Case.id == sa.bindparam("b_id"), Case.clock_mark == sa.bindparam("b_mark"))
        .values(
            hours_to_first_contact=sa.bindparam("b_contact"),
            hours_to_resolution=sa.bindparam("b_resolution"),
            resolution_due_at=sa.bindparam("b_due", type_=Case.resolution_due_at.type),
            detractors_answered_again=sa.bindparam("b_answered"),
            detractors_recovered=sa.bindparam("b_recovered"),
            clock_key=key,
        )
    )
    for first in range(0, len(rows), _CHUNK):
        chunk = rows[first : first + _CHUNK]
        recovery = recovery_counts([row.id for row in chunk])
        values = []
        for case_id, mark, opened, contacted, resolved in chunk:
            answered, recovered = recovery.get(case_id, (0, 0))
            values.append(
                {
                    "b_id": case_id,
                    "b_mark": mark,
                    "b_contact": between(opened, contacted) if contacted else None,
                    "b_resolution": between(opened, resolved) if resolved else None,
                    "b_due": add(opened, conf.resolution_hours),
                    "b_answered": answered,
                    "b_recovered": recovered,
                }
            )
        try:
            db.session.execute(update, values)
            db.session.commit()
        except (IntegrityError, OperationalError):  # another writer holds them: next time
            db.session.rollback()
            return first
    return len(rows)


def recovery_counts(case_ids: t.Sequence[int]) -> dict[int, tuple[int, int]]:
    """For the resolved cases among ``case_ids``: per case, the detractors in it who
    answered again after it was resolved, and how many of them answered passive or promoter.

    One query: each detractor's next scored answer is a subquery on the contact's answers
    (indexed by contact and time), so it does not read every answer of their contacts."""
    later = sa.orm.aliased(Response)
    following = (
        sa.select(later.nps)
        .where(
            later.contact_id == Response.contact_id,
            later.submitted_at > Case.resolved_at,
            later.nps.is_not(None),
        )
        .order_by(later.submitted_at, later.id)
        .limit(1)
        .correlate(Response, Case)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(Case.id, Response.contact_id, following)
        .join(Flag, Flag.case_id == Case.id)
        .join(Response, Flag.response_id == Response.id)
        .where(
            Case.id.in_(case_ids),
            Case.resolved_at.is_not(None),
            Response.nps <= metrics.DETRACTOR_MAX,
        )
        .distinct()
    )
    result: dict[int, tuple[int, int]] = {}
    for case_id, _contact_id, next_nps in rows:
        if next_nps is None:
            continue  # not answered again (yet)
        answered, recovered = result.get(case_id, (0, 0))
        result[case_id] = (answered + 1, recovered + (not metrics.is_detractor(next_nps)))
    return result


def on_dispatch_tick(sender: t.Any, **_: t.Any) -> None:
    """On ``dispatch_tick``: count the stale cases, so pages seldom find any to count."""
    try:
        refresh()
    except Exception:  # the dispatcher keeps going; the next reader counts them
        db.session.rollback()
        current_app.logger.exception("counting the cases' SLA figures failed")
