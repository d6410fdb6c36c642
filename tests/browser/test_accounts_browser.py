"""An account owner finds the account going bad and acts on its warning, in a real browser.

A B2B customer's decision maker keeps answering with detractor scores and writes of
cancelling; its history is rebuilt and today's health computed, which puts it at risk and
raises warnings. Its owner signs in, sees it at the top of /accounts under revenue at risk,
opens it, and sees the contributions chart and the history chart drawn by plotly.js, served by
the app itself (nothing is fetched from anywhere else), and acknowledges the warning with a
note. Without JavaScript the numbers are still there as tables and the forms still work.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

import sqlalchemy as sa
from playwright.sync_api import Page, expect
from test_accounts_views import account, staff, troubled

from loyalty.accounts import warnings as account_warnings
from loyalty.dashboard import charts
from loyalty.db import db
from loyalty.models import HealthWarning, utcnow

from .conftest import DESKTOP

if t.TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import BrowserContext

    from .conftest import LiveServer

NAME = "<b>Evil</b> A/S"


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/responses")  # type: ignore[arg-type]


def open_warning(account_id: int, kind: str = "at_risk") -> HealthWarning:
    """The account's open warning of ``kind``."""
    db.session.rollback()
    return db.session.scalars(
        sa.select(HealthWarning).where(
            HealthWarning.account_id == account_id,
            HealthWarning.kind == kind,
            HealthWarning.status == "open",
        )
    ).one()


def stored(warning: HealthWarning) -> HealthWarning:
    """The warning as the server's threads left it (ending this session's read first)."""
    db.session.rollback()
    found = db.session.get(HealthWarning, warning.id)
    assert found is not None
    return found


def test_owner_sees_the_account_at_risk_and_acknowledges_its_warning(
    app: Flask,
    live_server: LiveServer,
    new_context: t.Callable[..., BrowserContext],
    smtp_server: t.Any,
) -> None:
    owner = staff("owner@example.com")
    account("Calm ApS", score=80, value=90_000, owner=owner)
    account("Someone Else's A/S", score=20, value=10_000, owner=staff("other@example.com"))
    bad = troubled(NAME, owner=owner)
    warning = open_warning(bad.id)
    assert warning.status == "open"
    # Today's pass raised it (the rebuild's older ones are history, never emailed), and the
    # dispatcher tells the owner, through a real SMTP server on loopback.
    warning.raised_at = utcnow()
    db.session.commit()
    app.config["MAIL_URL"] = smtp_server.url
    assert account_warnings.notify_owners() >= 1
    (email,) = [m for m in smtp_server.messages if "[health at risk]" in m["Subject"]]
    assert email["To"] == "owner@example.com" and NAME in email["Subject"]
    assert f"/accounts/{bad.id}" in email.get_body(("plain",)).get_content()
    warning = open_warning(bad.id)

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
    sign_in(page, "owner@example.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Accounts").click()

    # Revenue at risk on top; the owner's account at risk first, its name shown as text.
    expect(page.locator("#revenue-at-risk")).to_contain_text(
        "260,000 annual value in 2 at-risk accounts"
    )
    first = page.locator("table.accounts tbody tr").first
    expect(first).to_contain_text(NAME)
    expect(first).to_contain_text("At risk")
    expect(first).to_contain_text("health at risk")
    expect(page.locator("table.accounts b")).to_have_count(0)
    expect(page.locator("#accounts-summary")).to_contain_text("your 2 accounts first")
    first.get_by_role("link", name=NAME).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(NAME)
    # plotly.js comes from the app, and draws both charts as SVG.
    scripts = page.locator("script[src]")
    sources = [scripts.nth(i).get_attribute("src") for i in range(scripts.count())]
    assert f"/charts/plotly-{charts.PLOTLY_JS_VERSION}.min.js" in sources
    assert all(s and s.startswith("/") for s in sources), sources
    for chart in ("#contributions-chart", "#history-chart"):
        expect(page.locator(f"{chart}.chart-drawn svg.main-svg").first).to_be_visible()
    bars = page.locator("#contributions-chart g.trace.bars path")
    expect(bars.first).to_be_visible()
    assert bars.count() == len(page.locator("#why tbody tr").all()) - 2  # base and score rows
    expect(page.locator("#contributions-chart .gtitle")).to_contain_text(f"Why {NAME} scores")
    expect(page.locator("#contributions-chart b")).to_have_count(0)  # the name stayed text
    expect(page.locator("#history-chart .annotation-text").first).to_have_text("healthy from 65")
    expect(page.locator("#history-chart .annotation-text").nth(1)).to_have_text("at risk below 40")
    expect(page.locator("#history-chart path.point").first).to_be_visible()
    # The numbers behind each chart are a table a screen reader (or anyone) can open.
    expect(page.locator("#why table")).to_be_hidden()  # folded away once drawn
    expect(page.locator("#why .chart-fallback")).to_be_hidden()
    page.locator("#why summary").click()
    expect(page.locator("#why table")).to_be_visible()
    expect(page.locator("#why table")).to_contain_text("Churn cues")

    # Acknowledge the at-risk warning with a note.
    form = page.locator(f"#warning-{warning.id}")
    form.get_by_label("Note").fill("Calling Birgit on Monday <about renewal>.")
    form.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_role("status")).to_have_text("Warning acknowledged: health at risk.")
    expect(page.locator(f"#warning-{warning.id}")).to_contain_text(
        "Calling Birgit on Monday <about renewal>."
    )
    expect(page.locator("#timeline")).to_contain_text(
        "Warning acknowledged by owner@example.com: health at risk"
    )
    warning = stored(warning)
    assert warning.status == "acknowledged" and warning.acted_by_id == owner.id
    assert warning.note == "Calling Birgit on Monday <about renewal>."
    assert elsewhere == [] and errors == []


def test_the_account_page_works_without_javascript(
    app: Flask, new_context: t.Callable[..., BrowserContext]
) -> None:
    staff("admin@example.com", role="admin")
    bad = troubled("Acme A/S")
    page = new_context(java_script_enabled=False, **DESKTOP).new_page()
    sign_in(page, "admin@example.com")
    page.goto(f"/accounts/{bad.id}")
    expect(page.get_by_text("The chart needs JavaScript").first).to_be_visible()
    expect(page.locator("#health-history table").first).to_be_visible()  # open already
    expect(page.locator("#health-history table").first).to_contain_text("Week ending")
    expect(page.locator("#why table")).to_contain_text("Churn cues")
    warning = open_warning(bad.id)
    form = page.locator(f"#warning-{warning.id}")
    # A resolve without a note is refused with the reason; then it goes through.
    form.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("alert").first).to_contain_text("Please write a note")
    page.locator(f"#warning-{warning.id}").get_by_label("Note").fill("Renewed for a year.")
    page.locator(f"#warning-{warning.id}").get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text("Warning resolved: health at risk.")
    assert stored(warning).status == "resolved"
    # Churned today (the date field offers today), then back again.
    page.get_by_role("button", name="Mark as churned").click()
    expect(page.get_by_role("status")).to_contain_text("Marked as churned on")
    expect(page.locator(".churned-tag")).to_be_visible()
    page.get_by_role("button", name="Reactivate").click()
    expect(page.get_by_role("status")).to_have_text("The account is live again.")
    expect(page.locator(".churned-tag")).to_have_count(0)
