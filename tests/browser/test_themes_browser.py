"""What a comment is about, in a real browser (Debian's Chromium): a Danish customer praises
the product and complains about the invoicing; the support lead's case page marks the billing
words negative and the product words positive, and the responses list finds the comment
under negative billing (issue 12)."""

from __future__ import annotations

import re
import typing as t

from playwright.sync_api import expect

from loyalty.auth import create_user
from loyalty.db import db

# As `make run` serves it: the server's own thread opens the case after the reply.
from .test_triage_browser import _follow_ups_in_the_server  # noqa: F401 (autouse fixture)

if t.TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import BrowserContext

MIXED = "Produktet er virkelig super, men faktureringen er elendig og fakturaen var forkert igen"


def test_a_mixed_danish_comment_shows_each_themes_own_sentiment(
    app: Flask,
    invite: t.Callable[..., t.Any],
    new_context: t.Callable[..., BrowserContext],
) -> None:
    lead = create_user("lead@example.com", "support", "correct horse battery")
    invitation, token = invite(language="da", account="Blandet A/S")
    invitation.contact.account.owner = lead
    db.session.commit()
    _, happy = invite(language="da", account="Glad ApS")

    customer = new_context().new_page()
    customer.goto(f"/s/{token}")
    customer.locator("label[for=nps-6]").click()
    customer.get_by_label("Hvad er den vigtigste grund til din vurdering?").fill(MIXED)
    customer.get_by_role("button", name="Send svar").click()
    expect(customer.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")
    other = new_context().new_page()
    other.goto(f"/s/{happy}")
    other.locator("label[for=nps-10]").click()
    other.get_by_label("Hvad er den vigtigste grund til din vurdering?").fill(
        "Fakturaen var helt fin og leveringen hurtig"
    )
    other.get_by_role("button", name="Send svar").click()
    expect(other.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")

    page = new_context(viewport={"width": 1280, "height": 900}, is_mobile=False).new_page()
    page.goto("/login")
    page.get_by_label("Email").fill("lead@example.com")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Triage").click()
    page.locator("table.queue tbody tr").first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Blandet A/S")

    quote = page.locator("blockquote.text")
    billing = quote.locator('mark.theme[data-theme="billing"]')
    expect(billing).to_have_text(["faktureringen", "fakturaen"])
    for k in range(2):
        expect(billing.nth(k)).to_have_class("theme negative")
    product = quote.locator('mark.theme[data-theme="quality"]')
    expect(product).to_have_text(["Produktet"])
    expect(product).to_have_class("theme positive")
    expect(product).to_have_attribute(
        "title", re.compile(r"^Product quality: positive \(\+0\.\d\d\)$")
    )
    expect(billing.first).to_have_attribute(
        "title", re.compile(r"^Billing and payment: negative \(-")
    )

    # From the case to every comment like it: the theme tag is a link to the filtered list.
    page.get_by_role("link", name="Billing and payment: negative").click()
    expect(page).to_have_url("/responses?theme=billing&sentiment=negative")  # type: ignore[arg-type]
    rows = page.locator("table.responses tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Blandet A/S")
    expect(rows.first).to_contain_text(MIXED)
    page.goto("/responses?theme=billing&sentiment=positive")
    expect(page.locator("table.responses tbody tr")).to_have_count(1)
    expect(page.locator("table.responses tbody tr").first).to_contain_text("Glad ApS")
