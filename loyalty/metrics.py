"""The metric definitions, written once: every page, report, export, rule and API uses these.

Pure Python (no Flask, no database), so a number is defined the same way wherever it is
shown, and the maths is tested on its own:

- NPS on 0–10: promoters 9–10, passives 7–8, detractors 0–6; NPS = %promoters − %detractors
  over answered NPS questions only (skips are not in the denominator), with its 95% margin
  of error 1.96·100·sqrt((p + d − (p − d)²)/n). Below ``MIN_N`` answers a value is low
  confidence and must never be shown as a bare number.
- CSAT: the share of 4 and 5 on 1–5. CES: the mean on 1–7.
- Response rate: answered / delivered invitations.
- Percentiles: linear interpolation between closest ranks (numpy's default, PERCENTILE.INC).
"""

from __future__ import annotations

import math
import typing as t
from dataclasses import dataclass

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
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
