"""``/dashboard`` (``loyalty.dashboard.views``): executives land on it, the filters live in
the URL, bad ones get a 400 with a message, every chart has its numbers as a table, the
noise is said in words, customer text is escaped, and a point links to its answers."""

from __future__ import annotations

import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from loyalty.db import db
from loyalty.models import Flag, Response


def _figures(html: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" data-chart="([^"]+)">(.*?)</script>', html)
    return {name: json.loads(body) for name, body in found}


def test_an_executive_lands_on_the_dashboard(client, auth):
    auth.login("executive")
    reply = client.get("/", follow_redirects=False)
    assert reply.headers["Location"].endswith("/dashboard")
    auth.login("support", "lead@example.com")
    assert client.get("/").headers["Location"].endswith("/responses")


def test_the_dashboard_shows_every_trend_with_its_numbers(client, auth, stored_answer):
    from loyalty import periods
    from loyalty.dashboard.rollups import tz

    # Three answers in one month whatever today is: mid-month of an earlier month.
    back = periods.today(tz()).day + 10
    days_ago = (back, back + 0.01, back + 0.02, back + 45, 400, 420)
    for days, nps in zip(days_ago, (10, 9, 3, 8, 2, 9), strict=True):
        stored_answer("Trend A/S", days_ago=days, nps=nps)
    auth.login("executive")
    reply = client.get("/dashboard?grain=month")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 200
    figures = _figures(html)
    trends = {f"chart-{m}" for m in ("nps", "csat", "ces", "response_rate", "negative_share")}
    others = {"chart-case-hours", "chart-case-sla", "chart-health-bands", "chart-revenue-at-risk"}
    assert set(figures) == trends | others  # the movers only once a score moved
    nps = figures["chart-nps"]["data"]
    line = next(trace for trace in nps if trace.get("mode") == "lines+markers")
    assert any(
        "n=3" in text and "±" in text and "too few to read" in text for text in line["hovertext"]
    )
    # few answers: hollow markers, and each point links to its answers
    assert set(line["marker"]["color"]) == {"#fff"}
    assert all(link.startswith("/responses?from=") for link in line["customdata"])
    # the table under the chart, and the comparison in words
    assert "The numbers" in html and "few answers" in html
    headline = re.search(r"<p class=\"headline\">(.*?)</p>", html, re.S).group(1)
    assert "Against the 365 days before" in headline and "noise" in headline, headline


def test_a_point_link_opens_the_answers_behind_it(client, auth, stored_answer):
    stored_answer("Old A/S", days_ago=200, nps=1)
    stored_answer("New A/S", days_ago=2, nps=10)
    auth.login("executive")
    html = client.get("/dashboard").get_data(as_text=True)
    line = next(t for t in _figures(html)["chart-nps"]["data"] if t.get("mode") == "lines+markers")
    latest = line["customdata"][-1]
    page = client.get(latest).get_data(as_text=True)
    assert "New A/S" in page and "Old A/S" not in page
    assert "Showing the responses of" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("grain=day", "grain: must be one of week, month, quarter"),
        ("segment=b2x", "segment: must be one of"),
        ("from=2026-13-01", "Write dates as YYYY-MM-DD"),
        ("owner=nobody@example.com", "owner: no staff member"),
    ],
)
def test_bad_filters_get_a_400_with_a_message(client, auth, query, message):
    auth.login("executive")
    reply = client.get(f"/dashboard?{query}")
    assert reply.status_code == 400
    assert message in reply.get_data(as_text=True)
    assert client.get(f"/responses?{query.replace('grain=day', 'from=x')}").status_code == 400


def test_filters_narrow_every_chart(client, auth, stored_answer):
    stored_answer("Shop B2C", days_ago=3, nps=10)
    stored_answer("Partner B2B", days_ago=3, nps=0, segment="b2b")
    auth.login("executive")

    def ns(query: str) -> int:
        html = client.get(f"/dashboard?grain=quarter&{query}").get_data(as_text=True)
        return int(re.search(r"\(n=(\d+)\)\.", html).group(1))

    assert (ns(""), ns("segment=b2b"), ns("segment=b2c"), ns("language=da")) == (2, 1, 1, 0)


def test_a_split_draws_a_line_per_value_with_its_own_columns(client, auth, stored_answer):
    stored_answer("Shop B2C", days_ago=3, nps=10)
    stored_answer("Partner B2B", days_ago=3, nps=0, segment="b2b")
    stored_answer("Partner B2B", days_ago=4, nps=2, segment="b2b")
    auth.login("executive")
    html = client.get("/dashboard?grain=quarter&split=segment").get_data(as_text=True)
    nps = _figures(html)["chart-nps"]["data"]
    lines = {t["name"]: t for t in nps if t.get("mode") == "lines+markers"}
    assert set(lines) == {"B2B", "B2C"}
    assert [t for t in nps if t.get("fill")] == []  # no single band with several lines
    assert any("n=2" in text for text in lines["B2B"]["hovertext"])
    table = re.search(r'aria-label="NPS: the numbers".*?</table>', html, re.S).group(0)
    assert ">B2B</th>" in table and ">B2C</th>" in table
    # the headline is still the whole, not one line
    assert int(re.search(r"\(n=(\d+)\)\.", html).group(1)) == 3
    by_owner = client.get("/dashboard?split=owner").get_data(as_text=True)
    names = {t["name"] for t in _figures(by_owner)["chart-nps"]["data"]}
    assert "no owner" in names
    reply = client.get("/dashboard?split=account_name")
    assert reply.status_code == 400 and "split: must be one of" in reply.get_data(as_text=True)


def test_customer_text_is_escaped_in_the_flagged_list(client, auth, stored_answer):
    name = '<b>x</b><img src=x onerror="alert(1)">'
    stored_answer(name, days_ago=1, nps=0, improve='<a href="https://evil.example">click</a>')
    assert db.session.query(Flag).join(Response).count() == 1
    auth.login("executive")
    html = client.get("/dashboard").get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;&lt;img" in html and "<img src=x" not in html
    assert "&lt;a href=" in html and '<a href="https://evil.example"' not in html


def test_the_latest_flagged_are_the_newest_flags_ties_by_id(app, stored_answer):
    """Flags raised in the same moment (a batch) are ordered by id, newest first: the same
    rows as ordering every flagged answer joined would give."""
    from loyalty.dashboard import views

    for i in range(views.LATEST_FLAGGED + 4):
        stored_answer(f"Flagged {i}", days_ago=1 + i / 100, nps=0, improve=f"Bad {i}")
    flags = db.session.scalars(sa.select(Flag).order_by(Flag.id)).all()
    assert len(flags) == views.LATEST_FLAGGED + 4
    moment = flags[0].created_at
    for flag in flags[:-2]:
        flag.created_at = moment  # a batch, and two later ones
    flags[-2].created_at = moment + dt.timedelta(hours=2)
    flags[-1].created_at = moment + dt.timedelta(hours=1)
    db.session.commit()
    expected = [flags[-2].response_id, flags[-1].response_id]
    expected += [f.response_id for f in flags[:-2][::-1]][: views.LATEST_FLAGGED - 2]
    assert [row.id for row in views._latest_flagged()] == expected


def test_the_dashboard_needs_a_sign_in(client):
    reply = client.get("/dashboard")
    assert reply.status_code == 302 and "/login" in reply.headers["Location"]


def test_one_account_has_its_own_trends_counted_as_the_rollups_count(client, auth, stored_answer):
    from loyalty import periods
    from loyalty.dashboard import queries, rollups

    mine = stored_answer("Mine A/S", days_ago=3, nps=10)
    stored_answer("Mine A/S", days_ago=40, nps=2)
    stored_answer("Other A/S", days_ago=3, nps=0)
    rollups.refresh_stale()
    tz = rollups.tz()
    period = periods.parse({}, today=periods.today(tz), default_days=queries.DEFAULT_DAYS)
    # The account's days counted on their own add up to what the rollups hold for them.
    one = queries.total("nps", period, queries.Filters(account_id=mine.id))
    assert (one.n, one.value) == (2, 0.0)
    assert queries.total("nps", period).n == 3

    auth.login("executive")
    html = client.get(f"/dashboard?account={mine.id}&grain=quarter").get_data(as_text=True)
    assert "One account:" in html and "Mine A/S" in html
    assert int(re.search(r"\(n=(\d+)\)\.", html).group(1)) == 2
    line = next(t for t in _figures(html)["chart-nps"]["data"] if t.get("mode") == "lines+markers")
    assert all(f"account={mine.id}" in link for link in line["customdata"])
    answers = client.get(line["customdata"][-1]).get_data(as_text=True)
    assert "Mine A/S" in answers and "Other A/S" not in answers
    account_page = client.get(f"/accounts/{mine.id}").get_data(as_text=True)
    assert f"/dashboard?account={mine.id}" in account_page
    for bad, message in (("x", "account: an account"), ("99999", "no account has this number")):
        reply = client.get(f"/dashboard?account={bad}")
        assert reply.status_code == 400 and message in reply.get_data(as_text=True)


def test_the_comments_that_weighed_most(client, auth, stored_answer):
    """The period's most negative comments, lowest first, each bar labelled with its words
    (escaped: Plotly would read tags in a label), linked to its case or its answers."""
    from loyalty.dashboard import comments

    stored_answer("Calm A/S", days_ago=2, nps=9, improve="Great service, thank you")
    stored_answer("Cross A/S", days_ago=3, nps=1, improve="<b>Terrible</b> service, awful")
    stored_answer("Mild A/S", days_ago=4, nps=7, segment="b2b", improve="The delivery was late")
    stored_answer("Old A/S", days_ago=400, nps=0, improve="Terrible, awful, horrible")
    auth.login("executive")
    html = client.get("/dashboard").get_data(as_text=True)
    figure = _figures(html)["chart-comments"]
    bar, labels = figure["data"][0], figure["layout"]["yaxis"]["ticktext"]
    assert labels[0] == "&lt;b&gt;Terrible&lt;/b&gt; service, awful"
    assert all(value < 0 for value in bar["x"]) and bar["x"] == sorted(bar["x"])
    assert len(bar["y"]) == len(labels) == 2  # not the praise, not last year's
    assert "Cross A/S" in bar["hovertext"][0] and "NPS 1" in bar["hovertext"][0]
    assert bar["customdata"][0].startswith("/triage/")  # a detractor's comment: its case
    unflagged = comments.Comment(1, 7, "A", dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC), 8,
                                 -0.2, "meh", None)  # fmt: skip
    with client.application.test_request_context():
        # no case: the account's answers of that local day (Copenhagen: already 2 March)
        assert unflagged.link(ZoneInfo("Europe/Copenhagen")) == (
            "/responses?account=7&from=2026-03-02&to=2026-03-02"
        )
    table = re.search(r'aria-label="The comments that weighed most.*?</table>', html, re.S)
    assert "&lt;b&gt;Terrible&lt;/b&gt; service, awful" in table.group(0)
    b2b = _figures(client.get("/dashboard?segment=b2b").get_data(as_text=True))
    assert b2b["chart-comments"]["layout"]["yaxis"]["ticktext"] == ["The delivery was late"]
    assert comments.excerpt("a  long\ncomment that goes on", 12) == "a long comm…"
    none = client.get("/dashboard?survey=no-such-survey").get_data(as_text=True)
    assert "No negative comment in this period." in none


@pytest.mark.parametrize("batches", [1, 2, 20])
def test_the_most_negative_comments_are_the_same_however_far_the_walk_goes(
    app, stored_answer, monkeypatch, batches
):
    """Read a few answers at a time down the polarity index, or (past the walk's end) in
    one query: the same comments, lowest first, narrowed by the filters."""
    from loyalty import periods
    from loyalty.dashboard import comments, queries, rollups

    for n, text in enumerate(["Terrible", "Awful, terrible", "Bad", "Quite bad", "Slow"]):
        stored_answer(f"B2C {n}", days_ago=1 + n, nps=2, improve=f"{text} service")
    stored_answer("The B2B one", days_ago=2, nps=3, segment="b2b", improve="Not good at all")
    monkeypatch.setattr(comments, "WALK", 2)
    monkeypatch.setattr(comments, "WALK_BATCHES", batches)
    tz = rollups.tz()
    period = periods.parse({}, today=periods.today(tz), default_days=30)
    everyone = comments.most_negative(period, queries.Filters(), tz, limit=3)
    assert len(everyone) == 3 and [c.polarity for c in everyone] == sorted(
        c.polarity for c in everyone
    )
    b2b = comments.most_negative(period, queries.Filters(segment="b2b"), tz)
    assert [c.account for c in b2b] == ["The B2B one"]


def test_a_points_link_is_the_url_flask_builds(app):
    """The links are built without ``url_for`` for speed: the same URL, filters escaped."""
    from flask import url_for

    from loyalty import metrics, periods
    from loyalty.dashboard import queries, views

    period = periods.Period(dt.date(2026, 1, 10), dt.date(2026, 3, 20))
    point = queries.Point(dt.date(2026, 3, 1), "2026-03", metrics.Reading(None, None, 0, True), {})
    with app.test_request_context("/dashboard"):
        for filters in (
            queries.Filters(),
            queries.Filters("b2b", "da", "post sale/ø&x=1", 0, 7),
            queries.Filters(survey="a+b?c#d", owner_id=3),
        ):
            args = {"from": "2026-03-01", "to": "2026-03-20", **filters.args()}
            expected = url_for("responses.index", **args)
            assert views._linker("month", period, filters)(point) == expected
