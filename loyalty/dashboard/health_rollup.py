"""The health band rollup: the accounts per band at each week's end, per segment and owner,
with their annual values (:class:`~loyalty.models.HealthBandWeek`), so the dashboard's
health chart reads a few hundred rows instead of ten thousand snapshots a week.

Kept current as the metric rollups are, by marking and counting again from the raw rows
(always right): a snapshot written, replaced or removed marks its week; an account whose
segment, owner or annual value changes marks every week it has a snapshot in. The marks
are made on every flush of the ORM, whatever code changed the rows; code that changes
snapshots with bulk statements marks the weeks itself (the health rebuild does).
:func:`refresh_stale` counts the marked weeks again (the dashboard calls it first);
:func:`rebuild` counts every week from scratch (``flask --app loyalty rollups rebuild``).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from ..db import db
from ..models import Account, HealthBandWeek, HealthSnapshot, HealthStaleWeek

#: The account columns the rollup is keyed or summed on: a change of one marks its weeks.
_ACCOUNT_FIELDS = ("segment", "owner_id", "owner", "annual_value")
_SNAPSHOT_FIELDS = ("at", "band", "account_id")
#: Weeks marked in the session's open transaction (one mark per week is enough).
_MARKED = "health_weeks_marked"


def _cents() -> t.Any:
    """An account's annual value in whole cents, rounded per row: integer sums are exact."""
    value = sa.func.coalesce(Account.annual_value, 0)
    return sa.cast(sa.func.round(value * 100), sa.BigInteger)


def _counting() -> t.Any:
    """The band counts of the snapshots, grouped as the rollup keeps them."""
    owner = sa.func.coalesce(Account.owner_id, 0)
    return (
        sa.select(
            HealthSnapshot.at,
            Account.segment,
            owner,
            HealthSnapshot.band,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(_cents()), 0),
        )
        .join(Account, Account.id == HealthSnapshot.account_id)
        .group_by(HealthSnapshot.at, Account.segment, owner, HealthSnapshot.band)
    )


def _insert(rows: Iterable[t.Sequence[t.Any]]) -> int:
    values = [
        {
            "at": at,
            "segment": segment,
            "owner_id": owner_id,
            "band": band,
            "accounts": accounts,
            "value_cents": int(cents),
        }
        for at, segment, owner_id, band, accounts, cents in rows
    ]
    if values:
        db.session.execute(sa.insert(HealthBandWeek), values)
    return len(values)


# --- marking ----------------------------------------------------------------------------------


def mark_weeks(ats: Iterable[dt.datetime], connection: t.Any = None) -> None:
    """Mark the weeks ending ``ats`` stale, in the caller's transaction (a plain append)."""
    rows = [{"at": at} for at in sorted(set(ats))]
    if rows:
        (connection or db.session.connection()).execute(sa.insert(HealthStaleWeek), rows)


def mark_snapshot_weeks(*conditions: t.Any, connection: t.Any = None) -> None:
    """Mark every week in which a snapshot meets ``conditions`` (before a bulk statement
    changes or removes them)."""
    weeks = sa.select(HealthSnapshot.at).where(*conditions).distinct()
    insert = sa.insert(HealthStaleWeek).from_select(["at"], weeks)
    (connection or db.session.connection()).execute(insert)


@event.listens_for(Session, "before_flush")
def _mark_on_flush(session: Session, flush_context: t.Any, instances: t.Any) -> None:
    """Whatever code changed them: the weeks of new, changed and removed snapshots, and of
    accounts whose segment, owner or annual value changed, count again."""
    ats: set[dt.datetime] = set()
    accounts: set[int] = set()
    for obj in session.new:
        if isinstance(obj, HealthSnapshot) and obj.at is not None:
            ats.add(obj.at)
    for obj in session.dirty:
        if isinstance(obj, HealthSnapshot):
            history = sa.inspect(obj).attrs.at.history
            if any(sa.inspect(obj).attrs[name].history.has_changes() for name in _SNAPSHOT_FIELDS):
                ats.update(at for at in (*history.deleted, obj.at) if at is not None)
        elif isinstance(obj, Account) and obj.id is not None:
            state = sa.inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in _ACCOUNT_FIELDS):
                accounts.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, HealthSnapshot) and obj.at is not None:
            ats.add(obj.at)
        elif isinstance(obj, Account) and obj.id is not None:
            accounts.add(obj.id)
    marked: set[dt.datetime] = session.info.setdefault(_MARKED, set())
    ats -= marked
    if ats or accounts:
        # Core, on the flush's own connection: an ORM statement here would flush again.
        connection = session.connection()
        mark_weeks(ats, connection)
        if accounts:
            ids = sorted(accounts)
            mark_snapshot_weeks(HealthSnapshot.account_id.in_(ids), connection=connection)
        marked.update(ats)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_marks(session: Session, *args: t.Any) -> None:
    """The marks of an ended (or rolled back) transaction are no longer this one's."""
    session.info.pop(_MARKED, None)


# --- counting ---------------------------------------------------------------------------------


def count_week(at: dt.datetime) -> None:
    """Replace the rows of the week ending ``at`` with a fresh count of its snapshots."""
    db.session.execute(sa.delete(HealthBandWeek).where(HealthBandWeek.at == at))
    _insert(db.session.execute(_counting().where(HealthSnapshot.at == at)).all())


def refresh_stale() -> int:
    """Count the stale weeks again (each in its own transaction); how many. A mark added
    meanwhile stays for the next pass; a process counting the same week at the same moment
    makes this one give way and leave the week marked."""
    weeks = db.session.execute(
        sa.select(HealthStaleWeek.at, sa.func.max(HealthStaleWeek.id))
        .group_by(HealthStaleWeek.at)
        .order_by(HealthStaleWeek.at)
    ).all()
    db.session.commit()
    counted = 0
    for at, newest in weeks:
        try:
            count_week(at)
            db.session.execute(
                sa.delete(HealthStaleWeek).where(
                    HealthStaleWeek.at == at, HealthStaleWeek.id <= newest
                )
            )
            db.session.commit()
            counted += 1
        except (IntegrityError, OperationalError):
            db.session.rollback()
    return counted


def rebuild() -> int:
    """Count every week's bands from scratch, in one pass over the snapshots; how many rows."""
    db.session.execute(sa.delete(HealthBandWeek))
    db.session.execute(sa.delete(HealthStaleWeek))
    written = _insert(db.session.execute(_counting()).all())
    db.session.commit()
    return written
