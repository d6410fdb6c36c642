"""An admin runs Loyalty without a shell, in a real browser (Debian's Chromium): invites a
support lead, whose set-password e-mail arrives at a real SMTP server on loopback; uploads a
contacts file with one bad row, sees it reported before anything is written, fixes and
imports it; then serves a privacy request (export, then erasure) and checks that the
person's name and comment are nowhere any more while the dashboard's counts stay; the audit
log shows each step and who took it."""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from pathlib import Path

import sqlalchemy as sa
from conftest import follow_up
from playwright.sync_api import expect

from loyalty import emails, mailer
from loyalty.auth import create_user
from loyalty.db import db
from loyalty.models import Case, Contact, utcnow
from loyalty.specs import surveys
from loyalty.survey.responses import save_response

from .conftest import DESKTOP

if t.TYPE_CHECKING:
    from flask import Flask
    from playwright.sync_api import BrowserContext, Page

    from .conftest import LiveServer

NAME = "Mette Privatsen"
EMAIL = "mette.privatsen@example.com"
COMMENT = "Leveringen var elendig og ingen ringede tilbage, Mette Privatsen er skuffet"
BAD = (
    "email,name,language,account\n"
    "ole@example.com,Ole Olsen,da,Privat ApS\n"
    "sofie-at-example.com,Sofie Berg,da,Privat ApS\n"
)
FIXED = BAD.replace("sofie-at-example.com", "sofie@example.com")


def the_person_answered(app: Flask, invite: t.Callable[..., t.Any]) -> Case:
    """A detractor's Danish answer with a comment naming her, its case, and her invitation
    e-mail in the outbox folder."""
    at = utcnow() - dt.timedelta(days=2)
    invitation, _ = invite(
        language="da", name=NAME, email=EMAIL, account="Privat ApS", segment="b2c", due_at=at
    )
    emails.transport().send(emails.invitation(invitation))  # MAIL_URL is the outbox here
    invitation.status, invitation.sent_at = "sent", at
    values = {"nps": 2, "csat": 2, "ces": 3, "reason": COMMENT}
    save_response(invitation, surveys(app)["post-sale"], values, complete=True, now=at)
    db.session.commit()
    follow_up()
    return db.session.scalars(sa.select(Case)).one()


def sign_in(page: Page, email: str, password: str = "correct horse battery") -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def upload(page: Page, text: str) -> None:
    page.goto("/admin/imports")
    page.get_by_label("contacts").check()
    page.get_by_label("CSV file").set_input_files(
        {"name": "people.csv", "mimeType": "text/csv", "buffer": text.encode()}
    )
    page.get_by_role("button", name="Check the file").click()


def dashboard_numbers(page: Page) -> list[str]:
    page.goto("/dashboard")
    return page.locator("table.trend-table").all_text_contents()


def test_an_admin_invites_imports_and_serves_a_privacy_request(
    app: Flask,
    invite: t.Callable[..., t.Any],
    smtp_server: t.Any,
    live_server: LiveServer,
    new_context: t.Callable[..., BrowserContext],
    tmp_path: Path,
) -> None:
    outbox = app.config["MAIL_URL"]
    case = the_person_answered(app, invite)
    folder = mailer.outbox_folder(outbox, app.instance_path)
    assert folder is not None and len(list(folder.glob("*.eml"))) == 1  # her invitation
    create_user("admin@example.com", "admin", "correct horse battery")
    db.session.commit()
    admin = new_context(**DESKTOP).new_page()
    sign_in(admin, "admin@example.com")
    admin.get_by_role("link", name="Admin").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Admin")

    # A new support lead, invited by e-mail through the SMTP server on loopback.
    app.config["MAIL_URL"] = smtp_server.url
    admin.get_by_role("link", name="Staff users").click()
    admin.get_by_label("E-mail address").fill("lead@example.com")
    admin.get_by_label("Role", exact=True).select_option("support")
    admin.get_by_role("button", name="Send the invitation").click()
    expect(admin.get_by_role("status")).to_contain_text("Invited lead@example.com as support")
    assert smtp_server.received.wait(5)
    (message,) = smtp_server.messages
    assert message["To"].addresses[0].addr_spec == "lead@example.com"
    link = re.search(r"(/password/\S+)", message.get_body(("plain",)).get_content())
    assert link, message.get_body(("plain",)).get_content()
    lead = new_context(**DESKTOP).new_page()
    lead.goto(link.group(1))
    lead.get_by_label("New password").fill("the lead's own secret")
    lead.get_by_label("The same password again").fill("the lead's own secret")
    lead.get_by_role("button", name="Set the password").click()
    expect(lead.get_by_role("status")).to_have_text("Your password is set. Sign in with it.")
    sign_in(lead, "lead@example.com", "the lead's own secret")
    expect(lead).to_have_url(re.compile(r"/responses$"))
    app.config["MAIL_URL"] = outbox

    # A contacts file with one bad row: reported with its line and column, nothing written.
    upload(admin, BAD)
    expect(admin.get_by_role("heading", name=re.compile("1 problem"))).to_contain_text(
        "people.csv: 1 problem; nothing was imported"
    )
    problem = admin.locator("table.import-errors tbody tr")
    expect(problem).to_have_count(1)
    expect(problem.locator("td").nth(0)).to_have_text("3")
    expect(problem.locator("td").nth(1)).to_have_text("email")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 1
    upload(admin, FIXED)
    expect(admin.get_by_role("status")).to_contain_text("Importing it would give: 2 created.")
    admin.get_by_role("button", name="Import 2 rows").click()
    expect(admin.get_by_role("status")).to_have_text("Imported people.csv: 2 rows: 2 created")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 3

    before = dashboard_numbers(admin)
    assert any(COMMENT in table for table in before)  # the comments chart lists hers

    # The privacy request: her export holds her answer and the case about her.
    admin.get_by_role("link", name="Privacy").click()
    admin.locator("#export-email").fill(EMAIL)
    with admin.expect_download() as download:
        admin.get_by_role("button", name="Download the JSON").click()
    document = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    exported = json.dumps(document, ensure_ascii=False)
    assert COMMENT in exported and NAME in exported
    assert case.id in [c["id"] for c in document["cases"]]

    admin.locator("#erase-email").fill(EMAIL)
    admin.locator("#erase-confirm").fill(EMAIL)
    admin.get_by_role("button", name="Erase everywhere").click()
    receipt = admin.locator("pre.receipt")
    expect(receipt).to_be_visible()
    assert NAME not in receipt.inner_text() and EMAIL not in receipt.inner_text()

    # Nowhere any more: the case page and its history, /responses, the export, the outbox.
    for path in (f"/triage/{case.id}", "/triage?status=all", "/responses"):
        admin.goto(path)
        body = admin.locator("main").inner_text()
        assert NAME not in body and "Mette" not in body and "elendig" not in body, path
        assert EMAIL not in body, path
    export = app.test_cli_runner().invoke(args=["export", "responses"])
    assert export.exit_code == 0 and "Mette" not in export.output and "elendig" not in export.output
    outbox_folder = mailer.outbox_folder(outbox, app.instance_path)
    assert outbox_folder is not None and list(outbox_folder.glob("*.eml")) == []  # hers went
    # Her scores still count: every number is what it was; only her words are gone.
    assert dashboard_numbers(admin) == [table.replace(COMMENT, "[erased]") for table in before]

    # Each step in the audit log, with who took it.
    admin.goto("/admin/audit")
    log = admin.locator("main table").inner_text()
    for action in ("user.invite", "user.password_set", "import.contacts", "privacy.export"):
        assert action in log, action
    assert "privacy.erase" in log and "admin@example.com" in log and "lead@example.com" in log


def test_destructive_actions_ask_first_without_javascript(
    app: Flask, live_server: LiveServer, new_context: t.Callable[..., BrowserContext]
) -> None:
    """Revoke a key, remove a webhook, reset a password, deactivate a user: each button
    opens a page that says what will happen; Cancel goes back with nothing changed, Confirm
    does it. JavaScript is off: plain forms and links only."""
    from loyalty.api.keys import issue_key
    from loyalty.models import ApiKey, User, Webhook
    from loyalty.outreach.webhooks import add_webhook

    create_user("admin@example.com", "admin", "correct horse battery")
    create_user("lead@example.com", "support", "correct horse battery")
    api_key, _ = issue_key("ci-bot")
    webhook = add_webhook("https://crm.example.com/hook")
    db.session.commit()
    admin = new_context(**DESKTOP, java_script_enabled=False).new_page()
    sign_in(admin, "admin@example.com")

    def asks(button: str, heading: str, consequence: str) -> None:
        admin.get_by_role("button", name=button).click()
        expect(admin.get_by_role("heading", level=1)).to_have_text(heading)
        expect(admin.locator("main")).to_contain_text(consequence)

    admin.goto("/admin/keys")
    asks(f"Revoke key {api_key.id} (ci-bot)", "Revoke key \u2018ci-bot\u2019?", "will get 401")
    admin.get_by_role("link", name="Cancel").click()
    expect(admin).to_have_url(re.compile(rf"/admin/keys#key-{api_key.id}$"))
    db.session.expire_all()
    assert db.session.get(ApiKey, api_key.id).revoked_at is None
    asks(f"Revoke key {api_key.id} (ci-bot)", "Revoke key \u2018ci-bot\u2019?", "will get 401")
    admin.get_by_role("button", name="Revoke the key").click()
    expect(admin.get_by_role("status")).to_contain_text("(ci-bot) is revoked")
    db.session.expire_all()
    assert db.session.get(ApiKey, api_key.id).revoked_at is not None

    admin.goto("/admin/webhooks")
    asks(f"Remove webhook {webhook.id}", f"Remove webhook {webhook.id} "
         "(https://crm.example.com/hook)?", "Nothing more is sent to it")  # fmt: skip
    admin.get_by_role("button", name="Remove the webhook").click()
    expect(admin.get_by_role("status")).to_contain_text(f"Webhook {webhook.id} is off")
    db.session.expire_all()
    assert not db.session.get(Webhook, webhook.id).active

    admin.goto("/admin/users")
    asks("Reset the password of lead@example.com", "Reset the password of lead@example.com?",
         "stops working at once")  # fmt: skip
    admin.get_by_role("link", name="Cancel").click()
    asks("Deactivate lead@example.com", "Deactivate lead@example.com?", "can no longer sign in")
    admin.get_by_role("button", name="Deactivate").click()
    expect(admin.get_by_role("status")).to_contain_text("lead@example.com can no longer sign in")
    db.session.expire_all()
    lead = db.session.scalars(sa.select(User).where(User.email == "lead@example.com")).one()
    assert not lead.active and lead.check_password("correct horse battery")  # not reset
