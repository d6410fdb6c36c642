"""Account health, the pure part: each signal's contribution, the bands, "as known at", the
rules' checks, and the warnings an assessment raises (and when they clear)."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty.accounts import alarms, health
from loyalty.accounts.health import AccountHistory, Answer, CaseFact

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RULES = health.parse_rules({})


def ago(days: float) -> dt.datetime:
    return NOW - days * DAY


def answers(*specs: tuple[float, int], contact: int = 1, **fields) -> tuple[Answer, ...]:
    return tuple(Answer(at=ago(d), contact_id=contact, nps=nps, **fields) for d, nps in specs)


def points(history: AccountHistory, signal: str, at: dt.datetime = NOW) -> float:
    found = health.assess(history, at, RULES).contribution(signal)
    return found.points if found else 0.0


def test_an_account_with_nothing_to_go_on_sits_at_the_base():
    result = health.assess(AccountHistory("b2c"), NOW, RULES)
    assert result.score == RULES["base"] and result.contributions == ()


def test_promoters_raise_and_detractors_lower_the_score():
    happy = AccountHistory("b2c", answers((10, 10), (20, 9), (30, 10)))
    angry = AccountHistory("b2c", answers((10, 1), (20, 2), (30, 0)))
    assert points(happy, "nps") > 0 > points(angry, "nps")
    assert health.assess(happy, NOW, RULES).score > health.assess(angry, NOW, RULES).score


def test_one_answer_is_too_few_for_an_nps_signal():
    assert points(AccountHistory("b2c", answers((10, 0))), "nps") == 0


def test_answers_after_the_moment_do_not_count():
    history = AccountHistory("b2c", answers((100, 10), (90, 10), (5, 0), (3, 0), (2, 0)))
    before = health.assess(history, ago(30), RULES)
    assert all(c.signal != "nps" or c.points > 0 for c in before.contributions)
    assert points(history, "nps", at=ago(30)) > 0 > points(history, "nps")


def test_a_churn_cue_from_a_decision_maker_weighs_more():
    anyone = AccountHistory("b2b", answers((5, 7), cues=frozenset({"cancel"})))
    boss = AccountHistory("b2b", answers((5, 7), cues=frozenset({"cancel"}), decision_maker=True))
    assert points(boss, "churn_cues") < points(anyone, "churn_cues") < 0


def test_open_overdue_and_lost_cases_count():
    open_case = CaseFact(opened_at=ago(10), first_contact_due_at=ago(9))
    lost = CaseFact(ago(100), ago(99), ago(99), resolved_at=ago(60), outcome="not_recovered")
    history = AccountHistory("b2c", cases=(open_case, lost))
    assert points(history, "cases") < 0 and points(history, "not_recovered") < 0
    assert points(AccountHistory("b2c", cases=(open_case,)), "cases", at=ago(20)) == 0


def test_an_account_that_stopped_answering_is_silent():
    before = answers(*[(200 + 20 * i, 9) for i in range(8)])
    history = AccountHistory("b2c", before)
    result = health.assess(history, NOW, RULES)
    assert result.facts.get("silent") and points(history, "silence") < 0


def test_one_negative_decision_maker_outweighs_happy_users():
    users = sum((answers((10, 10), contact=c) for c in (2, 3, 4)), ())
    boss = answers((10, 1), contact=1, decision_maker=True)
    assert points(AccountHistory("b2b", users + boss), "contacts") < 0


@pytest.mark.parametrize(
    ("score", "band"),
    [(100, "healthy"), (65, "healthy"), (64, "watch"), (40, "watch"), (39, "at_risk")],
)
def test_bands(score, band):
    assert health.band_for(score, RULES) == band


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"nope": 1}, "unknown keys"),
        ({"base": "high"}, "must be a number"),
        ({"bands": {"healthy": 30, "at_risk": 40}}, "bands"),
        ([1, 2], "mapping"),
    ],
)
def test_bad_rules_name_the_key(rules, message):
    with pytest.raises(health.HealthRuleError, match=message):
        health.parse_rules(rules)


def test_entering_at_risk_and_falling_raise_warnings():
    lost = CaseFact(ago(50), ago(49), ago(49), resolved_at=ago(20), outcome="not_recovered")
    angry = AccountHistory(
        "b2c",
        answers((10, 0), (20, 1), (30, 0), (40, 2), cues=frozenset({"cancel"})),
        cases=(lost, CaseFact(opened_at=ago(5), first_contact_due_at=ago(4))),
    )
    now = health.assess(angry, NOW, RULES)
    kinds = {a.kind for a in alarms.warnings_for(now, NOW, [(ago(7), 80, "healthy")], RULES)}
    assert "at_risk" in kinds and "falling" in kinds


def test_a_stable_grumbler_is_not_news():
    grumbler = AccountHistory("b2c", answers(*[(10 * i, 3) for i in range(1, 12)]))
    now = health.assess(grumbler, NOW, RULES)
    earlier = [(ago(d), now.score, now.band) for d in (60, 30, 7)]
    kinds = {a.kind for a in alarms.warnings_for(now, NOW, earlier, RULES)}
    assert "falling" not in kinds and "at_risk" not in kinds


def test_a_churn_cue_warning_clears_when_the_cue_is_old():
    history = AccountHistory("b2c", answers((3, 5), cues=frozenset({"not_renew"})))
    fresh = health.assess(history, NOW, RULES)
    assert "churn_cue" in {a.kind for a in alarms.warnings_for(fresh, NOW, [], RULES)}
    later = health.assess(history, NOW + 400 * DAY, RULES)
    assert alarms.cleared("churn_cue", later, RULES)
