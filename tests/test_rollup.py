"""Account health in the database: histories as they were known, today's score kept current
by answers and the dispatcher's tick, weekly snapshots rebuilt idempotently, the backtest."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from loyalty.accounts import rollup
from loyalty.db import db
from loyalty.models import Account, HealthSnapshot, HealthWarning, utcnow
from loyalty.outreach.dispatch import send_due

NOW = utcnow()
DAY = dt.timedelta(days=1)


def account_named(name: str) -> Account:
    return db.session.scalars(sa.select(Account).where(Account.name == name)).one()


def test_an_answer_marks_the_account_stale_and_the_tick_scores_it(app, stored_answer):
    account = stored_answer(nps=10)
    account.health_stale = False
    db.session.commit()
    stored_answer(nps=2, reason="Terrible, we will cancel our contract.")
    db.session.expire_all()
    assert account_named("Acme A/S").health_stale is True
    send_due()  # the dispatcher's pass: today's health of the stale accounts
    db.session.expire_all()
    scored = account_named("Acme A/S")
    assert scored.health_stale is False and scored.health_score is not None
    signals = {c["signal"] for c in rollup.contributions(scored.health_contributions)}
    assert "churn_cues" in signals


def test_a_happy_account_scores_higher_than_an_angry_one(app, stored_answer):
    for days in (10, 40, 70):
        happy, angry = "Wonderful service, thank you.", "Awful. Nobody answers the phone."
        stored_answer("Happy ApS", days_ago=days, nps=10, reason=happy, segment="b2b")
        stored_answer("Angry ApS", days_ago=days, nps=1, reason=angry, segment="b2b")
    ids = db.session.scalars(sa.select(Account.id)).all()
    rollup.refresh(ids)
    db.session.commit()
    happy, angry = account_named("Happy ApS"), account_named("Angry ApS")
    assert happy.health_score > angry.health_score
    assert happy.health_band == "healthy" and angry.health_band == "at_risk"


def test_history_is_rebuilt_as_it_was_known_each_week(app, stored_answer):
    stored_answer(days_ago=100, nps=10)
    stored_answer(days_ago=90, nps=10)
    stored_answer(days_ago=5, nps=0, reason="We are switching to a competitor.")
    tz = dt.UTC
    ends = rollup.week_ends((NOW - 60 * DAY).date(), (NOW - 10 * DAY).date(), tz)
    written, _ = rollup.rebuild(ends)
    assert written == len(ends)
    snapshots = db.session.scalars(sa.select(HealthSnapshot).order_by(HealthSnapshot.at)).all()
    # The angry stored_answer came after every one of these weeks: none of them knows of it.
    for snapshot in snapshots:
        signals = {c["signal"] for c in json.loads(snapshot.contributions)}
        assert "churn_cues" not in signals
    assert all(s.band != "at_risk" for s in snapshots)


def test_a_rebuild_run_twice_writes_the_same(app, stored_answer):
    for days, nps in ((300, 10), (200, 9), (120, 3), (60, 1), (20, 0)):
        stored_answer(days_ago=days, nps=nps, reason="Bad service" if nps < 5 else "Good")
    ends = rollup.week_ends((NOW - 330 * DAY).date(), NOW.date(), dt.UTC)

    def state():
        snaps = db.session.execute(
            sa.select(HealthSnapshot.at, HealthSnapshot.score).order_by(HealthSnapshot.at)
        ).all()
        warns = db.session.execute(
            sa.select(HealthWarning.kind, HealthWarning.raised_at, HealthWarning.status).order_by(
                HealthWarning.raised_at, HealthWarning.kind
            )
        ).all()
        return snaps, warns

    first = rollup.rebuild(ends)
    before = state()
    assert rollup.rebuild(ends) == first and state() == before
    kinds = {w.kind for w in db.session.scalars(sa.select(HealthWarning))}
    assert "falling" in kinds or "at_risk" in kinds


def test_one_open_warning_per_account_and_kind(app, stored_answer):
    stored_answer(days_ago=3, nps=0, reason="We will cancel and switch to a competitor.")
    account = account_named("Acme A/S")
    for _ in range(3):
        rollup.refresh([account.id])
        db.session.commit()
    open_ = db.session.execute(
        sa.select(HealthWarning.kind, sa.func.count())
        .where(HealthWarning.status == "open")
        .group_by(HealthWarning.kind)
    ).all()
    assert open_ and all(n == 1 for _, n in open_)


def test_churned_accounts_leave_todays_scoring(app, stored_answer):
    account = stored_answer(nps=2)
    account.churned_at = NOW - 2 * DAY
    db.session.commit()
    assert rollup.refresh_stale() == 0
    assert db.session.get(Account, account.id).health_score is None


def test_the_backtest_counts_a_churner_caught_in_time(app, stored_answer):
    stored_answer("Leaving A/S", days_ago=400, nps=10)
    stored_answer("Leaving A/S", days_ago=380, nps=9)
    for days in (250, 220, 200):
        stored_answer("Leaving A/S", days_ago=days, nps=1, reason="Terrible. We will not renew.")
    stored_answer("Staying A/S", days_ago=300, nps=10)
    stored_answer("Staying A/S", days_ago=100, nps=9)
    leaving = account_named("Leaving A/S")
    leaving.churned_at = NOW - 100 * DAY
    db.session.commit()
    start, end = NOW - 420 * DAY, NOW
    rollup.rebuild(rollup.week_ends(start.date(), end.date(), dt.UTC))
    result = rollup.backtest(start, end, lead_days=60, horizon_days=270)
    assert result["health"]["churners"] == 1 and result["health"]["caught"] == 1
    assert result["health"]["median_lead_days"] >= 60
    assert set(result) == {"health", "nps_below_zero", "latest_detractor"}
