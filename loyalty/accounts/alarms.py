"""The early warnings an account health assessment raises against the scores before it:
entering at risk, a fall of many points within a window (the slope, not the level), a new
churn cue, going silent; and when an open one no longer holds.

Apart from the assessment (:mod:`.health`): that says how an account is, this what is news
about it. Storing, acting on and emailing the warnings is :mod:`.warnings`. Pure: no Flask,
no database.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from .health import DAY, Change, Health, Slope


@dataclass(frozen=True)
class Alarm:
    """A warning an assessment raises: its kind and its reasons in words."""

    kind: str
    reasons: tuple[str, ...]


def warnings_for(
    health: Health,
    at: dt.datetime,
    earlier: t.Sequence[tuple[dt.datetime, int, str]],
    rules: t.Mapping[str, t.Any],
) -> list[Alarm]:
    """The warnings ``health`` raises, given the scores before it: (when, score, band).

    Kinds: ``at_risk`` (entered the band), ``falling`` (``fall_points`` or more lost within
    ``fall_days``: the slope, so a grumbler who is stable is not news), ``churn_cue`` (one
    written in the last ``churn_cue_days``), ``silent`` (answers stopped coming).
    """
    alarms = []
    reasons = [
        c.detail for c in sorted(health.contributions, key=lambda c: c.points) if c.points < 0
    ]
    words = tuple(reasons[:3]) or ("no single signal stands out",)
    since = at - rules["fall_days"] * DAY
    window = [(score, band) for when, score, band in earlier if when >= since]
    # Entered: at risk now, healthy within fall_days and not at risk since (a score known
    # only at risk, or wavering about the line, is not news: a stable grumbler is neither).
    if (
        health.band == "at_risk"
        and window
        and max(s for s, _ in window) >= rules["bands"]["at_risk"] + rules["at_risk_from"]
        and all(b != "at_risk" for _, b in window)
    ):
        alarms.append(Alarm("at_risk", (f"health {health.score}, at risk", *words)))

    # Falling: the answers of the last trend_days are far below the year's before, beyond
    # chance (a stable grumbler's are not; one bad delivery among good ones is not).
    def alarms_of(kind: str) -> bool:
        return any(a.kind == kind for a in alarms)

    top = max((s for s, _ in window), default=None)
    if top is not None and health.band != "healthy" and top - health.score >= rules["fall_points"]:
        alarms.append(
            Alarm(
                "falling",
                (
                    f"health fell from {top} to {health.score} within {rules['fall_days']} days",
                    *words,
                ),
            )
        )
    slope = health.facts.get("nps_slope")
    if (
        not alarms_of("falling")
        and isinstance(slope, Slope)
        and -slope.per_half_year >= rules["fall_nps"]
        and -slope.t >= rules["fall_z"]
    ):
        alarms.append(Alarm("falling", (f"falling: {slope.describe('answers')}", *words)))
    for key, whose in (("nps_change", "answers"), ("decision_maker_change", "a decision maker")):
        change = health.facts.get(key)
        if (
            not alarms_of("falling")
            and isinstance(change, Change)
            and change.then - change.now >= rules["fall_nps"]
            and -change.z >= rules["fall_z"]
        ):
            alarms.append(Alarm("falling", (f"fell: {change.describe(whose)}", *words)))
            break
    cue_at = health.facts.get("last_decisive_cue")
    if cue_at is not None and cue_at > at - rules["churn_cue_days"] * DAY:
        detail = health.contribution("churn_cues")
        alarms.append(Alarm("churn_cue", (detail.detail if detail else "a churn cue",)))
    if health.facts.get("silent"):
        detail = health.contribution("silence")
        alarms.append(Alarm("silent", (detail.detail if detail else "answers stopped",)))
    return alarms


def cleared(kind: str, health: Health, rules: t.Mapping[str, t.Any]) -> bool:
    """Whether an open warning of ``kind`` no longer holds (it then resolves itself)."""
    if kind == "at_risk":
        return health.band != "at_risk"
    if kind == "falling":
        return health.band == "healthy"
    if kind == "churn_cue":
        return health.facts.get("last_decisive_cue") is None
    return not health.facts.get("silent")
