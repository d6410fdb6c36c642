"""App-wide template filters: highlights marked after escaping, times, hours, bands."""

from __future__ import annotations

import datetime as dt

import pytest

from loyalty import templating
from loyalty.sentiment import Highlight


def mark(word: str, weight: float) -> str:
    tone = "negative" if weight < 0 else "positive"
    return f'<mark class="{tone}" title="{tone} ({weight:+.2f})">{word}</mark>'


@pytest.mark.parametrize(
    ("text", "highlights", "html"),
    [
        ("so bad", [("bad", -0.5)], "so " + mark("bad", -0.5)),
        ("badge bad", [("bad", -0.5)], "badge " + mark("bad", -0.5)),  # whole words only
        ("<b>bad</b>", [("bad", -1)], "&lt;b&gt;" + mark("bad", -1) + "&lt;/b&gt;"),
        ("a & b", [("amp", -1)], "a &amp; b"),  # never matches inside an escaped entity
        ("x<y", [("<", -1)], "x" + mark("&lt;", -1) + "y"),
        (
            "not good, not good",
            [("not good", -0.4), ("good", 0.6)],
            mark("not good", -0.4) + ", " + mark("not good", -0.4),  # the longer phrase wins
        ),
        ("great", [("great", 0.8)], mark("great", 0.8)),
        ("nothing here", [], "nothing here"),
        ("", [("x", 1)], ""),
    ],
)
def test_highlight_escapes_first_then_marks(text, highlights, html):
    marked = templating.highlight(text, [Highlight(t, w) for t, w in highlights])
    assert str(marked) == html


def test_highlight_uses_the_sentiment_modules_words():
    text = "The delivery was late and the staff were rude <script>"
    marked = str(templating.highlight(text, templating.comment_highlights(text, "en")))
    assert '">rude</mark>' in marked and "&lt;script&gt;" in marked and "<script>" not in marked


@pytest.mark.parametrize(
    ("score", "band"),
    [(0, "detractor"), (6, "detractor"), (7, "passive"), (8, "passive"), (9, "promoter")],
)
def test_the_nps_band_filter_is_the_metric(app, score, band):
    template = app.jinja_env.from_string("{{ score|nps_band }}")
    assert template.render(score=score) == band


@pytest.mark.parametrize(("hours", "text"), [(None, "–"), (2.25, "2.2 h"), (1234.0, "1,234 h")])
def test_hours(hours, text):
    assert templating.hours_text(hours) == text


def test_times_are_shown_in_the_clocks_zone(app):
    moment = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    with app.test_request_context():
        rendered = app.jinja_env.from_string("{{ moment|local }}").render(moment=moment)
        empty = app.jinja_env.from_string("{{ none|local }}").render(none=None)
    assert rendered == "2026-07-01 12:00 CEST" and empty == ""  # UTC+2 in summer, named
