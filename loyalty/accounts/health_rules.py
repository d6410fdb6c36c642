"""The ``HEALTH`` setting: every weight, window and threshold of account health and of its
early warnings, with the defaults, checked once at start-up.

Apart from the assessment (:mod:`.health`) because it is configuration, read by the
settings and start-up as much as by the scoring; :mod:`.health` re-exports it. Pure, like
the assessment: no Flask, no database.
"""

from __future__ import annotations

import typing as t

#: The defaults, also the documentation of the ``HEALTH`` setting (README, "Account health").
DEFAULT_RULES: dict[str, t.Any] = {
    "base": 60,  # an account with nothing to go on
    "bands": {"healthy": 65, "at_risk": 40},  # at least 65 healthy, below 40 at risk
    "memory_days": 365,  # the window of NPS, CSAT and sentiment...
    "half_life_days": 90,  # ...where an answer this old counts half, twice as old a quarter
    "recent_days": 180,  # the window of churn cues
    "trend_days": 90,  # the trend: the mean answer of the last 90 days against the year before
    "trend_base_n": 2,  # ...with at least min_n answers now and this many before...
    "trend_spread": 1.5,  # ...an answer's spread (standard deviation) taken as at least this...
    "trend_z": 2.0,  # ...counted when the change is this many standard errors or more
    "slope_min_n": 5,  # the year's answers fall steadily: a line through at least this many
    "min_n": 2,  # fewer NPS answers than this in a window: no NPS signal
    "confidence_n": 3,  # a window of n answers counts n/(n+3) of its points: few, less
    "nps_points": 0.25,  # per point of NPS (-100..100 gives -25..+25)
    "trend_points": 5,  # per point of change in the mean answer, at most trend_max either way
    "trend_max": 15,
    "csat_points": 40,  # per unit of CSAT share above (or below) csat_expected
    "csat_expected": 0.75,
    "csat_max": 10,  # at most this many points either way
    "sentiment_points": 15,  # per unit of mean comment polarity (-1..1)
    "churn_cue_points": -25,
    "decision_maker_churn_cue_points": -35,
    "escalation_cue_points": -10,
    "open_case_points": -4,
    "overdue_case_points": -4,  # on top of being open
    "cases_max": -16,
    "recovered_points": 5,  # each case closed as recovered lately: support won them back
    "recovered_days": 90,
    "recovered_max": 10,
    "not_recovered_points": -8,  # each case closed as not recovered in the last year
    "not_recovered_max": -16,
    "silence_p": 0.001,  # silent: no answer for so long that chance explains it this rarely...
    "silence_min_sent": 3,  # ...with this many invitations unanswered (and answers before)
    "silence_min_days": 180,  # the pace is of at least this many days
    "answer_days": 7,  # invitations younger than this are not judged yet
    "silence_points": -15,
    "recency_days": 240,  # no answer for this long
    "recency_points": -8,
    "negative_contact_points": -4,  # each negative contact more than positive ones (B2B)
    "negative_decision_maker_points": -10,  # each of its last two answers
    "contacts_max": 12,
    # the warnings
    "at_risk_from": 20,  # entering at risk: from this many points above the line or more
    "fall_days": 90,  # the scores before that a warning compares with
    "fall_points": 50,  # falling: this many points lost within fall_days, out of healthy...
    "fall_nps": 1.5,  # falling: the mean answer fell this much (0-10) in trend_days...
    "fall_z": 2.5,  # ...and by this many standard errors: the account's, or a decision maker's
    "churn_cue_days": 14,  # a churn cue this recent raises a warning...
    "decisive_cues_only": 1,  # ...in B2B only a decision maker's (0: anyone's)
}


class HealthRuleError(ValueError):
    """A ``HEALTH`` setting that cannot be used; the message names the key."""


def parse_rules(mapping: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    """``HEALTH`` laid over the defaults and checked: every key known, every value a number."""
    mapping = mapping or {}
    if not isinstance(mapping, t.Mapping):
        raise HealthRuleError("HEALTH must be a mapping of rule names to numbers")
    unknown = set(mapping) - set(DEFAULT_RULES)
    if unknown:
        raise HealthRuleError(f"HEALTH: unknown keys {sorted(unknown)}")
    rules = {**DEFAULT_RULES, **mapping}
    for key, value in rules.items():
        if key == "bands":
            bands = value
            if (
                not isinstance(bands, t.Mapping)
                or set(bands) != {"healthy", "at_risk"}
                or not all(_is_number(v) for v in bands.values())
                or not 0 <= bands["at_risk"] <= bands["healthy"] <= 100
            ):
                raise HealthRuleError(
                    "HEALTH['bands']: {'healthy': H, 'at_risk': R} with 0 <= R <= H <= 100"
                )
        elif not _is_number(value):
            raise HealthRuleError(f"HEALTH[{key!r}]: must be a number")
    return rules


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
