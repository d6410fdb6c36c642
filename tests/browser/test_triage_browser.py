"""A support lead closes the loop in a real browser (Debian's Chromium).

A customer answers with a detractor score and an angry comment holding HTML; the support
lead signs in, finds the case at the top of the queue with the angry words highlighted,
logs a phone call from the keyboard, sends a reply that a real SMTP server on loopback
receives, resolves the case as recovered, and the responsiveness page counts it. The same
steps then run with JavaScript switched off.
"""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from loyalty.auth import create_user
from loyalty.db import db
from loyalty.models import Account, Case

from .conftest import DESKTOP

if t.TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import BrowserContext

ANGRY = "Terrible, useless support <b>nobody</b> answers. <script>alert('x')</script> Awful!"


@pytest.fixture(autouse=True)
def _follow_ups_in_the_server(app: Flask) -> t.Iterator[None]:
    """As `make run` serves it: the server's own thread opens the case after the reply, and
    the queue shows it within seconds (the page assertions wait up to 5 s)."""
    from loyalty.survey import follow_ups

    app.config["FOLLOW_UPS_IN_APP"] = True
    yield
    assert follow_ups.in_app.wait_idle(10)  # none may write to the next test's database


def stored_case(account: str = "Acme A/S") -> Case:
    """The account's case, as the server threads left it (ending this session's read first)."""
    db.session.rollback()
    return db.session.scalars(sa.select(Case).join(Account).where(Account.name == account)).one()


def customer_answers(page: Page, token: str) -> None:
    page.goto(f"/s/{token}")
    page.locator("label[for=nps-2]").click()
    page.get_by_label("What is the main reason for your score?").fill(ANGRY)
    page.get_by_role("button", name="Send answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answer")


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/responses")  # type: ignore[arg-type]


def test_support_lead_closes_the_loop(
    app: Flask,
    invite: t.Callable[..., t.Any],
    smtp_server: t.Any,
    new_context: t.Callable[..., BrowserContext],
) -> None:
    app.config["MAIL_URL"] = smtp_server.url
    lead = create_user("lead@example.com", "support", "correct horse battery")
    invitation, token = invite(language="en", name="Ann <i>Angry</i>", account="Acme A/S")
    invitation.contact.account.owner = lead
    db.session.commit()
    _, other_token = invite(language="da", account="Calm ApS")

    customer_answers(new_context().new_page(), token)
    calm = new_context().new_page()
    calm.goto(f"/s/{other_token}")
    calm.locator("label[for=nps-5]").click()
    calm.get_by_role("button", name="Send svar").click()
    expect(calm.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")

    page = new_context(**DESKTOP).new_page()
    sign_in(page, "lead@example.com")
    page.get_by_role("link", name="Triage").click()
    first_row = page.locator("table.queue tbody tr").first
    expect(first_row).to_contain_text("Acme A/S")  # the churny, angry one comes first
    expect(first_row).to_contain_text("<b>nobody</b>")  # customer HTML shown as text
    expect(page.locator("table.queue b, table.queue script")).to_have_count(0)
    first_row.get_by_role("link").click()

    case = stored_case()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Case #{case.id}: Acme A/S")
    comment = page.locator("blockquote.text").first
    expect(comment).to_contain_text("<script>alert('x')</script>")
    marked = comment.locator("mark.negative")
    assert {"Terrible", "useless", "Awful"} <= set(marked.all_inner_texts())
    expect(comment.locator("b, script, i")).to_have_count(0)
    expect(page.get_by_text("Ann <i>Angry</i>").first).to_be_visible()

    # A phone call, logged from the keyboard alone.
    page.get_by_label("How").focus()
    page.keyboard.press("Home")  # "Phone", the first choice
    page.keyboard.press("Tab")
    expect(page.get_by_label("What was said")).to_be_focused()
    page.keyboard.type("Called Ann; apologised and sent a replacement <today>.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Log contact")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Contact logged.")
    expect(page.locator("ol.history")).to_contain_text("contact (phone)")
    expect(page.locator("ol.history")).to_contain_text("replacement <today>.")

    # The reply email, in English from the template, through the SMTP server.
    expect(page.get_by_label("Message")).to_have_value(
        "Thank you for telling us about your experience, and I am sorry we did not live up "
        "to your expectations.\n\nI have looked into what happened and would like to put it "
        "right. Just reply to this email, or tell me when it suits you that I call."
    )
    page.get_by_label("Message").fill("Your replacement is on its way. Sorry!")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_have_text(f"Reply sent to {invitation.contact.email}.")
    assert smtp_server.received.wait(5)
    (message,) = smtp_server.messages
    assert message["To"].addresses[0].addr_spec == invitation.contact.email
    assert message["Subject"] == "About your feedback to Loyalty Demo A/S"
    assert message["Reply-To"] == "lead@example.com"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.startswith("Hi Ann <i>Angry</i>,") and "Your replacement is on its way." in text
    assert "Ann &lt;i&gt;Angry&lt;/i&gt;" in html and "<i>" not in html

    # Resolved as recovered.
    page.get_by_label("Recovered", exact=True).check()
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text("Resolved: Recovered.")
    case = stored_case()
    assert (case.status, case.outcome) == ("resolved", "recovered")
    assert case.first_contact_at is not None and case.resolved_at is not None
    kinds = [e.kind for e in case.history]
    assert kinds == ["opened", "contact", "status", "email_sent", "resolved"]

    # The responsiveness page counts it.
    page.get_by_role("link", name="Responsiveness").click()
    total = page.locator("table[data-group=total] tbody tr")
    expect(total.locator("td").first).to_have_text("2")  # two cases opened today
    lead_row = page.locator("table[data-group=assignee] tbody tr", has_text="lead@example.com")
    expect(lead_row.locator("td").first).to_have_text("1")
    expect(lead_row.locator("td").nth(3)).to_contain_text("100 %")  # contacted within SLA
    expect(lead_row.locator("td").nth(6)).to_contain_text("100 %")  # resolved within SLA


def test_actions_work_without_javascript(
    app: Flask,
    invite: t.Callable[..., t.Any],
    new_context: t.Callable[..., BrowserContext],
) -> None:
    create_user("admin@example.com", "admin", "correct horse battery")
    db.session.commit()
    _, token = invite(language="en", account="Acme A/S")
    customer_answers(new_context().new_page(), token)

    page = new_context(java_script_enabled=False, **DESKTOP).new_page()
    sign_in(page, "admin@example.com")
    page.goto("/triage")
    page.locator("table.queue tbody tr").first.get_by_role("link").click()
    page.get_by_label("Note", exact=True).fill("Will call tomorrow.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("Note added.")
    page.get_by_label("Status", exact=True).select_option("waiting_on_customer")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator(".case-state")).to_contain_text("Waiting on customer")
    # A bad action is refused with the reason, and nothing typed is lost.
    page.get_by_label("Note (optional)").fill("They were happy after all.")
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("alert").first).to_contain_text("Choose an outcome")
    expect(page.get_by_label("Note (optional)")).to_have_value("They were happy after all.")
    page.get_by_label("No action needed").check()
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("status")).to_have_text("Resolved: No action needed.")
    assert stored_case().status == "resolved"


LONG_WORD = "Supercalifragilisticexpialidocious" * 4  # one 136-letter word, as pasted URLs are
LONG_COMMENT = " ".join(
    ["Nobody answered the phone for three days and the invoice was wrong."] * 12
)


def page_overflow(page: Page, screen: int = 390) -> int:
    """How far the page is wider than the screen (0 or less when it reflows, WCAG 1.4.10).

    A mobile browser widens its layout viewport (``innerWidth``) to fit a page that
    overflows, so the page is measured against the screen's width as well."""
    return page.evaluate(
        "s => Math.max(document.documentElement.scrollWidth, window.innerWidth) - s", screen
    )


def test_queue_funnel_and_case_fit_a_phone(
    app: Flask, invite: t.Callable[..., t.Any], new_context: t.Callable[..., BrowserContext]
) -> None:
    """A support lead opens an urgent case from a phone (390×844): no page scrolls sideways;
    wide tables scroll inside their own box, the queue's cases are cards, long words wrap
    (issue 13)."""
    create_user("lead@example.com", "support", "correct horse battery")
    db.session.commit()
    _, token = invite(language="en", name="Ann " + LONG_WORD, account="Acme " + LONG_WORD)
    page = new_context().new_page()  # a phone, 390×844
    page.goto(f"/s/{token}")
    page.locator("label[for=nps-1]").click()
    page.get_by_label("What is the main reason for your score?").fill(
        f"Terrible, awful. {LONG_WORD} {LONG_COMMENT}"
    )
    page.get_by_label("What could we do better?").fill(LONG_WORD + "!")
    page.get_by_role("button", name="Send answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answer")

    sign_in(page, "lead@example.com")
    for path in ("/triage", "/funnel", "/dashboard", "/responsiveness", "/responses", "/accounts"):
        page.goto(path)
        assert page_overflow(page) <= 0, path
    page.locator("a[href^='/accounts/']").first.click()  # the account's page
    expect(page.get_by_role("heading", level=1)).to_contain_text("Acme")
    assert page_overflow(page) <= 0
    # Wide tables keep their columns and scroll inside a labelled, focusable box.
    page.goto("/triage")
    box = page.get_by_role("region", name="Cases")
    expect(box).to_have_attribute("tabindex", "0")
    assert box.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    # On a phone each case is a card of lines, the full width, with nothing to scroll.
    assert box.evaluate("e => e.scrollWidth <= e.clientWidth")
    assignee = page.locator("table.queue tbody tr").first.locator('td[data-label="Assignee"]')
    width = assignee.evaluate("e => e.getBoundingClientRect().width")
    assert width > 300, width

    page.locator("table.queue tbody tr a").first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page_overflow(page) <= 0
    comment = page.locator("blockquote.text").first
    expect(comment).to_contain_text(LONG_WORD)
    # Text is wrapped, not cut off: the comment's box holds all of its text.
    assert comment.evaluate("e => e.scrollWidth <= e.clientWidth")
    # Forms stack: every action form fits the screen.
    widths = page.eval_on_selector_all(
        "form.action", "fs => fs.map(f => f.getBoundingClientRect().right)"
    )
    assert widths and max(widths) <= 390
