"""The exported report, opened from a file with the network blocked, draws every chart:
plotly.js, the drawing script and the styles are inside the file, and it asks for nothing."""

from __future__ import annotations

import typing as t
from pathlib import Path

from playwright.sync_api import expect

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser

NAME = '<b>x</b><img src=x onerror="document.title=1">'


def test_the_exported_report_opens_offline_with_its_charts(
    app: t.Any, browser: Browser, runner: t.Any, stored_answer: t.Any, tmp_path: Path
) -> None:
    for days, nps in ((3, 10), (4, 9), (35, 2), (70, 8), (100, 0)):
        stored_answer(NAME, days_ago=days, nps=nps, segment="b2b")
    out = tmp_path / "report.html"
    result = runner.invoke(args=["report", "render", "executive-monthly", "--output", str(out)])
    assert result.exit_code == 0, result.output

    context = browser.new_context(offline=True)
    asked: list[str] = []

    def refuse(route: t.Any) -> None:
        if not route.request.url.startswith("file:"):
            asked.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", refuse)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(out.as_uri())
    charts = page.locator(".chart-area")
    expect(charts).to_have_count(4)  # every panel of executive-monthly is a line chart
    for index in range(4):
        expect(charts.nth(index)).to_have_class("chart-area js-plotly-plot chart-drawn")
        expect(charts.nth(index).locator(".scatterlayer .point").first).to_be_attached()
    assert page.title() != "1"  # no markup from the data ran
    context.close()
    assert asked == [] and errors == []
