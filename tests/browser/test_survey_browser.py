"""A real browser (Debian's Chromium) answering surveys served by the app on loopback.

The main test follows a Danish customer from the invitation email, received by a real SMTP
server, through the survey on a phone, by touch and by keyboard, to the stored, scored answer,
and back again to change it.
"""

from __future__ import annotations

import re
import time
import typing as t
from email.message import EmailMessage
from html.parser import HTMLParser

import sqlalchemy as sa
from playwright.sync_api import Page, expect

from loyalty import sentiment
from loyalty.db import db
from loyalty.models import Invitation, Response

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient, FlaskCliRunner
    from playwright.sync_api import BrowserContext

    from .conftest import LiveServer

ANGRY_DA = "Meget utilfreds, ingen svarer telefonen. Prøv selv at ringe – <b>html</b> ændrer intet!"
IMPROVE_DA = "Svar på mails inden for én dag. Så får I også æbleskiver, ø og å."


def stored_responses() -> list[Response]:
    """Every response as the database has it now.

    The browser's requests are handled by the server thread with its own sessions; ending
    the test's transaction (nothing is pending in it) expires what this session had loaded.
    """
    db.session.rollback()
    return list(db.session.scalars(sa.select(Response).order_by(Response.id)))


class _Links(HTMLParser):
    """The (text, href) of every link in an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append(("".join(self._text).strip(), self._href))
            self._href = None


def links_in(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    parser.close()
    return parser.links


def group(page: Page, legend: str):
    """A question's radio group, found the way a screen reader finds it: by its legend."""
    return page.get_by_role("group", name=re.compile(re.escape(legend)))


def outline_style(page: Page, selector: str) -> str:
    """The computed outline style of an element: 'none' when no focus ring is drawn."""
    return page.eval_on_selector(selector, "e => getComputedStyle(e).outlineStyle")


def test_danish_customer_answers_from_the_emailed_link(
    app: Flask,
    runner: FlaskCliRunner,
    smtp_server: t.Any,
    live_server: LiveServer,
    new_context: t.Callable[..., BrowserContext],
) -> None:
    # The tapped score would otherwise be saved as a partial answer in the middle of the
    # test, at a moment that depends on the machine's speed; that is tested on its own below.
    app.config["PARTIAL_SAVE_SECONDS"] = 3600
    made = runner.invoke(
        args=[
            "invite",
            "--email",
            "mette@acme.dk",
            "--name",
            "Mette Ærø",
            "--account",
            "Acme A/S",
            "--segment",
            "b2b",
            "--language",
            "da",
            "--survey",
            "post-sale",
        ]
    )
    assert made.exit_code == 0, made.output
    survey_link = made.output.strip()
    assert survey_link.startswith(live_server("/s/"))

    app.config["MAIL_URL"] = smtp_server.url
    sent = runner.invoke(args=["dispatch"])
    assert sent.exit_code == 0, sent.output
    assert "sent 1," in sent.output
    assert smtp_server.received.wait(5)
    (message,) = smtp_server.messages
    assert isinstance(message, EmailMessage)

    # The email: Danish, text and HTML, one-click unsubscribe (RFC 8058).
    assert message["To"].addresses[0].addr_spec == "mette@acme.dk"
    assert message["Subject"].startswith("Hvordan var dit køb hos")
    assert message["Content-Language"] == "da"
    unsubscribe = message["List-Unsubscribe"]
    assert re.fullmatch(rf"<{re.escape(live_server('/u/'))}[^>]+>", unsubscribe)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hej Mette Ærø" in text and "Tryk på et tal for at svare:" in text
    assert '<html lang="da">' in html and "Åbn undersøgelsen" in html

    score_links = [(label, href) for label, href in links_in(html) if "?nps=" in href]
    assert [label for label, _ in score_links] == [str(n) for n in range(11)]
    link_9 = dict(score_links)["9"]
    assert link_9 == f"{survey_link}?nps=9"
    assert f"9: {link_9}" in text  # the text part offers the same link
    assert ("Åbn undersøgelsen", survey_link) in links_in(html)

    # A Danish phone opens the link for 9.
    page = new_context(locale="da-DK").new_page()
    page.goto(link_9)
    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page).to_have_title("Hvordan var din oplevelse med Loyalty Demo A/S?")
    nps = group(page, "Hvor sandsynligt er det, at du vil anbefale")
    expect(nps.get_by_role("radio")).to_have_count(11)
    expect(page.locator("#nps-9")).to_be_checked()
    expect(page.locator("input[type=radio]:checked")).to_have_count(1)

    # Keyboard: Tab reaches the chosen score first; arrow keys move the choice.
    page.keyboard.press("Tab")
    expect(page.locator("#nps-9")).to_be_focused()
    # The radio itself is invisible; its label is the button, so the label shows the focus.
    assert outline_style(page, "label[for=nps-9]") != "none"
    assert outline_style(page, "label[for=nps-8]") == "none"
    page.keyboard.press("ArrowRight")
    expect(page.locator("#nps-10")).to_be_checked()
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    expect(page.locator("#nps-6")).to_be_checked()
    expect(page.locator("#nps-6")).to_be_focused()
    assert outline_style(page, "label[for=nps-6]") != "none"
    assert outline_style(page, "label[for=nps-9]") == "none"
    expect(page.locator("#nps-9")).not_to_be_checked()

    # Touch: tapping the numbers (the labels) answers CSAT and CES.
    group(page, "Hvor tilfreds er du samlet set").get_by_text("2", exact=True).tap()
    group(page, "Hvor let var det").get_by_text("3", exact=True).click()
    expect(page.locator("#csat-2")).to_be_checked()
    expect(page.locator("#ces-3")).to_be_checked()

    reason = page.get_by_label("Hvad er den vigtigste grund til din vurdering?")
    reason.press_sequentially(ANGRY_DA)
    page.get_by_label("Hvad kunne vi gøre bedre?").fill(IMPROVE_DA)
    expect(reason).to_have_value(ANGRY_DA)

    page.get_by_role("button", name="Send svar").click()
    expect(page).to_have_url(f"{survey_link}/thanks")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")
    expect(page.locator("html")).to_have_attribute("lang", "da")

    (response,) = stored_responses()
    survey = app.extensions["loyalty.surveys"]["post-sale"]
    assert (response.nps, response.csat, response.ces) == (6, 2, 3)
    assert response.complete and response.language == "da"
    assert response.survey == "post-sale" and response.survey_version == survey.version
    comments = {a.question: a for a in response.answers}
    assert comments["reason"].text == ANGRY_DA
    assert comments["reason"].sentiment == "negative" and comments["reason"].polarity < 0
    assert comments["reason"].sentiment_language == "da"
    assert comments["reason"].scorer_version == sentiment.SCORER_VERSION
    assert comments["improve"].text == IMPROVE_DA
    assert comments["improve"].sentiment in ("negative", "neutral", "positive")
    invitation = db.session.get(Invitation, response.invitation_id)
    assert invitation.status == "sent" and invitation.answered_at is not None

    # Back from the thanks page: everything is filled in and can be changed.
    page.get_by_role("link", name="Ret mine svar").click()
    expect(page).to_have_url(survey_link)
    expect(page.get_by_role("status")).to_have_text(
        "Du har allerede svaret. Du kan rette dine svar herunder."
    )
    expect(page.locator("#nps-6")).to_be_checked()
    expect(page.locator("#csat-2")).to_be_checked()
    expect(page.locator("#ces-3")).to_be_checked()
    expect(reason).to_have_value(ANGRY_DA)  # shown as text, not as markup
    expect(page.locator("main b")).to_have_count(0)
    expect(page.get_by_label("Hvad kunne vi gøre bedre?")).to_have_value(IMPROVE_DA)

    nps.get_by_text("8", exact=True).tap()
    page.get_by_label("Hvad kunne vi gøre bedre?").fill("")
    page.get_by_role("button", name="Gem ændringer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")

    (changed,) = stored_responses()
    assert changed.id == response.id
    assert (changed.nps, changed.csat, changed.ces) == (8, 2, 3)
    assert [(a.question, a.text) for a in changed.answers] == [("reason", ANGRY_DA)]


def test_survey_works_without_javascript(
    invite: t.Callable[..., t.Any], new_context: t.Callable[..., BrowserContext]
) -> None:
    _, token = invite(language="en")
    page = new_context(java_script_enabled=False).new_page()
    page.goto(f"/s/{token}?nps=10")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#nps-10")).to_be_checked()

    group(page, "How likely is it").get_by_text("7", exact=True).click()
    group(page, "Overall, how satisfied").get_by_text("4", exact=True).click()
    page.get_by_label("What is the main reason for your score?").fill("Quick delivery, kind staff.")
    page.get_by_role("button", name="Send answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answer")

    (response,) = stored_responses()
    assert (response.nps, response.csat, response.ces) == (7, 4, None)
    assert response.complete and response.language == "en"
    (comment,) = response.answers
    assert comment.text == "Quick delivery, kind staff."
    assert comment.sentiment is not None


def test_score_tapped_in_email_is_kept_once_the_page_has_been_seen(
    app: Flask,
    client: FlaskClient,
    invite: t.Callable[..., t.Any],
    page: Page,
) -> None:
    app.config["PARTIAL_SAVE_SECONDS"] = 1
    _, token = invite(language="da")

    # A mail scanner fetching the link (no script runs) stores nothing.
    assert client.get(f"/s/{token}?nps=3").status_code == 200
    assert stored_responses() == []

    started = time.monotonic()
    with page.expect_response(lambda r: r.url.endswith(f"/s/{token}/partial")) as saved:
        page.goto(f"/s/{token}?nps=3")
        expect(page.locator("#nps-3")).to_be_checked()
    assert saved.value.status == 204
    assert time.monotonic() - started >= app.config["PARTIAL_SAVE_SECONDS"]

    (response,) = stored_responses()
    assert response.nps == 3 and not response.complete
    assert response.csat is None and response.answers == []

    # Coming back, the saved score is there; the survey is not shown as answered yet.
    page.goto(f"/s/{token}")
    expect(page.locator("#nps-3")).to_be_checked()
    expect(page.get_by_role("button", name="Send svar")).to_be_visible()
    expect(page.get_by_role("status")).to_have_count(0)


def test_missing_score_is_explained_in_danish_and_typed_text_is_kept(
    invite: t.Callable[..., t.Any], page: Page
) -> None:
    _, token = invite(language="da")
    page.goto(f"/s/{token}")
    # The server's check is under test, so the browser's own check of `required` (which works
    # with or without JavaScript) is taken out of the way, as an old browser would ignore it.
    page.eval_on_selector_all("[required]", "els => els.forEach(e => e.required = false)")
    group(page, "Hvor tilfreds er du samlet set").get_by_text("4", exact=True).click()
    reason = page.get_by_label("Hvad er den vigtigste grund til din vurdering?")
    reason.fill("Glemte at vælge et tal – æøå")

    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Send svar").click()
    assert posted.value.status == 422

    expect(page.locator("html")).to_have_attribute("lang", "da")
    expect(page.get_by_role("alert")).to_contain_text("Der er 1 fejl i dine svar.")
    nps = group(page, "Hvor sandsynligt er det")
    expect(nps).to_contain_text("Besvar venligst dette spørgsmål.")
    expect(nps).to_have_accessible_description(re.compile("Besvar venligst dette spørgsmål."))
    expect(reason).to_have_value("Glemte at vælge et tal – æøå")
    expect(page.locator("#csat-4")).to_be_checked()
    assert stored_responses() == []

    nps.get_by_text("5", exact=True).click()
    page.get_by_role("button", name="Send svar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Tak for dit svar")
    (response,) = stored_responses()
    assert (response.nps, response.csat) == (5, 4)
    assert response.answers[0].text == "Glemte at vælge et tal – æøå"


def block_cookies(context: BrowserContext) -> None:
    """Make ``context`` a browser that keeps no cookies, as one set to block them does.

    Every request goes out without a Cookie header and every response arrives without
    Set-Cookie, and scripts cannot write ``document.cookie`` either.
    """

    def strip(route: t.Any) -> None:
        headers = {k: v for k, v in route.request.headers.items() if k.lower() != "cookie"}
        response = route.fetch(headers=headers, max_redirects=0)
        context.clear_cookies()  # route.fetch shares the context's cookie jar
        kept = {k: v for k, v in response.headers.items() if k.lower() != "set-cookie"}
        route.fulfill(response=response, headers=kept)

    context.route("**/*", strip)
    context.add_init_script(
        "Object.defineProperty(document, 'cookie', {get: () => '', set: () => {}});"
    )


def test_customer_whose_browser_blocks_cookies_answers(
    app: Flask, invite: t.Callable[..., t.Any], new_context: t.Callable[..., BrowserContext]
) -> None:
    """The survey link is the credential: the form's token needs no session cookie."""
    app.config["PARTIAL_SAVE_SECONDS"] = 1
    _, token = invite(language="en")
    context = new_context()
    block_cookies(context)
    page = context.new_page()
    with page.expect_response(lambda r: r.url.endswith(f"/s/{token}/partial")) as saved:
        page.goto(f"/s/{token}?nps=4")
        expect(page.locator("#nps-4")).to_be_checked()
    assert saved.value.status == 204  # the page's own script works without cookies too

    group(page, "How likely is it").get_by_text("8", exact=True).click()
    group(page, "Overall, how satisfied").get_by_text("5", exact=True).click()
    page.get_by_label("What is the main reason for your score?").fill("No cookies, still heard.")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Send answers").click()
    assert posted.value.status == 303
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answer")
    assert context.cookies() == []

    (response,) = stored_responses()
    assert (response.nps, response.csat, response.complete) == (8, 5, True)
    assert response.answers[0].text == "No cookies, still heard."
    # A request still in flight when the context closes must not fail the next test.
    context.unroute_all(behavior="ignoreErrors")
    context.close()


def test_scales_fit_one_row_on_a_phone_with_end_labels_under_their_ends(
    invite: t.Callable[..., t.Any], page: Page
) -> None:
    """At 390 px the 0–10 scale is one row of tappable buttons, and each scale's end labels
    sit under its first and last option, not under empty space (issue 13)."""
    _, token = invite(language="en")
    page.goto(f"/s/{token}")
    assert page.evaluate("window.innerWidth") == 390
    for name, count in (("csat", 5), ("ces", 7), ("nps", 11)):
        boxes = page.eval_on_selector_all(
            f"fieldset:has(#{name}-anchors) .choices label",
            "ls => ls.map(l => [l.offsetTop, l.offsetHeight, l.getBoundingClientRect().left,"
            " l.getBoundingClientRect().right])",
        )
        assert len(boxes) == count
        assert len({top for top, _, _, _ in boxes}) == 1, name  # one row
        assert min(height for _, height, _, _ in boxes) >= 44, name  # a finger's tap
        low, high = page.eval_on_selector_all(
            f"#{name}-anchors span",
            "ss => ss.map(s => [s.getBoundingClientRect().left, s.getBoundingClientRect().right])",
        )
        assert abs(low[0] - boxes[0][2]) <= 1, name
        assert abs(high[1] - boxes[-1][3]) <= 1, name
        text_right = page.eval_on_selector(
            f"#{name}-anchors span:last-child",
            "s => { const r = document.createRange(); r.selectNodeContents(s);"
            " return r.getBoundingClientRect().right; }",
        )
        assert abs(text_right - boxes[-1][3]) <= 1, name  # the words end under the last option
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_a_failed_submit_focuses_the_summary_whose_links_lead_to_the_fields(
    invite: t.Callable[..., t.Any], page: Page
) -> None:
    _, token = invite(language="en")
    page.goto(f"/s/{token}")
    page.eval_on_selector_all("[required]", "els => els.forEach(e => e.required = false)")
    page.get_by_label("What is the main reason for your score?").fill("x" * 10)
    page.evaluate("document.getElementById('reason').maxLength = 99999")
    page.get_by_label("What is the main reason for your score?").fill("x" * 5001)
    page.get_by_role("button", name="Send answers").click()

    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("There are 2 problems with your answers.")
    expect(page.locator("#errors")).to_be_focused()
    summary.get_by_role("link", name=re.compile("How likely")).click()
    expect(page.locator("#nps-0")).to_be_focused()
    summary.get_by_role("link", name=re.compile("main reason")).click()
    expect(page.locator("#reason")).to_be_focused()


_BUTTONS = """as => as.map(a => {
    const box = a.getBoundingClientRect();
    return {label: a.getAttribute("aria-label"), text: a.textContent.trim(),
            x: box.left, y: box.top, width: box.width, height: box.height};
})"""


def _score_buttons(page: Page) -> list[dict[str, t.Any]]:
    return page.eval_on_selector_all("a[href*='?nps=']", _BUTTONS)


def _rows(buttons: list[dict[str, t.Any]]) -> list[list[str]]:
    """The buttons' labels row by row, as the eye reads them (top to bottom, left to right)."""
    rows: dict[int, list[dict[str, t.Any]]] = {}
    for button in buttons:
        rows.setdefault(round(button["y"]), []).append(button)
    return [
        [b["label"] for b in sorted(row, key=lambda b: b["x"])] for _, row in sorted(rows.items())
    ]


def test_the_invitation_email_fits_a_phone_with_buttons_a_finger_can_tap(
    app: Flask,
    invite: t.Callable[..., t.Any],
    smtp_server: t.Any,
    new_context: t.Callable[..., BrowserContext],
) -> None:
    """The HTML part as received over SMTP, shown at 390 px: nothing wider than the phone,
    each tap-to-score button at least 44 x 44 px (issue 15), in two rows 0-5 and 6-10;
    the same without the media query (a client that drops <style>); one row on a desktop
    screen; unsubscribe a word (issue 13)."""
    from loyalty import emails

    from .conftest import DESKTOP

    invitation, _ = invite(language="da", name="Mette Ærø")
    app.config["MAIL_URL"] = smtp_server.url
    with emails.transport() as transport:
        transport.send(emails.invitation(invitation))
    assert smtp_server.received.wait(5)
    (message,) = smtp_server.messages
    html = message.get_body(("html",)).get_content()
    without_style = re.sub(r"<style>.*?</style>", "", html, flags=re.S)
    assert "@media" in html and "@media" not in without_style
    in_order = [str(n) for n in range(11)]

    for shown in (html, without_style):
        page = new_context().new_page()  # a phone, 390 px wide
        page.set_content(shown)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        buttons = _score_buttons(page)
        assert [b["label"] for b in buttons] == [b["text"] for b in buttons] == in_order
        assert min(b["width"] for b in buttons) >= 44, buttons
        assert min(b["height"] for b in buttons) >= 44, buttons
        assert max(b["x"] + b["width"] for b in buttons) <= 390
        assert _rows(buttons) == [in_order[:6], in_order[6:]]
        expect(page.get_by_role("link", name="Afmeld", exact=True)).to_be_visible()
        assert "/u/" not in page.locator("body").inner_text()
        page.close()

    desktop = new_context(**DESKTOP).new_page()
    desktop.set_content(html)
    buttons = _score_buttons(desktop)
    assert _rows(buttons) == [in_order]  # one row, 0 to 10
    assert min(b["width"] for b in buttons) >= 44 and min(b["height"] for b in buttons) >= 44
    assert desktop.evaluate("document.documentElement.scrollWidth") <= 1280


def test_a_comment_box_filled_to_its_maxlength_is_accepted(
    invite: t.Callable[..., t.Any], new_context: t.Callable[..., BrowserContext]
) -> None:
    """The box and the server count alike (UTF-16 units, a line break once): a box the
    browser lets no more into is never refused as too long, with emoji or line breaks."""
    _, token = invite(language="en")
    page = new_context().new_page()
    page.goto(f"/s/{token}")
    group(page, "How likely is it").get_by_text("9", exact=True).click()
    reason = page.get_by_label("What is the main reason for your score?")
    # 3,600 units of lines and 3,000 of emoji, cut at 5,000: 700 emoji are left, and the
    # form sends the 1,200 line breaks as CRLF (5,500 code points).
    reason.fill("ok\n" * 1200 + "\U0001f600" * 1500)
    typed = reason.input_value()
    assert typed.endswith("\U0001f600") and typed.count("\U0001f600") == 700
    page.get_by_role("button", name="Send answers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your answer")
    (response,) = stored_responses()
    assert response.answers[0].text.count("\U0001f600") == 700
