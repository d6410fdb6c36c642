"""Account health, 0–100, from banded signals; each signal's contribution kept, so "why" is
always answerable. Pure: plain values in, plain values out (no Flask, no database).

:func:`assess` reads an account's history *as it was known at* a moment: only answers
submitted, invitations sent and cases opened by then count, so a weekly snapshot rebuilt a
year later says what it would have said that week. The signals, in the order they are shown:

- ``nps``: the account's own NPS over the recent window ("true NPS", at least ``min_n``
  answers), and ``nps_trend``: the recent NPS against the account's own earlier one;
- ``csat``: the share of satisfied answers; ``sentiment``: the mean comment polarity;
- ``churn_cues``: anyone writing about leaving weighs heavily, a B2B decision maker more;
  escalation cues (lawyers, refunds) less;
- ``cases``: open and overdue cases; ``not_recovered``: cases closed without winning back;
- ``silence``: answering far less than the account used to, or a falling response rate on
  delivered invitations; ``recency``: long since the last answer;
- ``contacts``: for B2B, how many contacts are positive against negative, with one negative
  decision maker outweighing several happy users.

:func:`warnings_for` says which early warnings a new assessment raises against the ones
before it: entering at risk, a fall of many points within a window (the slope, not the
level), a new churn cue, going silent.
"""

from __future__ import annotations

import datetime as dt
import statistics
import typing as t
from dataclasses import dataclass, field

from .. import metrics

DAY = dt.timedelta(days=1)
#: The signals in the order a page shows them.
SIGNALS = (
    "nps",
    "nps_trend",
    "csat",
    "sentiment",
    "churn_cues",
    "cases",
    "not_recovered",
    "silence",
    "recency",
    "contacts",
)
CHURN_CUES = frozenset({"cancel", "switch_competitor", "not_renew"})
ESCALATION_CUES = frozenset({"legal", "refund"})

#: The defaults, also the documentation of the ``HEALTH`` setting (README, "Account health").
DEFAULT_RULES: dict[str, t.Any] = {
    "base": 60,  # an account with nothing to go on
    "bands": {"healthy": 65, "at_risk": 40},  # at least 65 healthy, below 40 at risk
    "recent_days": 180,  # the window of NPS, CSAT, sentiment and cues
    "trend_days": 90,  # the trend compares the last 90 days with the 180 before
    "min_n": 2,  # fewer NPS answers than this in a window: no NPS signal
    "nps_points": 0.25,  # per point of NPS (-100..100 gives -25..+25)
    "trend_points": 0.2,  # per point of NPS change, at most trend_max either way
    "trend_max": 15,
    "csat_points": 40,  # per unit of CSAT share above (or below) csat_expected
    "csat_expected": 0.75,
    "csat_max": 10,
    "sentiment_points": 15,  # per unit of mean comment polarity (-1..1)
    "churn_cue_points": -25,
    "decision_maker_churn_cue_points": -35,
    "escalation_cue_points": -10,
    "open_case_points": -4,
    "overdue_case_points": -4,  # on top of being open
    "cases_max": -16,
    "not_recovered_points": -8,  # each case closed as not recovered in the last year
    "not_recovered_max": -16,
    "silence_points": -15,  # answering under half as often as in the year before
    "silent_answers_before": 2,  # ...when it answered at least this often in that year
    "response_rate_drop": 0.3,  # delivered invitations answered: a fall this large
    "response_rate_points": -8,
    "recency_days": 240,  # no answer for this long
    "recency_points": -8,
    "negative_contact_points": -4,  # each negative contact more than positive ones (B2B)
    "negative_decision_maker_points": -15,
    "contacts_max": 12,
    # the warnings
    "fall_points": 15,  # a fall of this many points...
    "fall_days": 90,  # ...within this many days
    "churn_cue_days": 14,  # a churn cue this recent raises a warning
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


# --- what an account's history holds ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One response as health reads it."""

    at: dt.datetime
    contact_id: int
    decision_maker: bool = False
    nps: int | None = None
    csat: int | None = None
    #: the mean polarity of its comments; None without a comment
    polarity: float | None = None
    cues: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CaseFact:
    opened_at: dt.datetime
    first_contact_due_at: dt.datetime
    first_contact_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """An invitation that reached the contact, and when it was answered (if it was)."""

    sent_at: dt.datetime
    answered_at: dt.datetime | None = None


@dataclass(frozen=True)
class AccountHistory:
    segment: str
    answers: tuple[Answer, ...] = ()
    cases: tuple[CaseFact, ...] = ()
    deliveries: tuple[Delivery, ...] = ()


@dataclass(frozen=True, slots=True)
class Contribution:
    signal: str
    points: float
    detail: str


@dataclass(frozen=True)
class Health:
    score: int
    band: str
    contributions: tuple[Contribution, ...] = ()
    #: facts the warnings put in words
    facts: dict[str, t.Any] = field(default_factory=dict, compare=False)

    def contribution(self, signal: str) -> Contribution | None:
        return next((c for c in self.contributions if c.signal == signal), None)


def band_for(score: float, rules: t.Mapping[str, t.Any]) -> str:
    if score >= rules["bands"]["healthy"]:
        return "healthy"
    return "at_risk" if score < rules["bands"]["at_risk"] else "watch"


# --- the assessment -----------------------------------------------------------------------------


def assess(history: AccountHistory, at: dt.datetime, rules: t.Mapping[str, t.Any]) -> Health:
    """The account's health at ``at``, from what was known then."""
    answers = [a for a in history.answers if a.at <= at]
    recent_from = at - rules["recent_days"] * DAY
    recent = [a for a in answers if a.at > recent_from]
    parts: list[Contribution] = []
    facts: dict[str, t.Any] = {}

    def add(signal: str, points: float, detail: str) -> None:
        if points:
            parts.append(Contribution(signal, round(points, 1), detail))

    # NPS, and its trend against the account's own past
    score = metrics.nps(a.nps for a in recent)
    facts["nps"], facts["nps_n"] = score.score, score.n
    if score.score is not None and score.n >= rules["min_n"]:
        add("nps", score.score * rules["nps_points"], f"NPS {score.score:+.0f} (n={score.n})")
    trend_from = at - rules["trend_days"] * DAY
    before_from = trend_from - 2 * rules["trend_days"] * DAY
    now_nps = metrics.nps(a.nps for a in answers if a.at > trend_from)
    then_nps = metrics.nps(a.nps for a in answers if before_from < a.at <= trend_from)
    if (
        now_nps.score is not None
        and then_nps.score is not None
        and min(now_nps.n, then_nps.n) >= rules["min_n"]
    ):
        delta = now_nps.score - then_nps.score
        facts["nps_then"], facts["nps_now"] = then_nps.score, now_nps.score
        points = max(-rules["trend_max"], min(rules["trend_max"], delta * rules["trend_points"]))
        add("nps_trend", points, f"NPS {then_nps.score:+.0f} → {now_nps.score:+.0f}")

    csat = metrics.csat(a.csat for a in recent)
    if csat.value is not None and csat.n >= rules["min_n"]:
        points = (csat.value - rules["csat_expected"]) * rules["csat_points"]
        add("csat", min(points, rules["csat_max"]), f"CSAT {csat.value:.0%} (n={csat.n})")

    polarities = [a.polarity for a in recent if a.polarity is not None]
    if polarities:
        mean = statistics.fmean(polarities)
        negative = sum(p < -0.05 for p in polarities)
        add(
            "sentiment",
            mean * rules["sentiment_points"],
            f"comments {mean:+.2f} on average, {negative} of {len(polarities)} negative",
        )

    _cue_signal(recent, rules, add, facts)
    _case_signals(history.cases, at, rules, add)
    _silence_signals(answers, history.deliveries, at, rules, add, facts)
    if history.segment == "b2b":
        _contact_signal(answers, at, rules, add, facts)

    total = rules["base"] + sum(c.points for c in parts)
    final = int(round(max(0.0, min(100.0, total))))
    order = {name: i for i, name in enumerate(SIGNALS)}
    parts.sort(key=lambda c: order[c.signal])
    return Health(final, band_for(final, rules), tuple(parts), facts)


def _cue_signal(
    recent: list[Answer],
    rules: t.Mapping[str, t.Any],
    add: t.Callable[[str, float, str], None],
    facts: dict[str, t.Any],
) -> None:
    churn = [a for a in recent if a.cues & CHURN_CUES]
    escalation = [a for a in recent if a.cues & ESCALATION_CUES]
    if churn:
        by_decision_maker = any(a.decision_maker for a in churn)
        points = rules[
            "decision_maker_churn_cue_points" if by_decision_maker else "churn_cue_points"
        ]
        who = "a decision maker" if by_decision_maker else "a contact"
        add("churn_cues", points, f"{who} wrote of leaving ({len(churn)} answers)")
        facts["last_churn_cue"] = max(a.at for a in churn)
    elif escalation:
        add("churn_cues", rules["escalation_cue_points"], "lawyers or refunds mentioned")


def _case_signals(
    cases: tuple[CaseFact, ...],
    at: dt.datetime,
    rules: t.Mapping[str, t.Any],
    add: t.Callable[[str, float, str], None],
) -> None:
    known = [c for c in cases if c.opened_at <= at]
    open_ = [c for c in known if c.resolved_at is None or c.resolved_at > at]
    overdue = [
        c
        for c in open_
        if c.first_contact_due_at <= at and (c.first_contact_at is None or c.first_contact_at > at)
    ]
    if open_:
        points = (
            len(open_) * rules["open_case_points"] + len(overdue) * rules["overdue_case_points"]
        )
        add(
            "cases",
            max(rules["cases_max"], points),
            f"{len(open_)} open cases, {len(overdue)} overdue",
        )
    year = at - 365 * DAY
    lost = [
        c
        for c in known
        if c.outcome == "not_recovered" and c.resolved_at is not None and year < c.resolved_at <= at
    ]
    if lost:
        add(
            "not_recovered",
            max(rules["not_recovered_max"], len(lost) * rules["not_recovered_points"]),
            f"{len(lost)} cases closed as not recovered this year",
        )


def _silence_signals(
    answers: list[Answer],
    deliveries: tuple[Delivery, ...],
    at: dt.datetime,
    rules: t.Mapping[str, t.Any],
    add: t.Callable[[str, float, str], None],
    facts: dict[str, t.Any],
) -> None:
    window = rules["recent_days"] * DAY
    recent_from, before_from = at - window, at - window - 365 * DAY
    recent = sum(a.at > recent_from for a in answers)
    before = sum(before_from < a.at <= recent_from for a in answers)
    expected = before * window / (365 * DAY)
    silent = before >= rules["silent_answers_before"] and recent < expected / 2
    if silent:
        add(
            "silence",
            rules["silence_points"],
            f"{recent} answers in {window.days} days, {before} in the year before",
        )
    facts["silent"] = silent
    sent_recent = [d for d in deliveries if recent_from < d.sent_at <= at]
    sent_before = [d for d in deliveries if before_from < d.sent_at <= recent_from]
    if len(sent_recent) >= 2 and len(sent_before) >= 2:
        rate_now = sum(d.answered_at is not None and d.answered_at <= at for d in sent_recent)
        rate_then = sum(d.answered_at is not None and d.answered_at <= at for d in sent_before)
        now, then = rate_now / len(sent_recent), rate_then / len(sent_before)
        if then - now >= rules["response_rate_drop"]:
            add(
                "silence",
                rules["response_rate_points"],
                f"response rate {then:.0%} → {now:.0%}",
            )
            facts["silent"] = True
    if answers:
        last = max(a.at for a in answers)
        days = (at - last).days
        facts["days_since_answer"] = days
        if days >= rules["recency_days"]:
            add("recency", rules["recency_points"], f"no answer for {days} days")


def _contact_signal(
    answers: list[Answer],
    at: dt.datetime,
    rules: t.Mapping[str, t.Any],
    add: t.Callable[[str, float, str], None],
    facts: dict[str, t.Any],
) -> None:
    latest: dict[int, Answer] = {}
    for a in sorted(answers, key=lambda a: a.at):
        if a.at > at - 365 * DAY:
            latest[a.contact_id] = a
    negative = [a for a in latest.values() if _is_negative(a)]
    positive = [a for a in latest.values() if a.nps is not None and a.nps >= metrics.PROMOTER_MIN]
    facts["contacts"] = (len(negative), len(latest))
    points = (len(negative) - len(positive)) * rules["negative_contact_points"]
    if any(a.decision_maker for a in negative):
        points += rules["negative_decision_maker_points"]
    points = max(-rules["contacts_max"] * 2, min(rules["contacts_max"], points))
    if latest and points:
        dm = " (a decision maker among them)" if any(a.decision_maker for a in negative) else ""
        add(
            "contacts",
            points,
            f"{len(negative)} of {len(latest)} contacts negative, {len(positive)} positive{dm}",
        )


def _is_negative(answer: Answer) -> bool:
    return (
        metrics.is_detractor(answer.nps)
        or (answer.polarity is not None and answer.polarity < -0.05)
        or bool(answer.cues & CHURN_CUES)
    )


# --- the early warnings -------------------------------------------------------------------------


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
    previous_band = earlier[-1][2] if earlier else None
    if health.band == "at_risk" and previous_band != "at_risk":
        alarms.append(Alarm("at_risk", (f"health {health.score}, at risk", *words)))
    window = [score for when, score, _ in earlier if when >= at - rules["fall_days"] * DAY]
    if window and max(window) - health.score >= rules["fall_points"]:
        top = max(window)
        alarms.append(
            Alarm(
                "falling",
                (
                    f"health fell from {top} to {health.score} within {rules['fall_days']} days",
                    *words,
                ),
            )
        )
    cue_at = health.facts.get("last_churn_cue")
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
        return health.band == "healthy"
    if kind == "falling":
        return health.band == "healthy"
    if kind == "churn_cue":
        return health.facts.get("last_churn_cue") is None
    return not health.facts.get("silent")
