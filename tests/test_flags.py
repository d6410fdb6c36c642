"""Flag rules and severity: which answers need a person, and how urgently (table-driven)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loyalty.triage.flags import (
    DEFAULT_RULES,
    DEFAULT_SEVERITY,
    Comment,
    Facts,
    RuleError,
    evaluate,
    parse_rules,
    parse_severity,
)

RULES = parse_rules(DEFAULT_RULES)
SEVERITY = parse_severity(DEFAULT_SEVERITY)
ANGRY = Comment(-0.6)
CHURN = Comment(-0.7, ("cancel",))


@pytest.mark.parametrize(
    ("facts", "rules"),
    [
        (Facts(nps=9, csat=5, ces=6), ()),
        (Facts(), ()),  # nothing answered: nothing to flag
        (Facts(nps=7), ()),
        (Facts(nps=6), ("detractor",)),
        (Facts(nps=0), ("detractor",)),
        (Facts(csat=2), ("low_csat",)),
        (Facts(csat=3), ()),
        (Facts(ces=3), ("hard_to_get_help",)),
        (Facts(ces=4), ()),
        (Facts(nps=9, comments=(ANGRY,)), ("negative_comment",)),
        (Facts(nps=9, comments=(Comment(-0.05),)), ()),  # neutral band
        (Facts(nps=9, comments=(Comment(None),)), ()),
        (Facts(nps=8, comments=(Comment(0.1, ("not_renew",)),)), ("churn_cue",)),
        (Facts(nps=8, comments=(Comment(0.0, ("legal",)),)), ("escalation_cue",)),
        (
            Facts(nps=2, csat=1, ces=1, comments=(Comment(0.2), CHURN)),
            ("detractor", "low_csat", "hard_to_get_help", "negative_comment", "churn_cue"),
        ),
    ],
)
def test_which_rules_fire(facts, rules):
    verdict = evaluate(facts, RULES, SEVERITY)
    assert verdict.rules == rules
    assert verdict.flagged is bool(rules)
    assert (verdict.severity == 0) is (not rules)


@pytest.mark.parametrize(
    ("facts", "severity"),
    [
        (Facts(nps=3), 1),
        (Facts(nps=3, comments=(CHURN,)), 2),  # churn cue
        (Facts(nps=3, comments=(Comment(-0.9, ("cancel", "switch_competitor")),)), 3),
        (Facts(nps=3, comments=(Comment(-0.9, ("cancel", "not_renew", "legal")),)), 3),  # max 2
        (Facts(nps=3, comments=(Comment(-0.9, ("refund",)),)), 1),  # refund: 0 points
        (Facts(nps=3, annual_value=Decimal("99999.99")), 1),
        (Facts(nps=3, annual_value=Decimal(100_000)), 2),
        (Facts(nps=3, annual_value=Decimal(2_000_000)), 3),
        (Facts(nps=3, segment="b2b", decision_maker=True), 2),
        (Facts(nps=3, segment="b2c", decision_maker=True), 1),  # only B2B decision makers
        (
            Facts(
                nps=0,
                comments=(Comment(-1, ("cancel", "legal")),),
                annual_value=Decimal(5_000_000),
                segment="b2b",
                decision_maker=True,
            ),
            4,  # 1 + 2 + 2 + 1, capped
        ),
    ],
)
def test_severity_rises_with_cues_value_and_decision_makers(facts, severity):
    assert evaluate(facts, RULES, SEVERITY).severity == severity


def test_severity_says_why():
    facts = Facts(
        nps=1,
        comments=(Comment(-0.9, ("not_renew",)),),
        annual_value=Decimal(250_000),
        segment="b2b",
        decision_maker=True,
    )
    assert evaluate(facts, RULES, SEVERITY).reasons == (
        "+1 cues: not renew",
        "+1 annual value at least 100,000",
        "+1 B2B decision maker",
    )


def test_rules_can_be_changed_and_switched_off():
    rules = parse_rules(
        {**DEFAULT_RULES, "detractor": {"metric": "nps", "at_most": 4}, "low_csat": None}
    )
    assert evaluate(Facts(nps=5, csat=1), rules, SEVERITY).rules == ()
    assert evaluate(Facts(nps=4), rules, SEVERITY).rules == ("detractor",)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"x": {"metric": "joy", "at_most": 1}}, "metric must be one of"),
        ({"x": {"metric": "nps"}}, "at_most must be a whole number"),
        ({"x": {"metric": "nps", "at_most": "6"}}, "at_most must be a whole number"),
        ({"x": {"sentiment_below": 3}}, "from -1 to 1"),
        ({"x": {"cues": "cancel"}}, "list of cue names"),
        ({"x": {"metric": "nps", "at_most": 6, "cues": ["cancel"]}}, "exactly one of"),
        ({"x": {"metric": "nps", "at_most": 6, "colour": 1}}, "unknown keys"),
        ({"bad name!": {"metric": "nps", "at_most": 6}}, "rule name"),
        ({"x": 6}, "must be a mapping"),
        (["detractor"], "must map rule names"),
        ({f"rule_{i:02d}_{'x' * 30}": {"metric": "nps", "at_most": 6} for i in range(6)}, "200"),
    ],
)
def test_bad_rules_say_where(rules, message):
    with pytest.raises(RuleError, match=message):
        parse_rules(rules)


@pytest.mark.parametrize(
    ("severity", "message"),
    [
        ({"max": 0}, "at least 1"),
        ({"colour": 1}, "unknown keys"),
        ({"cue_points": ["cancel"]}, "map cue names"),
        ({"cue_points": {"cancel": -1}}, "whole number"),
        ({"annual_value_steps": "lots"}, "list of amounts"),
        ({"annual_value_steps": ["lots"]}, "list of amounts"),
    ],
)
def test_bad_severity_says_where(severity, message):
    with pytest.raises(RuleError, match=message):
        parse_severity(severity)


# --- theme rules (issue 12) -------------------------------------------------------------

BILLING_B2B = {"billing_b2b": {"theme": "billing", "sentiment": "negative", "segment": "b2b"}}
BILLING_ANY = {"billing": {"theme": "billing"}}
MIXED = Comment(0.1, (), (("quality", "positive"), ("billing", "negative")))
HAPPY_BILL = Comment(0.4, (), (("billing", "positive"),))


@pytest.mark.parametrize(
    ("rules", "facts", "fired"),
    [
        (BILLING_B2B, Facts(comments=(MIXED,), segment="b2b"), ("billing_b2b",)),
        (BILLING_B2B, Facts(comments=(MIXED,), segment="b2c"), ()),  # not a B2B account
        (BILLING_B2B, Facts(comments=(HAPPY_BILL,), segment="b2b"), ()),  # not negative
        (BILLING_B2B, Facts(comments=(Comment(-0.8),), segment="b2b"), ()),  # no theme
        (BILLING_ANY, Facts(comments=(HAPPY_BILL,)), ("billing",)),  # any mention
        ({"b2b_detractor": {"metric": "nps", "at_most": 6, "segment": "b2b"}}, Facts(nps=3), ()),
    ],
)
def test_a_rule_can_fire_on_a_theme_and_a_segment(rules, facts, fired):
    assert evaluate(facts, parse_rules(rules), SEVERITY).rules == fired


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"theme": ""}, "theme must be a theme id"),
        ({"theme": "billing", "sentiment": "angry"}, "sentiment must be one of"),
        ({"theme": "billing", "segment": "b2x"}, "segment must be one of"),
        ({"metric": "nps", "at_most": 6, "sentiment": "negative"}, "unknown keys"),
        ({"theme": "billing", "cues": ["cancel"]}, "exactly one of"),
    ],
)
def test_bad_theme_rules_say_what_is_wrong(spec, message):
    with pytest.raises(RuleError, match=message):
        parse_rules({"r": spec})
