"""The metric definitions, on their own: NPS bands, score and margin, CSAT with its Wilson
interval, CES, response rate and percentiles, and that the rest of the code uses them."""

from __future__ import annotations

import math

import pytest

from loyalty import metrics


@pytest.mark.parametrize(
    ("score", "band", "detractor"),
    [
        (0, "detractor", True),
        (6, "detractor", True),
        (7, "passive", False),
        (8, "passive", False),
        (9, "promoter", False),
        (10, "promoter", False),
        (None, None, False),
    ],
)
def test_nps_bands(score, band, detractor):
    assert metrics.nps_band(score) == band
    assert metrics.is_detractor(score) is detractor


def _scores(promoters: int, passives: int, detractors: int, skips: int = 0) -> list[int | None]:
    return [10] * promoters + [7] * passives + [3] * detractors + [None] * skips


@pytest.mark.parametrize(
    ("table", "score", "margin"),
    [
        # p = .5, d = .2: 1.96 * 100 * sqrt((.7 - .09) / 100)
        ((50, 30, 20), 30.0, 196 * math.sqrt(0.61 / 100)),
        # p = d = 1/3: 1.96 * 100 * sqrt((2/3 - 0) / 15)
        ((5, 5, 5), 0.0, 196 * math.sqrt(2 / 3 / 15)),
        # p = .3, d = .3, n = 10: 1.96 * 100 * sqrt(.6 / 10)
        ((3, 4, 3), 0.0, 196 * math.sqrt(0.6 / 10)),
        ((10, 0, 0), 100.0, 0.0),
        ((0, 0, 10), -100.0, 0.0),
        ((1, 3, 0), 25.0, 196 * math.sqrt((0.25 - 0.0625) / 4)),
    ],
)
def test_nps_score_and_margin(table, score, margin):
    result = metrics.nps(_scores(*table))
    assert (result.promoters, result.passives, result.detractors) == table
    assert result.n == sum(table)
    assert result.score == pytest.approx(score)
    assert result.margin == pytest.approx(margin)


def test_the_design_example_margin():
    assert metrics.nps(_scores(50, 30, 20)).margin == pytest.approx(15.308, abs=0.001)


def test_skips_are_not_in_the_denominator():
    with_skips = metrics.nps(_scores(50, 30, 20, skips=40))
    assert with_skips.n == 100
    assert with_skips.score == pytest.approx(30.0)
    assert with_skips.margin == pytest.approx(metrics.nps(_scores(50, 30, 20)).margin)


@pytest.mark.parametrize("scores", [[], [None, None]])
def test_no_answers_no_nps(scores):
    result = metrics.nps(scores)
    assert (result.n, result.score, result.margin) == (0, None, None)
    assert result.low_confidence


@pytest.mark.parametrize(
    ("n", "min_n", "low"),
    [(29, None, True), (30, None, False), (31, None, False), (9, 10, True), (10, 10, False)],
)
def test_low_confidence_below_min_n(n, min_n, low):
    scores = [9] * n + [None] * 5  # skips never count towards the minimum
    result = metrics.nps(scores) if min_n is None else metrics.nps(scores, min_n=min_n)
    assert result.low_confidence is low
    assert metrics.MIN_N == 30


@pytest.mark.parametrize(
    ("scores", "value"),
    [
        ([5, 4, 3, 2, 1], 0.4),
        ([4, 4, None], 1.0),
        ([1, 2, 3], 0.0),
        ([3, 4, 5, 5, None, None], 0.75),
    ],
)
def test_csat_is_the_share_of_four_and_five(scores, value):
    result = metrics.csat(scores)
    assert result.value == pytest.approx(value)
    assert result.n == sum(s is not None for s in scores)
    low, high = result.interval
    assert 0.0 <= low <= result.value <= high <= 1.0


@pytest.mark.parametrize(
    ("hits", "n", "interval"),
    [
        (7, 10, (0.3968, 0.8922)),  # the textbook Wilson interval
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (1, 1, (0.2065, 1.0)),
    ],
)
def test_wilson_interval(hits, n, interval):
    low, high = metrics.Share(hits, n).interval
    assert (low, high) == pytest.approx(interval, abs=1e-4)
    assert 0.0 <= low <= hits / n <= high <= 1.0


def test_csat_without_answers():
    result = metrics.csat([None])
    assert (result.n, result.value, result.interval, result.low_confidence) == (
        0,
        None,
        None,
        True,
    )


@pytest.mark.parametrize(
    ("scores", "value", "interval"),
    [
        ([1, 7, 4, None], 4.0, (4 - 1.96 * 3 / math.sqrt(3), 4 + 1.96 * 3 / math.sqrt(3))),
        ([5, 5, 5], 5.0, (5.0, 5.0)),
        ([6], 6.0, None),
        ([None], None, None),
        ([], None, None),
    ],
)
def test_ces_mean_and_interval(scores, value, interval):
    result = metrics.ces(scores)
    assert result.value == (None if value is None else pytest.approx(value))
    assert result.interval == (None if interval is None else pytest.approx(interval))
    assert result.low_confidence


@pytest.mark.parametrize(
    ("answered", "delivered", "rate"),
    [(0, 0, None), (3, 0, None), (0, 4, 0.0), (2, 3, 2 / 3), (5, 5, 1.0)],
)
def test_response_rate(answered, delivered, rate):
    result = metrics.response_rate(answered, delivered)
    assert result == (None if rate is None else pytest.approx(rate))


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 0, None),
        ([], 100, None),
        ([7.5], 0, 7.5),
        ([7.5], 100, 7.5),
        ([10, 1, 5], 0, 1),
        ([10, 1, 5], 50, 5),
        ([10, 1, 5], 100, 10),
        ([1, 2, 3, 4, 5], 90, 4.6),
        ([2.0, 4.0], 50, 3.0),
    ],
)
def test_percentile(values, q, expected):
    result = metrics.percentile(values, q)
    assert result == (None if expected is None else pytest.approx(expected))


def test_the_detractor_flag_rule_uses_the_detractor_band():
    from loyalty.triage.flags import DEFAULT_RULES

    assert DEFAULT_RULES["detractor"] == {"metric": "nps", "at_most": metrics.DETRACTOR_MAX}
    assert metrics.nps_band(metrics.DETRACTOR_MAX) == "detractor"
    assert metrics.nps_band(metrics.DETRACTOR_MAX + 1) == "passive"


def test_the_scales_are_defined_once():
    from loyalty import specs
    from loyalty.triage import flags

    assert specs.METRICS is metrics.SCALES
    assert tuple(metrics.SCALES) == flags.METRICS
    assert metrics.SCALES == {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}


# --- readings and comparisons ----------------------------------------------------------------


def test_read_gives_each_named_metric_from_counts():
    counts = {
        "promoters": 6,
        "passives": 2,
        "detractors": 2,
        "csat_n": 10,
        "csat_satisfied": 7,
        "ces_n": 4,
        "ces_sum": 20,
        "ces_squares": 104,
        "responses": 10,
        "commented": 4,
        "comments_scored": 4,
        "polarity_sum": -0.4,
        "polarity_squares": 0.5,
        "comments_negative": 1,
        "delivered": 20,
        "answered": 10,
    }
    nps = metrics.read("nps", counts, min_n=5)
    assert (nps.value, nps.n, nps.low_confidence) == (40.0, 10, False)
    assert nps.moe == pytest.approx(metrics.nps([9] * 6 + [7] * 2 + [0] * 2).margin)
    assert metrics.read("csat", counts).value == pytest.approx(70.0)
    assert metrics.read("ces", counts).value == 5.0
    assert metrics.read("response_rate", counts).value == 50.0
    assert metrics.read("comment_share", counts).value == 40.0
    assert metrics.read("sentiment", counts).value == pytest.approx(-0.1)
    assert metrics.read("negative_share", counts).value == 25.0
    assert metrics.read("nps", counts).low_confidence  # 10 < MIN_N
    empty = metrics.read("csat", {})
    assert (empty.value, empty.moe, empty.n) == (None, None, 0)
    with pytest.raises(ValueError, match="metric: must be one of"):
        metrics.read("happiness", counts)


@pytest.mark.parametrize(
    ("before", "after", "beyond", "words"),
    [
        ((10, 5, 100), (30, 5, 100), True, "rose 20.0 points, beyond the noise (±7.1)"),
        ((30, 9, 40), (22, 9, 40), False, "fell 8.0 points, within the noise"),
        ((10, None, 1), (30, 5, 100), False, "too few answers to tell"),
        ((None, None, 0), (30, 5, 100), False, "nothing to compare"),
    ],
)
def test_compare_says_whether_a_change_is_beyond_the_noise(before, after, beyond, words):
    a = metrics.Reading(before[0], before[1], before[2], before[2] < 30)
    b = metrics.Reading(after[0], after[1], after[2], after[2] < 30)
    result = metrics.compare(a, b)
    assert result.beyond_noise is beyond and words in result.words


def test_a_readings_interval_stays_on_its_scale():
    """A share's band is its Wilson interval (never past 0..100 %), an NPS's is cut at ±100:
    a chart of five satisfied answers out of five must not reach 120 %."""
    all_satisfied = metrics.read("csat", {"csat_n": 5, "csat_satisfied": 5})
    low, high = metrics.Share(5, 5).interval
    assert (all_satisfied.low, all_satisfied.high) == pytest.approx((100 * low, 100 * high))
    assert all_satisfied.high == pytest.approx(100.0) and all_satisfied.low > 40
    assert all_satisfied.moe == pytest.approx((all_satisfied.high - all_satisfied.low) / 2)
    promoters = metrics.read("nps", {"promoters": 4, "passives": 0, "detractors": 1})
    assert promoters.value + promoters.moe > 100 and promoters.high == 100.0
    assert promoters.low == pytest.approx(promoters.value - promoters.moe)
    assert metrics.read("csat", {}).low is None
