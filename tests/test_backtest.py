"""The early warnings against churn on simulated portfolios (``tests/simulation.py``): the
weekly history rebuilt as it was known, then ``rollup.backtest``; the product's targets
(recall at least 0.80 at precision at least 0.70, median lead at least 60 days) and beating
the naive rules on the same weeks. Also ``backtest.evaluate`` on hand-made warnings.

The portfolios are built once for the module: a few seeds and two mixes, 150 accounts and
two years each, small enough to be quick; the benchmark runs the same generator larger.
"""

from __future__ import annotations

import datetime as dt
import shutil
import typing as t
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from simulation import ARCHETYPES, MIXES, Portfolio, simulate

from loyalty import create_app
from loyalty.accounts import backtest, rollup
from loyalty.db import db
from loyalty.models import Account, Answer, Case, Contact, Invitation, Response

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
#: (seed, mix): three seeds, two mixes
RUNS = [(1, "balanced"), (2, "troubled"), (3, "balanced"), (4, "troubled")]
ACCOUNTS = 150
TARGET_RECALL, TARGET_PRECISION, TARGET_LEAD = 0.80, 0.70, 60


class Run(t.NamedTuple):
    seed: int
    mix: str
    portfolio: Portfolio
    result: dict[str, dict[str, t.Any]]
    stored: dict[str, t.Any]


def _config(tmp: Path, url: str) -> dict[str, t.Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "DATABASE_URL": url,
        "INSTANCE_PATH": tmp,
        "MAIL_URL": f"outbox:{tmp / 'outbox'}",
        "BASE_URL": "http://survey.test",
    }


def _empty(url: str) -> None:
    """PostgreSQL (``LOYALTY_TEST_DATABASE_URL``): one database for all, emptied first."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = conn.scalars(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename != 'alembic_version'"
            )
        ).all()
        if tables:
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def _run(seed: int, mix: str, template: str, tmp: Path) -> Run:
    if "://" in template:
        url = template
        _empty(url)
    else:
        path = tmp / f"portfolio-{seed}-{mix}.db"
        shutil.copy(template, path)
        url = f"sqlite:///{path}"
    app = create_app(_config(tmp, url))
    with app.app_context():
        portfolio = simulate(accounts=ACCOUNTS, seed=seed, mix=MIXES[mix], now=NOW)
        ends = rollup.week_ends(portfolio.backtest_start.date(), NOW.date(), dt.UTC)
        ends = [e for e in ends if e <= NOW]
        rollup.rebuild(ends)
        result = rollup.backtest(ends[0], ends[-1], lead_days=60, horizon_days=270)
        stored = _stored(portfolio)
        db.session.remove()
        db.engine.dispose()
    if "://" in template:
        _empty(url)  # the next test starts from an empty database, as conftest's do
    return Run(seed, mix, portfolio, result, stored)


def _stored(portfolio: Portfolio) -> dict[str, t.Any]:
    """What the simulation wrote, read back, for the checks of the generator itself."""
    session = db.session
    churned = dict(session.execute(sa.select(Account.id, Account.churned_at)).all())
    return {
        "churned": {i: at for i, at in churned.items() if at is not None},
        "segments": dict(
            session.execute(
                sa.select(Account.segment, sa.func.count()).group_by(Account.segment)
            ).all()
        ),
        "languages": set(session.scalars(sa.select(Response.language).distinct())),
        "deciders_b2b": session.scalar(
            sa.select(sa.func.count(sa.distinct(Contact.account_id)))
            .join(Account, Account.id == Contact.account_id)
            .where(Contact.is_decision_maker.is_(True), Account.segment == "b2b")
        ),
        "deciders_b2c": session.scalar(
            sa.select(sa.func.count(Contact.id))
            .join(Account, Account.id == Contact.account_id)
            .where(Contact.is_decision_maker.is_(True), Account.segment == "b2c")
        ),
        "cues": dict(
            session.execute(
                sa.select(Answer.cues, sa.func.count())
                .where(Answer.cues.is_not(None))
                .group_by(Answer.cues)
            ).all()
        ),
        "scored": session.scalar(
            sa.select(sa.func.count(Answer.id)).where(
                Answer.text.is_not(None), Answer.polarity.is_not(None)
            )
        ),
        "texts": session.scalar(sa.select(sa.func.count(Answer.id))),
        "unanswered": session.scalar(
            sa.select(sa.func.count(Invitation.id)).where(
                Invitation.sent_at.is_not(None), Invitation.answered_at.is_(None)
            )
        ),
        "answered_after_churn": session.scalar(
            sa.select(sa.func.count(Response.id))
            .join(Account, Account.id == Response.account_id)
            .where(Account.churned_at.is_not(None), Response.submitted_at > Account.churned_at)
        ),
        "outcomes": set(session.scalars(sa.select(Case.outcome).distinct())),
    }


@pytest.fixture(scope="module")
def runs(migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> list[Run]:
    tmp = tmp_path_factory.mktemp("backtest")
    return [_run(seed, mix, migrated_template, tmp) for seed, mix in RUNS]


def _f1(figures: dict[str, t.Any]) -> float:
    recall, precision = figures["recall"] or 0.0, figures["precision"] or 0.0
    return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def _pooled(runs: list[Run], rule: str = "health") -> dict[str, float]:
    figures = [r.result[rule] for r in runs]
    return {
        "recall": sum(f["caught"] for f in figures) / sum(f["churners"] for f in figures),
        "precision": sum(f["warned_churned"] for f in figures) / sum(f["warned"] for f in figures),
    }


def _table(runs: list[Run]) -> str:
    """The figures, for the report when an assertion fails."""
    lines = []
    for r in runs:
        cells = [
            f"{rule} R {f['recall']:.2f} P {f['precision']:.2f} lead {f['median_lead_days']}"
            for rule, f in r.result.items()
        ]
        lines.append(f"seed {r.seed} {r.mix}: " + " | ".join(cells))
    return "\n".join(lines)


# --- the targets -------------------------------------------------------------------------------


def test_health_warnings_meet_the_targets(runs: list[Run]) -> None:
    """Recall and precision over all portfolios (each has some 50 churners, too few to
    judge a rate on its own), the lead on each, and no portfolio far off."""
    pooled = _pooled(runs)
    assert pooled["recall"] >= TARGET_RECALL, _table(runs)
    assert pooled["precision"] >= TARGET_PRECISION, _table(runs)
    for r in runs:
        figures = r.result["health"]
        assert figures["median_lead_days"] >= TARGET_LEAD, _table(runs)
        assert figures["recall"] >= TARGET_RECALL - 0.1, _table(runs)
        assert figures["precision"] >= TARGET_PRECISION - 0.1, _table(runs)
    for mix in {mix for _, mix in RUNS}:
        of_mix = _pooled([r for r in runs if r.mix == mix])
        assert of_mix["recall"] >= TARGET_RECALL - 0.05, _table(runs)
        assert of_mix["precision"] >= TARGET_PRECISION - 0.05, _table(runs)


@pytest.mark.parametrize("rule", ["nps_below_zero", "latest_detractor"])
def test_health_beats_the_naive_rules(runs: list[Run], rule: str) -> None:
    for r in runs:
        health, naive = r.result["health"], r.result[rule]
        assert _f1(health) > _f1(naive) + 0.1, _table(runs)
        assert health["precision"] > naive["precision"], _table(runs)
    # Where a naive rule catches more, it pays for it: at its precision health would not
    # need to warn that often.
    pooled, naive = _pooled(runs), _pooled(runs, rule)
    assert pooled["precision"] - naive["precision"] > 0.15, _table(runs)
    assert pooled["recall"] > naive["recall"] - 0.1, _table(runs)


def test_revenue_is_split_into_caught_and_missed(runs: list[Run]) -> None:
    for r in runs:
        figures = r.result["health"]
        churned = sum(
            a.annual_value
            for a in r.portfolio.accounts.values()
            if a.churned_at is not None and a.churned_at >= r.portfolio.backtest_start
        )
        total = figures["revenue_caught"] + figures["revenue_missed"]
        assert total == pytest.approx(float(churned), rel=0.05)
        assert figures["revenue_caught"] > figures["revenue_missed"]


# --- the generator: what it wrote is what it says ----------------------------------------------


def test_the_portfolio_is_what_the_truth_says(runs: list[Run]) -> None:
    for r in runs:
        truth, stored = r.portfolio, r.stored
        assert stored["churned"] == truth.churned() and truth.churned()
        counts = truth.counts()
        for archetype, weight in truth.mix.items():  # the mix, normalised
            assert abs(counts.get(archetype, 0) - weight * ACCOUNTS) <= 1
        assert set(counts) <= set(ARCHETYPES)
        # both segments, both languages; every B2B account has a decision maker, no B2C one
        assert set(stored["segments"]) == {"b2b", "b2c"}
        assert stored["languages"] == {"da", "en"}
        assert stored["deciders_b2b"] == stored["segments"]["b2b"]
        assert stored["deciders_b2c"] == 0
        # comments scored as the survey scores them, with the cues the scorer knows
        assert stored["scored"] == stored["texts"] > 0
        # silence is not answering invitations that went out; nobody answers after leaving
        assert stored["unanswered"] > 0 and stored["answered_after_churn"] == 0
        assert {"recovered", "not_recovered", "no_action_needed"} <= stored["outcomes"]
    # the cues the scorer knows, across the portfolios (a small one may lack one kind)
    cues = {c for r in runs for joined in r.stored["cues"] for c in joined.split(",")}
    assert {"not_renew", "switch_competitor", "cancel", "refund"} <= cues


def test_churn_comes_months_after_the_trouble_began(runs: list[Run]) -> None:
    leads = [
        (a.churned_at - a.trouble_at).days
        for r in runs
        for a in r.portfolio.accounts.values()
        if a.churned_at is not None and a.trouble_at is not None
    ]
    assert min(leads) >= 14 and sorted(leads)[len(leads) // 2] >= 120
    # Some decliners stay, and some churners never looked troubled.
    everyone = [a for r in runs for a in r.portfolio.accounts.values()]
    assert any(a.archetype == "sliding" and a.churned_at is None for a in everyone)
    assert any(a.archetype == "surprise" and a.trouble_at is None for a in everyone)


def test_the_same_seed_gives_the_same_portfolio(app: t.Any) -> None:
    first = simulate(accounts=12, seed=99, now=NOW)
    second = simulate(accounts=12, seed=99, now=NOW)  # beside it: new ids, the same stories
    assert set(first.accounts).isdisjoint(second.accounts)

    def story(p: Portfolio) -> list[tuple[t.Any, ...]]:
        return [(a.archetype, a.segment, a.churned_at, a.trouble_at) for a in p.accounts.values()]

    assert story(first) == story(second)
    assert _answers(first) == _answers(second) and _answers(first)
    assert first.rows == second.rows and first.rows["responses"] > 0


def _answers(portfolio: Portfolio) -> list[tuple[t.Any, ...]]:
    rank = {account_id: i for i, account_id in enumerate(portfolio.accounts)}
    rows = db.session.execute(
        sa.select(Response.account_id, Response.submitted_at, Response.nps, Response.csat).where(
            Response.account_id.in_(list(rank))
        )
    )
    return sorted((rank[a], at, nps, csat) for a, at, nps, csat in rows)


def test_simulate_refuses_an_unknown_archetype(app: t.Any) -> None:
    with pytest.raises(ValueError, match="unknown archetypes"):
        simulate(accounts=3, seed=1, mix={"loyal": 1, "angelic": 1})
    with pytest.raises(ValueError, match="positive"):
        simulate(accounts=3, seed=1, mix={"loyal": 0})


# --- backtest.evaluate on hand-made warnings ---------------------------------------------------

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _on(day: int) -> dt.datetime:
    return START + day * DAY


def test_evaluate_counts_catches_leads_and_judged_warnings() -> None:
    accounts = [
        # caught: warned 100 and 30 days before leaving; the lead is from the earliest in time
        backtest.AccountOutcome(1, Decimal(1000), _on(200)),
        # warned too late (30 days before): churned, missed, but the warning was right
        backtest.AccountOutcome(2, Decimal(500), _on(200)),
        # warned too early (300 days before): missed, and the warning counts against
        backtest.AccountOutcome(3, Decimal(200), _on(330)),
        # warned and stayed: a false alarm, judged because the horizon has passed
        backtest.AccountOutcome(4, Decimal(100), None),
        # warned late in the period and stayed: not judged yet (the horizon has not passed)
        backtest.AccountOutcome(5, Decimal(100), None),
        # never warned, stayed: nothing
        backtest.AccountOutcome(6, Decimal(100), None),
        # churned before the period: not a churner of this backtest
        backtest.AccountOutcome(7, Decimal(100), START - 10 * DAY),
    ]
    warnings = [
        (1, _on(100)),
        (1, _on(170)),
        (2, _on(170)),
        (3, _on(30)),
        (4, _on(20)),
        (5, _on(300)),
        (6, START - 30 * DAY),  # before the period: ignored
    ]
    result = backtest.evaluate(warnings, accounts, start=START, end=END, lead_days=60)
    assert (result.churners, result.caught) == (3, 1)
    assert result.lead_days == [100] and result.median_lead_days == 100
    assert (result.warned, result.warned_churned) == (4, 2)  # 1, 2 churned; 3, 4 did not
    assert result.recall == pytest.approx(1 / 3) and result.precision == pytest.approx(0.5)
    assert result.revenue_caught == Decimal(1000) and result.revenue_missed == Decimal(700)
    figures = result.as_dict()
    assert figures["recall"] == 0.333 and figures["precision"] == 0.5


def test_evaluate_with_nothing_to_judge() -> None:
    result = backtest.evaluate(
        [], [backtest.AccountOutcome(1, Decimal(1), None)], start=START, end=END
    )
    assert result.recall is None and result.precision is None
    assert result.median_lead_days is None and result.as_dict()["recall"] is None
