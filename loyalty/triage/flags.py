"""Flag rules and severity: which answers need a person, and how urgently.

Pure Python, no Flask. The rules are data (the ``FLAG_RULES`` and ``FLAG_SEVERITY``
settings), checked once at start-up by :func:`parse_rules` and :func:`parse_severity` so a
typo stops the app with a message instead of silently never flagging anything.

A rule is one of three kinds:

- ``{"metric": "nps", "at_most": 6}`` fires when the score is answered and at most 6;
- ``{"sentiment_below": -0.05}`` fires when any comment's polarity is below the number;
- ``{"cues": ["cancel", ...]}`` fires when any comment carries one of the cues;
- ``{"theme": "billing", "sentiment": "negative"}`` fires when a comment mentions the theme
  (an id of ``forms/themes.toml``) with that polarity of its own (``sentiment`` left out: any
  mention).

Any rule may add ``"segment": "b2b"`` (or ``"b2c"``) to fire only for that kind of account:
``{"theme": "billing", "sentiment": "negative", "segment": "b2b"}`` is "any negative mention of
billing from a B2B account".

Severity starts at 1 when any rule fires and rises with churn/escalation cues, with the
account's annual value and for B2B decision makers, up to ``max``.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from decimal import Decimal

from ..metrics import DETRACTOR_MAX, SCALES

METRICS = tuple(SCALES)
SEVERITY_NAMES = {0: "none", 1: "low", 2: "medium", 3: "high", 4: "critical"}

#: The defaults, also the documentation of the format (see README, "Triage").
DEFAULT_RULES: dict[str, dict[str, t.Any]] = {
    "detractor": {"metric": "nps", "at_most": DETRACTOR_MAX},
    "low_csat": {"metric": "csat", "at_most": 2},
    "hard_to_get_help": {"metric": "ces", "at_most": 3},
    "negative_comment": {"sentiment_below": -0.05},
    "churn_cue": {"cues": ["cancel", "switch_competitor", "not_renew"]},
    "escalation_cue": {"cues": ["legal", "refund"]},
}
DEFAULT_SEVERITY: dict[str, t.Any] = {
    # points per cue found in a comment, at most `max_cue_points` in all
    "cue_points": {"cancel": 1, "switch_competitor": 1, "not_renew": 1, "legal": 1, "refund": 0},
    "max_cue_points": 2,
    # one point for each of these annual values the account reaches
    "annual_value_steps": [100_000, 1_000_000],
    # points when the answer comes from a B2B account's decision maker
    "decision_maker_points": 1,
    "max": 4,
}


class RuleError(ValueError):
    """A flag rule or severity setting that cannot be used; the message says where."""


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str | None = None
    at_most: int | None = None
    sentiment_below: float | None = None
    cues: frozenset[str] = frozenset()
    theme: str | None = None
    theme_sentiment: str | None = None
    segment: str | None = None


THEME_SENTIMENTS = ("negative", "neutral", "positive")
SEGMENTS = ("b2b", "b2c")


@dataclass(frozen=True)
class Severity:
    cue_points: t.Mapping[str, int]
    max_cue_points: int
    annual_value_steps: tuple[Decimal, ...]
    decision_maker_points: int
    maximum: int


@dataclass(frozen=True)
class Comment:
    """What the rules need of one free-text answer (as stored with its sentiment)."""

    polarity: float | None
    cues: tuple[str, ...] = ()
    #: (theme id, its sentiment) for each theme the comment mentions
    themes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Facts:
    """Everything about one response the rules and severity read."""

    nps: int | None = None
    csat: int | None = None
    ces: int | None = None
    comments: tuple[Comment, ...] = ()
    annual_value: Decimal = Decimal(0)
    segment: str = "b2c"
    decision_maker: bool = False


@dataclass(frozen=True)
class Verdict:
    """The rules that fired (in rule order), the severity, and why the severity is what it is."""

    rules: tuple[str, ...]
    severity: int
    reasons: tuple[str, ...] = ()

    @property
    def flagged(self) -> bool:
        return bool(self.rules)


def parse_rules(mapping: t.Mapping[str, t.Any]) -> tuple[Rule, ...]:
    """Check ``FLAG_RULES``; a rule set to ``None`` or ``False`` is switched off."""
    if not isinstance(mapping, t.Mapping):
        raise RuleError("FLAG_RULES must map rule names to rules")
    rules = []
    for name, spec in mapping.items():
        if spec is None or spec is False:
            continue
        where = f"FLAG_RULES[{name!r}]"
        if not isinstance(name, str) or not name.replace("_", "").isalnum() or len(name) > 40:
            raise RuleError(f"{where}: a rule name is letters, digits and _ (at most 40)")
        if not isinstance(spec, t.Mapping):
            raise RuleError(f"{where}: must be a mapping like {{'metric': 'nps', 'at_most': 6}}")
        kinds = [k for k in ("metric", "sentiment_below", "cues", "theme") if k in spec]
        if len(kinds) != 1:
            raise RuleError(f"{where}: give exactly one of metric, sentiment_below, cues or theme")
        known = {"metric", "at_most", "sentiment_below", "cues", "theme", "segment"}
        unknown = set(spec) - known - ({"sentiment"} if kinds == ["theme"] else set())
        if unknown:
            raise RuleError(f"{where}: unknown keys {sorted(unknown)}")
        segment = spec.get("segment")
        if segment is not None and segment not in SEGMENTS:
            raise RuleError(f"{where}: segment must be one of {', '.join(SEGMENTS)}")
        if kinds == ["theme"]:
            theme, feeling = spec["theme"], spec.get("sentiment")
            if not isinstance(theme, str) or not theme:
                raise RuleError(f"{where}: theme must be a theme id of forms/themes.toml")
            if feeling is not None and feeling not in THEME_SENTIMENTS:
                raise RuleError(f"{where}: sentiment must be one of {', '.join(THEME_SENTIMENTS)}")
            rules.append(Rule(name, theme=theme, theme_sentiment=feeling, segment=segment))
        elif kinds == ["metric"]:
            metric, at_most = spec["metric"], spec.get("at_most")
            if metric not in METRICS:
                raise RuleError(f"{where}: metric must be one of {', '.join(METRICS)}")
            if not isinstance(at_most, int) or isinstance(at_most, bool):
                raise RuleError(f"{where}: at_most must be a whole number")
            rules.append(Rule(name, metric=metric, at_most=at_most, segment=segment))
        elif kinds == ["sentiment_below"]:
            below = spec["sentiment_below"]
            if isinstance(below, bool) or not isinstance(below, int | float) or abs(below) > 1:
                raise RuleError(f"{where}: sentiment_below must be a number from -1 to 1")
            rules.append(Rule(name, sentiment_below=float(below), segment=segment))
        else:
            cues = spec["cues"]
            if isinstance(cues, str) or not cues or not all(isinstance(c, str) for c in cues):
                raise RuleError(f"{where}: cues must be a list of cue names")
            rules.append(Rule(name, cues=frozenset(cues), segment=segment))
    if len(",".join(rule.name for rule in rules)) > 200:  # they are stored in flags.rules
        raise RuleError("FLAG_RULES: all the rule names, joined by commas, must fit in 200")
    return tuple(rules)


def parse_severity(mapping: t.Mapping[str, t.Any]) -> Severity:
    """Check ``FLAG_SEVERITY``; missing keys take their defaults."""
    if not isinstance(mapping, t.Mapping):
        raise RuleError("FLAG_SEVERITY must be a mapping")
    unknown = set(mapping) - set(DEFAULT_SEVERITY)
    if unknown:
        raise RuleError(f"FLAG_SEVERITY: unknown keys {sorted(unknown)}")
    spec = {**DEFAULT_SEVERITY, **mapping}

    def whole(key: str, value: t.Any, low: int = 0) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise RuleError(f"FLAG_SEVERITY[{key!r}]: must be a whole number of at least {low}")
        return value

    points = spec["cue_points"]
    if not isinstance(points, t.Mapping):
        raise RuleError("FLAG_SEVERITY['cue_points']: must map cue names to points")
    steps = spec["annual_value_steps"]
    if isinstance(steps, str | bytes) or not isinstance(steps, t.Iterable):
        raise RuleError("FLAG_SEVERITY['annual_value_steps']: must be a list of amounts")
    try:
        amounts = tuple(sorted(Decimal(str(s)) for s in steps))
    except ArithmeticError:
        raise RuleError("FLAG_SEVERITY['annual_value_steps']: must be a list of amounts") from None
    return Severity(
        cue_points={str(k): whole(f"cue_points.{k}", v) for k, v in points.items()},
        max_cue_points=whole("max_cue_points", spec["max_cue_points"]),
        annual_value_steps=amounts,
        decision_maker_points=whole("decision_maker_points", spec["decision_maker_points"]),
        maximum=whole("max", spec["max"], low=1),
    )


def _fires(rule: Rule, facts: Facts) -> bool:
    if rule.segment is not None and facts.segment != rule.segment:
        return False
    if rule.theme is not None:
        return any(
            theme == rule.theme and rule.theme_sentiment in (None, feeling)
            for c in facts.comments
            for theme, feeling in c.themes
        )
    if rule.metric is not None:
        value = getattr(facts, rule.metric)
        return value is not None and value <= t.cast(int, rule.at_most)
    if rule.sentiment_below is not None:
        return any(
            c.polarity is not None and c.polarity < rule.sentiment_below for c in facts.comments
        )
    return any(rule.cues.intersection(c.cues) for c in facts.comments)


def evaluate(facts: Facts, rules: t.Sequence[Rule], severity: Severity) -> Verdict:
    """Which rules fire for ``facts`` and how severe that is (0 when none fires)."""
    fired = tuple(rule.name for rule in rules if _fires(rule, facts))
    if not fired:
        return Verdict((), 0)
    level, reasons = 1, []
    cues = sorted({cue for c in facts.comments for cue in c.cues})
    cue_points = min(severity.max_cue_points, sum(severity.cue_points.get(c, 0) for c in cues))
    if cue_points:
        level += cue_points
        reasons.append(f"+{cue_points} cues: {', '.join(c.replace('_', ' ') for c in cues)}")
    reached = [s for s in severity.annual_value_steps if facts.annual_value >= s]
    if reached:
        level += len(reached)
        reasons.append(f"+{len(reached)} annual value at least {reached[-1]:,.0f}")
    if facts.segment == "b2b" and facts.decision_maker and severity.decision_maker_points:
        level += severity.decision_maker_points
        reasons.append(f"+{severity.decision_maker_points} B2B decision maker")
    return Verdict(fired, min(level, severity.maximum), tuple(reasons))


def severity_name(level: int) -> str:
    return SEVERITY_NAMES.get(level, str(level))
