"""The metric definitions, written once: every page, report, export, rule and API uses these.

Pure Python (no Flask, no database), so a number is defined the same way wherever it is
shown, and the maths is tested on its own:

- NPS on 0–10: promoters 9–10, passives 7–8, detractors 0–6; NPS = %promoters − %detractors
  over answered NPS questions only (skips are not in the denominator), with its 95% margin
  of error 1.96·100·sqrt((p + d − (p − d)²)/n). Below ``MIN_N`` answers a value is low
  confidence and must never be shown as a bare number.
- CSAT: the share of 4 and 5 on 1–5. CES: the mean on 1–7.
- Response rate: answered / delivered invitations.
- Time to first contact and to resolution: the median and 90th percentile in business
  hours and the share within the SLA (:class:`Durations`); recovery rate: detractors whose
  next answer after their case was resolved is passive or promoter (:func:`recovery`).
- Percentiles: linear interpolation between closest ranks (numpy's default, PERCENTILE.INC).
"""

from __future__ import annotations

import math
import typing as t
from dataclasses import dataclass, field

#: The scale of each headline metric, (lowest, highest); survey definitions must match them.
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
#: The NPS bands: an answer of at least PROMOTER_MIN promotes, at most DETRACTOR_MAX detracts.
PROMOTER_MIN = 9
DETRACTOR_MAX = 6
#: CSAT answers of at least this count as satisfied.
SATISFIED_MIN = 4
#: Fewer answers than this make a low-confidence value (the default of the ``MIN_N`` setting).
MIN_N = 30
_Z95 = 1.96


@t.overload
def nps_band(score: int) -> str: ...
@t.overload
def nps_band(score: int | None) -> str | None: ...
def nps_band(score: int | None) -> str | None:
    """``"promoter"``, ``"passive"`` or ``"detractor"`` for an NPS answer; None for a skip."""
    if score is None:
        return None
    if score >= PROMOTER_MIN:
        return "promoter"
    if score <= DETRACTOR_MAX:
        return "detractor"
    return "passive"


def is_detractor(score: int | None) -> bool:
    return score is not None and score <= DETRACTOR_MAX


@dataclass(frozen=True)
class NPS:
    """An NPS with what it was computed from; ``score`` and ``margin`` in points (−100..100)."""

    promoters: int
    passives: int
    detractors: int
    min_n: int = MIN_N

    @property
    def n(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def score(self) -> float | None:
        if not self.n:
            return None
        return 100 * (self.promoters - self.detractors) / self.n

    @property
    def margin(self) -> float | None:
        """The 95% margin of error, in points."""
        if not self.n:
            return None
        p, d = self.promoters / self.n, self.detractors / self.n
        return _Z95 * 100 * math.sqrt(max(0.0, p + d - (p - d) ** 2) / self.n)

    @property
    def low_confidence(self) -> bool:
        return self.n < self.min_n


def nps(scores: t.Iterable[int | None], *, min_n: int = MIN_N) -> NPS:
    """The NPS of some answers; skipped questions (None) are left out of the count."""
    counts = {"promoter": 0, "passive": 0, "detractor": 0}
    for score in scores:
        band = nps_band(score)
        if band is not None:
            counts[band] += 1
    return NPS(counts["promoter"], counts["passive"], counts["detractor"], min_n)


@dataclass(frozen=True)
class Share:
    """A proportion ``hits / n`` with its 95% Wilson interval (sound at small n and at 0 or 1)."""

    hits: int
    n: int
    min_n: int = MIN_N

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.n:
            return None
        p, n, z = self.hits / self.n, self.n, _Z95
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    @property
    def low_confidence(self) -> bool:
        return self.n < self.min_n


def csat(scores: t.Iterable[int | None], *, min_n: int = MIN_N) -> Share:
    """CSAT: the share of answers that are 4 or 5; skips are left out."""
    answered = [s for s in scores if s is not None]
    return Share(sum(s >= SATISFIED_MIN for s in answered), len(answered), min_n)


@dataclass(frozen=True)
class Mean:
    """A mean with its 95% interval (normal approximation; None below two answers)."""

    total: float
    n: int
    sum_of_squares: float = 0.0
    min_n: int = MIN_N

    @property
    def value(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        if self.n < 2:
            return None
        mean = self.total / self.n
        variance = max(0.0, (self.sum_of_squares - self.n * mean * mean) / (self.n - 1))
        half = _Z95 * math.sqrt(variance / self.n)
        return mean - half, mean + half

    @property
    def low_confidence(self) -> bool:
        return self.n < self.min_n


def ces(scores: t.Iterable[int | None], *, min_n: int = MIN_N) -> Mean:
    """CES: the mean answer on 1–7; skips are left out."""
    answered = [s for s in scores if s is not None]
    return Mean(float(sum(answered)), len(answered), float(sum(s * s for s in answered)), min_n)


def response_rate(answered: int, delivered: int) -> float | None:
    """Answered / delivered invitations; None when nothing was delivered."""
    return answered / delivered if delivered else None


def percentile(values: t.Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks.

    The same definition as numpy's default and spreadsheets' PERCENTILE.INC; None when empty.
    """
    if not values:
        return None
    ordered = sorted(values)
    return ranked_percentile(len(ordered), q, ordered.__getitem__)


#: The percentiles the responsiveness figures show: the median and the 90th.
DURATION_PERCENTILES = (50, 90)


def percentile_ranks(n: int, q: float) -> tuple[int, int]:
    """The two ranks (0-based, in ascending order) that the ``q``-th percentile of ``n``
    values lies between: all :func:`ranked_percentile` reads, so a database can hand back
    those values alone instead of every value."""
    rank = (n - 1) * q / 100
    return math.floor(rank), math.ceil(rank)


def ranked_percentile(n: int, q: float, at: t.Callable[[int], float]) -> float | None:
    """The ``q``-th percentile of ``n`` ordered values, ``at(rank)`` giving the value of a
    0-based rank (only the two :func:`percentile_ranks` are asked); None when ``n`` is 0.
    The one definition :func:`percentile` and the figures counted in SQL share."""
    if n <= 0:
        return None
    low, high = percentile_ranks(n, q)
    rank = (n - 1) * q / 100
    return at(low) + (at(high) - at(low)) * (rank - low)


# --- responsiveness: the SLA clock and recovery -------------------------------------------


@dataclass
class Durations:
    """How long one step took (business hours) over a group of cases, and how many of those
    that can be judged met their SLA target: the median, the 90th percentile and the share
    within the SLA, as the responsiveness page, the dashboard and the reports show them."""

    hours: list[float] = field(default_factory=list)
    in_sla: int = 0
    judged: int = 0

    @property
    def median(self) -> float | None:
        return percentile(self.hours, 50)

    @property
    def p90(self) -> float | None:
        return percentile(self.hours, 90)

    @property
    def n(self) -> int:
        return len(self.hours)

    @property
    def share_in_sla(self) -> float | None:
        return self.in_sla / self.judged if self.judged else None

    def add(self, hours: float | None, in_sla: bool | None) -> None:
        """One case: its hours (None: not reached yet) and whether it met the SLA (None:
        cannot be told yet, or no target applies)."""
        if hours is not None:
            self.hours.append(hours)
        if in_sla is not None:
            self.judged += 1
            self.in_sla += in_sla


@dataclass(frozen=True)
class DurationFigures:
    """:class:`Durations` as its figures alone, for a group whose hours were ranked by the
    database (:func:`ranked_percentile` on the few values it handed back): the same median,
    90th percentile and share within the SLA, without a list of every case's hours."""

    n: int
    median: float | None
    p90: float | None
    in_sla: int = 0
    judged: int = 0

    @property
    def share_in_sla(self) -> float | None:
        return self.in_sla / self.judged if self.judged else None


def recovery(answered_again: int, recovered: int, *, min_n: int = MIN_N) -> Share:
    """Recovery rate: of the detractors who answered again after their case was resolved,
    the share whose next answer was passive or promoter."""
    return Share(recovered, answered_again, min_n)


# --- readings: a named metric from its counts, as trends, reports and the API show it ---------

#: The metrics a trend can show, by name: (what it is called, its unit).
NAMED: dict[str, tuple[str, str]] = {
    "nps": ("NPS", "points"),
    "csat": ("CSAT", "%"),
    "ces": ("CES", "mean of 1-7"),
    "response_rate": ("Response rate", "%"),
    "comment_share": ("Answers with a comment", "%"),
    "sentiment": ("Mean comment sentiment", "-1 to 1"),
    "negative_share": ("Negative comments", "%"),
}


@dataclass(frozen=True)
class Reading:
    """One value of a named metric: the value, its 95% margin of error (half the interval,
    in the value's unit), how many answers it rests on and whether that is too few; and the
    interval's ends where they are not value ± margin (a share's Wilson interval, which
    never leaves 0..100 %; an NPS's, cut at ±100), so that a chart draws the real one."""

    value: float | None
    moe: float | None
    n: int
    low_confidence: bool
    low: float | None = None
    high: float | None = None

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The interval's ends: as computed, or value ± margin; None without a margin."""
        if self.value is None or self.moe is None:
            return None
        low = self.value - self.moe if self.low is None else self.low
        return low, self.value + self.moe if self.high is None else self.high


def share_reading(share: Share) -> Reading:
    """A share as a reading in percent, its margin half the Wilson interval."""
    interval = share.interval
    value = None if share.value is None else 100 * share.value
    if interval is None:
        return Reading(value, None, share.n, share.low_confidence)
    low, high = 100 * interval[0], 100 * interval[1]
    return Reading(value, (high - low) / 2, share.n, share.low_confidence, low, high)


def mean_reading(mean: Mean) -> Reading:
    """A mean as a reading, its margin half the interval."""
    interval = mean.interval
    moe = None if interval is None else (interval[1] - interval[0]) / 2
    return Reading(mean.value, moe, mean.n, mean.low_confidence)


def read(metric: str, counts: t.Mapping[str, float], *, min_n: int = MIN_N) -> Reading:
    """The named ``metric`` (a key of :data:`NAMED`) from a rollup's summed counts."""

    def c(name: str) -> int:
        return int(counts.get(name, 0))

    if metric == "nps":
        score = NPS(c("promoters"), c("passives"), c("detractors"), min_n)
        if score.score is None or score.margin is None:
            return Reading(score.score, score.margin, score.n, score.low_confidence)
        low, high = max(-100.0, score.score - score.margin), min(100.0, score.score + score.margin)
        return Reading(score.score, score.margin, score.n, score.low_confidence, low, high)
    if metric == "csat":
        return share_reading(Share(c("csat_satisfied"), c("csat_n"), min_n))
    if metric == "ces":
        ces_mean = Mean(float(c("ces_sum")), c("ces_n"), float(c("ces_squares")), min_n)
        return mean_reading(ces_mean)
    if metric == "response_rate":
        return share_reading(Share(c("answered"), c("delivered"), min_n))
    if metric == "comment_share":
        return share_reading(Share(c("commented"), c("responses"), min_n))
    if metric == "sentiment":
        polarity = Mean(
            float(counts.get("polarity_sum", 0.0)),
            c("comments_scored"),
            float(counts.get("polarity_squares", 0.0)),
            min_n,
        )
        return mean_reading(polarity)
    if metric == "negative_share":
        return share_reading(Share(c("comments_negative"), c("comments_scored"), min_n))
    raise ValueError(f"metric: must be one of {', '.join(NAMED)}")


@dataclass(frozen=True)
class Comparison:
    """Two readings of one metric: the change, the noise (the two margins combined) and
    whether the change is beyond it, in words."""

    change: float | None
    noise: float | None
    beyond_noise: bool
    words: str


def compare(before: Reading, after: Reading, *, unit: str = "points") -> Comparison:
    """``after`` against ``before``: real only when the change exceeds sqrt(moe₁² + moe₂²)."""
    if before.value is None or after.value is None:
        return Comparison(
            None, None, False, "nothing to compare: one of the periods has no answers"
        )
    change = after.value - before.value
    if before.moe is None or after.moe is None:
        return Comparison(change, None, False, "too few answers to tell change from noise")
    noise = math.sqrt(before.moe**2 + after.moe**2)
    direction = "rose" if change > 0 else "fell" if change < 0 else "did not move"
    amount = f" {abs(change):.1f} {unit}" if change else ""
    if abs(change) > noise:
        verdict = f"beyond the noise (±{noise:.1f}): a real change"
    else:
        verdict = f"within the noise (±{noise:.1f}): not a real change"
    if before.low_confidence or after.low_confidence:
        verdict += "; few answers, read with care"
    return Comparison(change, noise, abs(change) > noise, f"{direction}{amount}, {verdict}")
