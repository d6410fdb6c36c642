"""An executive signs in and lands on the dashboard, in a real browser: every chart is drawn
by the app's own plotly.js with no console error and no request to anywhere else, hovering
an NPS point shows its n and margin of error, choosing a segment changes the URL and the
charts, customer text with markup shows as text, and clicking a point opens its answers."""

from __future__ import annotations

import datetime as dt
import typing as t
from urllib.parse import urlsplit

from playwright.sync_api import expect
from test_accounts_views import staff

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

    from .conftest import LiveServer

DESKTOP: dict[str, t.Any] = {"viewport": {"width": 1280, "height": 1000}}
NAME = '<b>x</b><img src=x onerror="document.title=1">'
#: a comment whose words are negative, with markup in it
COMMENT = '<b>Terrible</b> service, <a href="//evil">never again</a>'
#: five trends, two of responsiveness, health bands, revenue at risk, the accounts that
#: moved, the comments that weighed most
CHARTS = 11


def _health_fell(account: t.Any) -> None:
    """Weekly health snapshots over the dashboard's default year, falling: the account moved
    most (from its first weekly snapshot in the period to the last)."""
    from loyalty.accounts.rollup import week_ends
    from loyalty.dashboard.rollups import tz
    from loyalty.db import db
    from loyalty.models import HealthSnapshot, utcnow

    today = utcnow().date()
    ends = week_ends(today - dt.timedelta(days=370), today, tz())
    for i, at in enumerate(end for end in ends if end <= utcnow()):
        score = max(0, 90 - 2 * i)
        band = "healthy" if score >= 70 else "watch" if score >= 40 else "at_risk"
        db.session.add(
            HealthSnapshot(account_id=account.id, at=at, score=score, band=band, contributions="[]")
        )
    db.session.commit()


def test_an_executive_reads_the_trends(
    app: t.Any,
    live_server: LiveServer,
    new_context: t.Callable[..., BrowserContext],
    stored_answer: t.Any,
) -> None:
    staff("ceo@example.com", role="executive")
    for days, nps in ((3, 10), (4, 9), (35, 2), (70, 8)):
        stored_answer("Happy Shop", days_ago=days, nps=nps)
    marked = stored_answer(NAME, days_ago=2, nps=1, segment="b2b", improve=COMMENT)
    _health_fell(marked)

    page = new_context(**DESKTOP).new_page()
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: (
            elsewhere.append(r.url)
            if urlsplit(r.url).netloc != urlsplit(live_server.url).netloc
            else None
        ),
    )
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    page.goto("/login")
    page.get_by_label("Email").fill("ceo@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/dashboard")  # type: ignore[arg-type]

    charts = page.locator(".chart-area")
    expect(charts).to_have_count(CHARTS)
    for index in range(CHARTS):
        expect(charts.nth(index)).to_have_class("chart-area js-plotly-plot chart-drawn")
    # The account whose health fell most: its name as text in the chart and in the table.
    expect(page.locator("#chart-movers .ytick text").first).to_have_text(NAME)
    expect(page.locator("#chart-movers b, #chart-movers img")).to_have_count(0)
    expect(page.locator("#chart-movers-caption ~ details table")).to_contain_text(NAME)
    # The most negative comment: its words as text in the chart's label and in its table.
    expect(page.locator("#chart-comments .ytick text").first).to_contain_text("<b>Terrible</b>")
    expect(page.locator("#chart-comments .ytick b, #chart-comments .ytick a")).to_have_count(0)
    comments = page.locator("#chart-comments-caption ~ details table")
    expect(comments).to_contain_text(COMMENT)
    expect(comments).to_contain_text(NAME)
    expect(comments.locator("td b, td img, th b, th a a")).to_have_count(0)
    # The latest flagged answer: the name and the comment as text, no element made of them.
    flagged = page.locator("ul.flagged")
    expect(flagged).to_contain_text(NAME)
    expect(flagged).to_contain_text(COMMENT)
    expect(flagged.locator("b, img, a")).to_have_count(0)

    # Hovering the last NPS point says its n and margin of error.
    nps = page.locator("#chart-nps")
    points = nps.locator(".scatterlayer .trace:last-child .point")
    expect(points.last).to_be_visible()
    points.last.hover(force=True)
    expect(nps.locator(".hovertext")).to_contain_text("n=")
    expect(nps.locator(".hovertext")).to_contain_text("±")

    # A segment: the URL carries it, and the charts are drawn again for it alone.
    page.get_by_label("Segment").select_option("b2b")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url("/dashboard?" + page.url.split("?", 1)[1])  # type: ignore[arg-type]
    assert "segment=b2b" in page.url
    expect(page.locator(".headline")).to_contain_text("(n=1)")
    expect(page.locator(".chart-area.chart-drawn")).to_have_count(CHARTS)

    # Clicking the point opens the answers behind it.
    point = page.locator("#chart-nps .scatterlayer .trace:last-child .point").last
    point.click(force=True)
    page.wait_for_url("**/responses?**")
    expect(page.locator("table.responses")).to_contain_text(NAME)
    expect(page.locator("table.responses")).not_to_contain_text("Happy Shop")

    assert errors == []
    assert elsewhere == []


def test_the_comments_chart_fits_a_phone(
    app: t.Any,
    live_server: LiveServer,
    new_context: t.Callable[..., BrowserContext],
    stored_answer: t.Any,
) -> None:
    """At 390 px a bar's label is its short form (still text, markup and all) and its
    value sits inside it where it fits, so the bars keep their room; nothing runs off."""
    staff("ceo@example.com", role="executive")
    stored_answer("Phone A/S", days_ago=2, nps=1, improve=COMMENT)
    page = new_context().new_page()  # the phone of conftest.PHONE
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/login")
    page.get_by_label("Email").fill("ceo@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/dashboard")  # type: ignore[arg-type]
    tick = page.locator("#chart-comments .ytick text").first
    expect(tick).to_have_text("<b>Terrible</b>…")
    expect(page.locator("#chart-comments .ytick b")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    area = page.locator("#chart-comments").bounding_box()
    bar = page.locator("#chart-comments .bars path").first.bounding_box()
    assert area is not None and bar is not None and bar["width"] > area["width"] / 4
    assert errors == []
