"""Gathers each account's history, stores its health and raises the early warnings.

Three ways in, one way of computing (:func:`loyalty.accounts.health.assess`):

- :func:`refresh` recomputes today's score of some accounts (those an answer or a case
  marked ``health_stale``, on each dispatcher pass) and raises or clears their warnings;
- :func:`rebuild` writes the weekly snapshots of a period from the stored data as it was
  known at each week's end, raising the warnings it would have raised then (idempotent);
- the CLI and the pages read what these stored.

Histories are read with three queries for any number of accounts (answers, cases, delivered
invitations), streamed, so a rebuild of ten thousand accounts does not load one at a time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import typing as t

import sqlalchemy as sa
from flask import current_app

from ..dashboard import health_rollup
from ..db import db, write_marks
from ..models import (
    Account,
    Answer,
    Case,
    Contact,
    HealthSnapshot,
    HealthWarning,
    Invitation,
    Response,
    utcnow,
)
from . import backtest as scoring
from . import health
from .warnings import WarningError as WarningError  # re-exported for the pages
from .warnings import act_on_warning as act_on_warning
from .warnings import notify_owners, raise_warnings
from .warnings import warning_reasons as warning_reasons

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

WEEK = dt.timedelta(days=7)
log = logging.getLogger(__name__)


def rules() -> dict[str, t.Any]:
    """The checked ``HEALTH`` rules of the app (checked at start-up by ``create_app``)."""
    return health.parse_rules(current_app.config["HEALTH"])


# --- reading histories ---------------------------------------------------------------------


def histories(
    account_ids: Sequence[int] | None = None, *, until: dt.datetime | None = None
) -> dict[int, health.AccountHistory]:
    """Each account's answers, cases and delivered invitations (up to ``until``)."""
    accounts = sa.select(Account.id, Account.segment)
    if account_ids is not None:
        accounts = accounts.where(Account.id.in_(account_ids))
    segment = dict(db.session.execute(accounts).all())
    ids = list(segment)
    answers: dict[int, list[health.Answer]] = {i: [] for i in ids}
    cases: dict[int, list[health.CaseFact]] = {i: [] for i in ids}
    deliveries: dict[int, list[health.Delivery]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        _read_answers(chunk, until, answers)
        _read_cases(chunk, until, cases)
        _read_deliveries(chunk, until, deliveries)
    return {
        i: health.AccountHistory(
            segment=segment[i],
            answers=tuple(answers[i]),
            cases=tuple(cases[i]),
            deliveries=tuple(deliveries[i]),
        )
        for i in ids
    }


def _chunks(ids: list[int], size: int = 900) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _read_answers(
    chunk: list[int], until: dt.datetime | None, into: dict[int, list[health.Answer]]
) -> None:
    comments = (
        sa.select(
            Answer.response_id,
            sa.func.avg(Answer.polarity).label("polarity"),
            # cues of every comment, comma-joined; parsed below
            sa.func.max(Answer.cues).label("cues"),
        )
        .where(Answer.text.is_not(None))
        .group_by(Answer.response_id)
        .subquery()
    )
    query = (
        sa.select(
            Response.account_id,
            Response.submitted_at,
            Response.contact_id,
            Contact.is_decision_maker,
            Response.nps,
            Response.csat,
            comments.c.polarity,
            comments.c.cues,
        )
        .join(Contact, Contact.id == Response.contact_id)
        .outerjoin(comments, comments.c.response_id == Response.id)
        .where(Response.account_id.in_(chunk))
        .order_by(Response.account_id, Response.submitted_at)
        .execution_options(yield_per=5000)
    )
    if until is not None:
        query = query.where(Response.submitted_at <= until)
    for account_id, at, contact_id, dm, nps, csat, polarity, cues in db.session.execute(query):
        into[account_id].append(
            health.Answer(
                at=at,
                contact_id=contact_id,
                decision_maker=bool(dm),
                nps=nps,
                csat=csat,
                polarity=None if polarity is None else float(polarity),
                cues=frozenset(c for c in (cues or "").split(",") if c),
            )
        )


def _read_cases(
    chunk: list[int], until: dt.datetime | None, into: dict[int, list[health.CaseFact]]
) -> None:
    query = sa.select(
        Case.account_id,
        Case.opened_at,
        Case.first_contact_due_at,
        Case.first_contact_at,
        Case.resolved_at,
        Case.outcome,
    ).where(Case.account_id.in_(chunk))
    if until is not None:
        query = query.where(Case.opened_at <= until)
    for account_id, opened, due, contacted, resolved, outcome in db.session.execute(query):
        into[account_id].append(health.CaseFact(opened, due, contacted, resolved, outcome))


def _read_deliveries(
    chunk: list[int], until: dt.datetime | None, into: dict[int, list[health.Delivery]]
) -> None:
    query = (
        sa.select(Contact.account_id, Invitation.sent_at, Invitation.answered_at)
        .join(Contact, Contact.id == Invitation.contact_id)
        .where(Contact.account_id.in_(chunk), Invitation.sent_at.is_not(None))
    )
    if until is not None:
        query = query.where(Invitation.sent_at <= until)
    for account_id, sent_at, answered_at in db.session.execute(query):
        if sent_at is not None:  # the query asks for sent ones; the type cannot know
            into[account_id].append(health.Delivery(sent_at, answered_at))


# --- today ---------------------------------------------------------------------------------


def mark_stale(account_id: int) -> None:
    """Something the score reads changed; the next dispatcher pass recomputes it."""
    db.session.execute(
        sa.update(Account)
        .where(Account.id == account_id, Account.health_stale.is_(False))
        .values(health_stale=True)
        .execution_options(synchronize_session=False)
    )


def on_response_saved(sender: t.Any, *, response: Response, **_: t.Any) -> None:
    """On ``response_committed``: the account's health is out of date (marked once for a
    whole follow-up batch)."""
    write_marks("health_stale_accounts", [response.account_id], _mark_all_stale)


def _mark_all_stale(account_ids: set[int]) -> None:
    db.session.connection().execute(
        sa.update(_ACCOUNTS)
        .where(_ACCOUNTS.c.id.in_(sorted(account_ids)), _ACCOUNTS.c.health_stale.is_(False))
        .values(health_stale=True)
    )


_ACCOUNTS = t.cast(sa.Table, Account.__table__)


def on_dispatch_tick(sender: t.Any, *, now: dt.datetime | None = None, **_: t.Any) -> None:
    """On ``dispatch_tick``: today's health of the accounts that changed, then the emails
    about the warnings that raised. Never raises: the invitations must keep going out."""
    try:
        while refresh_stale(now=now):
            db.session.commit()
        notify_owners(now=now)
    except Exception:  # noqa: BLE001 - logged; the next pass tries again
        db.session.rollback()
        log.exception("account health failed in this dispatcher pass")


def refresh_stale(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Recompute the accounts marked stale (a batch at a time); how many were done."""
    ids = list(
        db.session.scalars(
            sa.select(Account.id)
            .where(Account.health_stale.is_(True), Account.churned_at.is_(None))
            .order_by(Account.id)
            .limit(limit)
        )
    )
    if ids:
        refresh(ids, now=now)
    return len(ids)


def refresh(account_ids: Sequence[int], *, now: dt.datetime | None = None) -> list[HealthWarning]:
    """Today's health of these accounts, stored with its contributions; returns the warnings
    raised (the caller commits; the owners are told after the commit)."""
    now = now or utcnow()
    conf = rules()
    raised: list[HealthWarning] = []
    for account_id, history in histories(account_ids).items():
        account = db.session.get(Account, account_id)
        if account is None:
            continue
        result = health.assess(history, now, conf)
        earlier = _earlier_scores(account_id, now, conf)
        if account.health_at is not None and account.health_score is not None:
            earlier.append((account.health_at, account.health_score, account.health_band or ""))
        account.health_score, account.health_band = result.score, result.band
        account.health_contributions = contributions_json(result)
        account.health_at, account.health_stale = now, False
        if account.churned_at is None:
            raised += raise_warnings(account_id, result, now, earlier, conf)
    return raised


def _earlier_scores(
    account_id: int, at: dt.datetime, conf: t.Mapping[str, t.Any]
) -> list[tuple[dt.datetime, int, str]]:
    since = at - conf["fall_days"] * health.DAY
    rows = db.session.execute(
        sa.select(HealthSnapshot.at, HealthSnapshot.score, HealthSnapshot.band)
        .where(
            HealthSnapshot.account_id == account_id,
            HealthSnapshot.at >= since,
            HealthSnapshot.at < at,
        )
        .order_by(HealthSnapshot.at)
    )
    return list(rows)


def contributions_json(result: health.Health) -> str:
    return json.dumps(
        [
            {"signal": c.signal, "points": c.points, "detail": c.detail}
            for c in result.contributions
        ],
        ensure_ascii=False,
    )


def contributions(stored: str | None) -> list[dict[str, t.Any]]:
    """Stored contributions as a list of {signal, points, detail}; empty when unreadable."""
    try:
        value = json.loads(stored) if stored else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


# --- history -------------------------------------------------------------------------------


def week_ends(first: dt.date, last: dt.date, tz: dt.tzinfo) -> list[dt.datetime]:
    """The ends of the weeks from ``first`` to ``last``: local midnight starting each Monday."""
    monday = first + dt.timedelta(days=(7 - first.weekday()) % 7)
    ends = []
    while monday <= last + dt.timedelta(days=1):
        ends.append(dt.datetime.combine(monday, dt.time(), tz).astimezone(dt.UTC))
        monday += dt.timedelta(days=7)
    return ends


def rebuild(
    ends: Sequence[dt.datetime],
    *,
    progress: t.Callable[[int], t.Any] = lambda n: None,
    batch: int = 500,
) -> tuple[int, int]:
    """Write each account's snapshot at each of ``ends`` from what was known then, and the
    warnings it would have raised; committing a batch of accounts at a time.

    Idempotent: the period's snapshots and the warnings no person has touched are replaced;
    a warning someone acknowledged stays, and blocks a second one of its kind while open.
    Returns (snapshots written, warnings raised).
    """
    conf = rules()
    ends = sorted(ends)
    if not ends:
        return 0, 0
    ids = list(db.session.scalars(sa.select(Account.id).order_by(Account.id)))
    written = raised = 0
    for chunk in _chunks(ids, batch):
        churned = dict(
            db.session.execute(
                sa.select(Account.id, Account.churned_at).where(Account.id.in_(chunk))
            ).all()
        )
        created = dict(
            db.session.execute(
                sa.select(Account.id, Account.created_at).where(Account.id.in_(chunk))
            ).all()
        )
        replaced = (
            HealthSnapshot.account_id.in_(chunk),
            HealthSnapshot.at >= ends[0],
            HealthSnapshot.at <= ends[-1],
        )
        # A bulk delete passes no flush: the band rollup's weeks are marked here (the new
        # snapshots mark theirs as they are flushed).
        health_rollup.mark_snapshot_weeks(*replaced)
        db.session.execute(sa.delete(HealthSnapshot).where(*replaced))
        # Replayed from scratch: the warnings of these weeks that no person has touched.
        db.session.execute(
            sa.delete(HealthWarning).where(
                HealthWarning.account_id.in_(chunk),
                HealthWarning.raised_at >= ends[0],
                HealthWarning.raised_at <= ends[-1],
                HealthWarning.acted_by_id.is_(None),
            )
        )
        for account_id, history in histories(chunk, until=ends[-1]).items():
            earlier = _earlier_scores(account_id, ends[0], conf)
            since = min(
                [created[account_id]]
                + [a.at for a in history.answers[:1]]
                + [d.sent_at for d in history.deliveries]
                + [c.opened_at for c in history.cases]
            )
            for at in ends:
                gone = churned.get(account_id)
                if (gone is not None and gone <= at) or since > at:
                    continue  # not a customer (yet, or any more) that week
                result = health.assess(history, at, conf)
                db.session.add(
                    HealthSnapshot(
                        account_id=account_id,
                        at=at,
                        score=result.score,
                        band=result.band,
                        contributions=contributions_json(result),
                    )
                )
                written += 1
                raised += len(_raise_as_of(account_id, result, at, earlier, conf))
                earlier.append((at, result.score, result.band))
                earlier = [e for e in earlier if e[0] >= at - conf["fall_days"] * health.DAY]
        db.session.commit()
        progress(len(chunk))
    health_rollup.refresh_stale()  # so the next dashboard counts nothing
    return written, raised


def _raise_as_of(
    account_id: int,
    result: health.Health,
    at: dt.datetime,
    earlier: list[tuple[dt.datetime, int, str]],
    conf: t.Mapping[str, t.Any],
) -> list[HealthWarning]:
    """:func:`_raise` as the week ending ``at`` saw it."""
    db.session.flush()
    raised = raise_warnings(account_id, result, at, earlier, conf)
    for warning in raised:
        # The same warning raised later, by today's scores, before this history existed:
        # the earlier one is that warning, still open; nobody has touched the later one.
        db.session.execute(
            sa.delete(HealthWarning).where(
                HealthWarning.account_id == account_id,
                HealthWarning.kind == warning.kind,
                HealthWarning.raised_at > at,
                HealthWarning.status == "open",
                HealthWarning.note.is_(None),
            )
        )
    return raised


# --- the backtest --------------------------------------------------------------------------


def backtest(
    start: dt.datetime, end: dt.datetime, *, lead_days: int = 60, horizon_days: int = 270
) -> dict[str, t.Any]:
    """The stored warnings (from ``rebuild``) scored against recorded churn, beside the naive
    rules on the same weeks."""
    outcomes = [
        scoring.AccountOutcome(account_id, value, churned_at)
        for account_id, value, churned_at in db.session.execute(
            sa.select(Account.id, Account.annual_value, Account.churned_at)
        )
    ]
    warnings = db.session.execute(
        sa.select(HealthWarning.account_id, HealthWarning.raised_at).where(
            HealthWarning.raised_at >= start, HealthWarning.raised_at <= end
        )
    )

    def score(fired: t.Iterable[tuple[int, dt.datetime]]) -> dict[str, t.Any]:
        return scoring.evaluate(
            fired, outcomes, start=start, end=end, lead_days=lead_days, horizon_days=horizon_days
        ).as_dict()

    result = {"health": score(warnings)}
    ends = _weekly(start, end)
    hist = histories(until=end)
    churned = {o.account_id: o.churned_at for o in outcomes}
    for rule in ("nps_below_zero", "latest_detractor"):
        fired = [
            (account_id, at)
            for account_id, history in hist.items()
            for at in scoring.naive_warnings(history, ends, rule)
            if churned.get(account_id) is None or at < t.cast(dt.datetime, churned[account_id])
        ]
        result[rule] = score(fired)
    return result


def _weekly(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    ends, at = [], start
    while at <= end:
        ends.append(at)
        at += WEEK
    return ends
