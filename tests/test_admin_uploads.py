"""``/admin/imports``: a CSV checked whole and previewed before anything is written, then
imported on confirmation by the same code as ``flask import``."""

from __future__ import annotations

import datetime as dt
import io
import re

import sqlalchemy as sa
from conftest import csrf_from

from loyalty import signals
from loyalty.db import db
from loyalty.models import Account, AuditEvent, Contact, ImportUpload, utcnow

ACCOUNTS = b"external_ref,name,segment\nA1,Acme <b>A/S</b>,b2b\nA2,Beta ApS,b2c\n"
CONTACTS_BAD = (
    b"email,name,language,account_ref\n"
    b"ida@example.com,Ida Holm,da,A1\n"
    b"not-an-address,Bo,da,A1\n"
    b"eve@example.com,Eve,fr,A2\n"
)
CONTACTS_FIXED = (
    b"email,name,language,account_ref\n"
    b"ida@example.com,Ida Holm,da,A1\n"
    b"bo@example.com,Bo <img src=x onerror=alert(1)>,da,A1\n"
    b"eve@example.com,Eve,en,A2\n"
)


def upload(client, data: bytes, kind: str = "contacts", filename: str = "people.csv", **form):
    token = csrf_from(client.get("/admin/imports").get_data(as_text=True))
    fields = {"csrf_token": token, "kind": kind, "file": (io.BytesIO(data), filename), **form}
    return client.post("/admin/imports", data=fields, content_type="multipart/form-data")


def pending_token(html: str) -> str:
    match = re.search(r'action="/admin/imports/([\w-]{43})"', html)
    assert match, "no confirmation form"
    return match.group(1)


def confirm(client, token: str, path: str = ""):
    csrf = csrf_from(client.get("/admin/imports").get_data(as_text=True))
    return client.post(f"/admin/imports/{token}{path}", data={"csrf_token": csrf})


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_bad_rows_are_listed_with_line_and_column_and_nothing_is_written(client, auth):
    auth.login("admin")
    confirm(client, pending_token(upload(client, ACCOUNTS, kind="accounts").get_data(True)))
    reply = upload(client, CONTACTS_BAD)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422
    assert "people.csv: 2 problems; nothing was imported" in html
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\w+)</td><td>([^<]+)</td></tr>", html)
    assert [(line, column) for line, column, _ in rows] == [("3", "email"), ("4", "language")]
    assert count(Contact) == 0 and count(ImportUpload) == 0

    preview = upload(client, CONTACTS_FIXED)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "people.csv: 3 rows of contacts, all good" in html
    assert "Importing it would give: 3 created." in html
    assert "Bo &lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert count(Contact) == 0  # a preview writes nothing

    done = confirm(client, pending_token(html))
    assert done.status_code == 303
    assert "Imported people.csv: 3 rows: 3 created" in client.get("/admin/imports").get_data(True)
    assert sorted(db.session.scalars(sa.select(Contact.email))) == [
        "bo@example.com",
        "eve@example.com",
        "ida@example.com",
    ]
    assert count(ImportUpload) == 0
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "import.contacts")
    ).one()
    assert event.actor == "admin@example.com" and event.target == "file:people.csv"
    assert confirm(client, pending_token(html)).status_code == 404  # imported once

    again = upload(client, CONTACTS_FIXED)
    assert "Importing it would give: 3 unchanged." in again.get_data(as_text=True)


def test_a_row_only_the_writing_finds_wrong_is_reported_before_anything_is_kept(client, auth):
    auth.login("admin")
    reply = upload(client, b"email,name,language,account_ref\nx@example.com,X,da,NOPE\n")
    html = reply.get_data(as_text=True)
    assert reply.status_code == 422 and "no account &#39;NOPE&#39;; import accounts first" in html
    assert count(Contact) == 0 and count(Account) == 0


def test_an_upload_can_be_discarded(client, auth):
    auth.login("admin")
    token = pending_token(upload(client, ACCOUNTS, kind="accounts").get_data(True))
    assert confirm(client, token, "/discard").status_code == 303
    assert count(ImportUpload) == 0 and count(Account) == 0
    assert confirm(client, token).status_code == 404


def test_an_upload_never_confirmed_goes_after_a_day_in_the_dispatchers_pass(app, client, auth):
    # Retention is off by default: the customers' names in the file go anyway.
    auth.login("admin")
    token = pending_token(upload(client, ACCOUNTS, kind="accounts").get_data(True))
    signals.dispatch_tick.send(app, now=utcnow() + dt.timedelta(hours=23))
    assert count(ImportUpload) == 1  # still waiting for its button
    signals.dispatch_tick.send(app, now=utcnow() + dt.timedelta(hours=25))
    assert count(ImportUpload) == 0
    assert confirm(client, token).status_code == 404 and count(Account) == 0


def test_a_file_larger_than_a_form_but_within_the_import_limit_is_taken(app, client, auth):
    rows = "".join(f"R{n},Account number {n},b2b\n" for n in range(4000))
    data = ("external_ref,name,segment\n" + rows).encode()
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]
    auth.login("admin")
    reply = upload(client, data, kind="accounts", filename="many.csv")
    assert reply.status_code == 200 and "4000 rows of accounts" in reply.get_data(True)
    app.config["IMPORT_MAX_ROWS"] = 3999
    too_many = upload(client, data, kind="accounts", filename="many.csv")
    assert too_many.status_code == 413
    assert "many.csv has 4,000 rows; a file uploaded here may have 3,999." in too_many.text
    assert "flask --app loyalty import accounts FILE" in too_many.text
    app.config["IMPORT_MAX_BYTES"] = 10_000
    assert upload(client, data, kind="accounts").status_code == 413
    # Every other page keeps the form limit.
    token = csrf_from(client.get("/admin/users").get_data(as_text=True))
    big = client.post("/admin/users", data={"csrf_token": token, "email": "x" * 70_000})
    assert big.status_code == 413


def test_no_file_an_unknown_kind_and_a_file_that_is_not_csv(client, auth):
    auth.login("admin")
    token = csrf_from(client.get("/admin/imports").get_data(as_text=True))
    none = client.post("/admin/imports", data={"csrf_token": token, "kind": "contacts"})
    assert none.status_code == 400 and "choose a CSV file" in none.get_data(True)
    assert upload(client, ACCOUNTS, kind="invoices").status_code == 400
    binary = upload(client, b"\xff\xfe\x00garbage", kind="accounts")
    assert binary.status_code == 422 and "UTF-8" in binary.get_data(as_text=True)
    header = upload(client, b"ref,title\nA1,Acme\n", kind="accounts")
    assert header.status_code == 422
    assert count(Account) == 0


def test_responses_from_another_tool_go_to_the_chosen_survey(client, auth):
    from loyalty.models import Response

    auth.login("admin")
    data = (
        b"account,segment,contact_email,submitted_at,language,nps,comment\n"
        b"Gamma A/S,b2b,kim@example.com,2026-01-05T10:00:00Z,da,3,Leveringen var elendig\n"
    )
    reply = upload(client, data, kind="responses", survey="post-sale")
    assert reply.status_code == 200, reply.get_data(as_text=True)[-2000:]
    assert confirm(client, pending_token(reply.get_data(True))).status_code == 303
    response = db.session.scalars(sa.select(Response)).one()
    assert response.survey == "post-sale" and response.nps == 3 and response.source == "import"


def test_control_characters_in_a_file_name_or_address_are_no_error(client, auth):
    auth.login("admin")
    reply = upload(client, ACCOUNTS, kind="accounts", filename="bad\x00name\x07.csv")
    assert reply.status_code == 200
    assert "badname.csv: 2 rows of accounts" in reply.get_data(as_text=True)
    token = csrf_from(client.get("/admin/users").get_data(as_text=True))
    invite = client.post(
        "/admin/users", data={"csrf_token": token, "email": "a\x00b@example.com", "role": "support"}
    )
    assert invite.status_code == 400
