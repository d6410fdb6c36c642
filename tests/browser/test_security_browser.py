"""The Content-Security-Policy in a real browser (issue 14): the dashboard draws every Plotly
chart and a customer answers a survey with no policy violation and no console error, while
a script injected into the page is refused."""

from __future__ import annotations

import typing as t

from playwright.sync_api import expect
from test_accounts_views import staff

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

    from .conftest import LiveServer

#: Runs before the page's own scripts (Playwright's init scripts are not subject to the CSP):
#: every violation the browser reports is kept for the test to read.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def _watched(context: BrowserContext) -> tuple[Page, list[str]]:
    page = context.new_page()
    page.add_init_script(LISTEN)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page, errors


def _violations(page: Page) -> list[str]:
    return page.evaluate("window.__violations")


def _injected_script_is_refused(page: Page) -> None:
    """The policy is enforced, not only sent: an inline script added to the page never runs."""
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__ran = true"; document.body.appendChild(s); }"""
    )
    expect(page.locator("body")).to_be_attached()
    assert page.evaluate("window.__ran === undefined")
    assert any(v.startswith("script-src") for v in _violations(page)), _violations(page)


def test_the_dashboard_draws_its_charts_under_the_policy(
    app: t.Any,
    live_server: LiveServer,
    new_context: t.Callable[..., BrowserContext],
    stored_answer: t.Any,
) -> None:
    staff("ceo@example.com", role="executive")
    for days, nps in ((3, 10), (4, 9), (35, 2), (70, 8)):
        stored_answer("Happy Shop", days_ago=days, nps=nps)
    page, errors = _watched(new_context(viewport={"width": 1280, "height": 1000}))
    page.goto("/login")
    page.get_by_label("Email").fill("ceo@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/dashboard")  # type: ignore[arg-type]
    charts = page.locator(".chart-area")
    expect(charts.first).to_be_visible()
    count = charts.count()
    assert count >= 5
    for index in range(count):
        expect(charts.nth(index)).to_have_class("chart-area js-plotly-plot chart-drawn")
    charts.first.hover()  # Plotly's hover layer styles itself: still no violation
    assert _violations(page) == [] and errors == []
    _injected_script_is_refused(page)


def test_a_survey_is_answered_under_the_policy(
    app: t.Any, live_server: LiveServer, page: Page, invite: t.Any
) -> None:
    app.config["PARTIAL_SAVE_SECONDS"] = 1
    _, token = invite("en")
    page.add_init_script(LISTEN)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    # A score tapped in the email: the page's own script saves it (survey.js, a fetch).
    with page.expect_response(lambda r: r.url.endswith(f"/s/{token}/partial")) as saved:
        page.goto(f"/s/{token}?nps=9")
    assert saved.value.status == 204
    page.get_by_label("What is the main reason for your score?").fill("<script>x()</script>")
    page.get_by_role("button", name="Send answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answer")
    assert _violations(page) == [] and errors == []
    page.goto(f"/s/{token}")
    _injected_script_is_refused(page)
