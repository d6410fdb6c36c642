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

Its rules (the ``HEALTH`` setting) are :mod:`.health_rules`, re-exported here; the early
warnings an assessment raises are :mod:`.alarms`.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
import typing as t
from dataclasses import dataclass, field

from .. import metrics
from .health_rules import DEFAULT_RULES as DEFAULT_RULES  # re-exported: the health rules
from .health_rules import HealthRuleError as HealthRuleError
from .health_rules import parse_rules as parse_rules

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
#: A comment at or below this polarity is clearly negative (a contact's answer counts so).
NEGATIVE_COMMENT = -0.3


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

    def weight(n: int) -> float:
        """Few answers say less than many: n/(n + confidence_n) of the points."""
        return n / (n + rules["confidence_n"])

    # NPS, CSAT and comments of the last year, recent answers weighing most
    memory = [a for a in answers if a.at > at - rules["memory_days"] * DAY]
    decay = {id(a): 0.5 ** ((at - a.at) / DAY / rules["half_life_days"]) for a in memory}
    rated = [a for a in memory if a.nps is not None]
    facts["nps_n"] = len(rated)
    facts["nps"] = None
    if rated:
        mass = sum(decay[id(a)] for a in rated)
        value = 100 * sum(decay[id(a)] * _nps_sign(a.nps) for a in rated) / mass
        facts["nps"] = value
        if len(rated) >= rules["min_n"]:
            add(
                "nps",
                value * rules["nps_points"] * weight(mass),
                f"NPS {value:+.0f} (n={len(rated)}, recent answers weigh most)",
            )
    facts["nps_slope"] = _slope([a for a in answers if a.nps is not None], at, rules)
    change = _change([a for a in answers if a.nps is not None], at, rules)
    if change is not None:
        facts["nps_change"] = change
        if abs(change.z) >= rules["trend_z"]:
            points = (change.now - change.then) * rules["trend_points"]
            points = max(-rules["trend_max"], min(rules["trend_max"], points))
            add("nps_trend", points, change.describe("answers"))

    scored = [a for a in memory if a.csat is not None]
    if len(scored) >= rules["min_n"]:
        mass = sum(decay[id(a)] for a in scored)
        satisfied = sum(
            decay[id(a)] for a in scored if t.cast(int, a.csat) >= metrics.SATISFIED_MIN
        )
        share = satisfied / mass
        points = (share - rules["csat_expected"]) * rules["csat_points"] * weight(mass)
        points = max(-rules["csat_max"], min(rules["csat_max"], points))
        add("csat", points, f"CSAT {share:.0%} (n={len(scored)})")

    commented = [a for a in memory if a.polarity is not None]
    if commented:
        mass = sum(decay[id(a)] for a in commented)
        mean = sum(decay[id(a)] * t.cast(float, a.polarity) for a in commented) / mass
        negative = sum(t.cast(float, a.polarity) < -0.05 for a in commented)
        add(
            "sentiment",
            mean * rules["sentiment_points"] * weight(mass),
            f"comments {mean:+.2f} on average, {negative} of {len(commented)} negative",
        )

    _cue_signal(recent, history.segment, rules, add, facts)
    _case_signals(history.cases, at, rules, add)
    _silence_signals(answers, history.deliveries, at, rules, add, facts)
    if history.segment == "b2b":
        _contact_signal(answers, at, rules, add, facts)

    total = rules["base"] + sum(c.points for c in parts)
    final = int(round(max(0.0, min(100.0, total))))
    order = {name: i for i, name in enumerate(SIGNALS)}
    parts.sort(key=lambda c: order[c.signal])
    return Health(final, band_for(final, rules), tuple(parts), facts)


@dataclass(frozen=True, slots=True)
class Change:
    """The mean NPS answer (0-10) of the last ``trend_days`` against the year before."""

    then: float
    now: float
    n_then: int
    n_now: int
    #: the change in standard errors (negative: worse); the spread is at least trend_spread
    z: float

    def describe(self, whose: str) -> str:
        return (
            f"{whose} {self.then:.1f} → {self.now:.1f} out of 10 "
            f"(n={self.n_then}, {self.n_now}; {abs(self.z):.1f} standard errors)"
        )


def _change(rated: list[Answer], at: dt.datetime, rules: t.Mapping[str, t.Any]) -> Change | None:
    """Whether these answers changed: a Welch test of the recent mean against the year
    before. Recent: the last ``trend_days``; with fewer than ``min_n`` answers there, the
    last ``min_n`` answers when the latest is in it and the first within twice as long (an
    account that answers seldom is judged on its latest answers)."""
    known = sorted((a for a in rated if a.at <= at), key=lambda a: a.at)
    since = at - rules["trend_days"] * DAY
    first = next((i for i, a in enumerate(known) if a.at > since), len(known))
    if len(known) - first < rules["min_n"]:
        first = len(known) - rules["min_n"]
        if (
            first < 0
            or known[-1].at <= since
            or known[first].at <= since - rules["trend_days"] * DAY
        ):
            return None
    now = [float(t.cast(int, a.nps)) for a in known[first:]]
    start = known[first].at - 365 * DAY
    then = [float(t.cast(int, a.nps)) for a in known[:first] if a.at > start]
    if len(then) < rules["trend_base_n"]:
        return None
    floor = rules["trend_spread"] ** 2

    def spread(values: list[float]) -> float:
        return max(floor, statistics.variance(values) if len(values) > 1 else floor)

    m_now, m_then = statistics.fmean(now), statistics.fmean(then)
    error = math.sqrt(spread(now) / len(now) + spread(then) / len(then))
    return Change(m_then, m_now, len(then), len(now), (m_now - m_then) / error)


@dataclass(frozen=True, slots=True)
class Slope:
    """The straight line through a year's NPS answers: points per half year."""

    per_half_year: float
    n: int
    #: the slope in standard errors (negative: falling); the spread is at least trend_spread
    t: float

    def describe(self, whose: str) -> str:
        return (
            f"{whose} {self.per_half_year:+.1f} out of 10 per half year "
            f"(n={self.n}; {abs(self.t):.1f} standard errors)"
        )


def _slope(rated: list[Answer], at: dt.datetime, rules: t.Mapping[str, t.Any]) -> Slope | None:
    """Least squares of the answers of the last ``memory_days`` against time."""
    known = [a for a in rated if at - rules["memory_days"] * DAY < a.at <= at]
    if len(known) < rules["slope_min_n"]:
        return None
    xs = [(a.at - at) / DAY / 182.5 for a in known]
    ys = [float(t.cast(int, a.nps)) for a in known]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    residual = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    spread = max(rules["trend_spread"] ** 2, residual / (len(known) - 2))
    return Slope(b, len(known), b / math.sqrt(spread / sxx))


def _nps_sign(score: int | None) -> int:
    band = metrics.nps_band(score)
    return 1 if band == "promoter" else -1 if band == "detractor" else 0


def _cue_signal(
    recent: list[Answer],
    segment: str,
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
        # Who decides: a consumer, or a company's decision maker. A user of a company who
        # writes of leaving weighs in the score; the warning waits for the one who decides.
        deciding = [a for a in churn if segment != "b2b" or a.decision_maker]
        if deciding or not rules["decisive_cues_only"]:
            facts["last_decisive_cue"] = max(a.at for a in (deciding or churn))
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
    lately = at - rules["recovered_days"] * DAY
    won = [
        c
        for c in known
        if c.outcome == "recovered" and c.resolved_at is not None and lately < c.resolved_at <= at
    ]
    points = len(open_) * rules["open_case_points"] + len(overdue) * rules["overdue_case_points"]
    points = max(rules["cases_max"], points) + min(
        rules["recovered_max"], len(won) * rules["recovered_points"]
    )
    if open_ or won:
        words = [f"{len(open_)} open cases, {len(overdue)} overdue"] if open_ else []
        words += [f"{len(won)} recovered in {rules['recovered_days']} days"] if won else []
        add("cases", points, "; ".join(words))
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
    """Silent: no answer for so long that, at the account's own pace of the year before
    (answers counted, so contacts who seldom answer do not distort it), chance explains it
    with a probability of at most ``silence_p``, while at least ``silence_min_sent``
    invitations went out unanswered (without invitations, as for history imported from
    another tool, the time alone)."""
    silent = False
    if answers:
        last = max(a.at for a in answers)
        # the pace of the year before the last answer, or of all of it when it is younger
        known = min([a.at for a in answers] + [d.sent_at for d in deliveries])
        span = max(rules["silence_min_days"], min(365.0, (last - known) / DAY))
        pace = sum(last - span * DAY < a.at <= last for a in answers) / span
        gap = (at - last) / DAY
        settled = at - rules["answer_days"] * DAY
        unanswered = sum(last < d.sent_at <= settled for d in deliveries)
        if (
            pace * span >= rules["silence_min_sent"]
            and (not deliveries or unanswered >= rules["silence_min_sent"])
            and math.exp(-pace * gap) <= rules["silence_p"]
        ):
            silent = True
            asked = f", {unanswered} invitations unanswered" if deliveries else ""
            add(
                "silence",
                rules["silence_points"],
                f"no answer for {gap:.0f} days{asked}, "
                f"where it answered {pace * span:.0f} times in the {span:.0f} days before",
            )
        days = (at - last).days
        facts["days_since_answer"] = days
        if days >= rules["recency_days"]:
            add("recency", rules["recency_points"], f"no answer for {days} days")
    facts["silent"] = silent


def _contact_signal(
    answers: list[Answer],
    at: dt.datetime,
    rules: t.Mapping[str, t.Any],
    add: t.Callable[[str, float, str], None],
    facts: dict[str, t.Any],
) -> None:
    """B2B: each contact's latest answer of the year, negative against positive; a negative
    decision maker is not made good by happy users. A decision maker whose latest answer
    (in the last ``trend_days``) is negative after one that was not has *turned*."""
    by_contact: dict[int, list[Answer]] = {}
    for a in sorted(answers, key=lambda a: a.at):
        if a.at > at - 365 * DAY:
            by_contact.setdefault(a.contact_id, []).append(a)
    latest = [xs[-1] for xs in by_contact.values()]
    negative = [a for a in latest if _is_negative(a)]
    positive = [a for a in latest if a.nps is not None and a.nps >= metrics.PROMOTER_MIN]
    facts["contacts"] = (len(negative), len(latest))
    points = (len(negative) - len(positive)) * rules["negative_contact_points"]
    points = max(-rules["contacts_max"] * 2, min(rules["contacts_max"], points))
    # A decision maker counts by their last two answers: one bad one may be a bad day.
    worst = max(
        (sum(map(_is_negative, xs[-2:])) for xs in by_contact.values() if xs[-1].decision_maker),
        default=0,
    )
    deciders = [a for a in negative if a.decision_maker]
    if worst:
        points = min(points, 0) + worst * rules["negative_decision_maker_points"]
    deciding = [a for a in answers if a.decision_maker and a.nps is not None]
    facts["decision_maker_change"] = _change(deciding, at, rules)
    if latest and points:
        dm = " (a decision maker among them)" if deciders else ""
        add(
            "contacts",
            points,
            f"{len(negative)} of {len(latest)} contacts negative, {len(positive)} positive{dm}",
        )


def _is_negative(answer: Answer) -> bool:
    """A detractor, a clearly negative comment, or a churn cue."""
    return (
        metrics.is_detractor(answer.nps)
        or (answer.polarity is not None and answer.polarity <= NEGATIVE_COMMENT)
        or bool(answer.cues & CHURN_CUES)
    )
