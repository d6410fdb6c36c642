"""Every error answer: staff get staff pages, customers following a dead link get their own
friendly page in their language, and the API answers JSON whatever went wrong."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import abort

from loyalty import errors
from loyalty.db import db
from loyalty.models import Account

CUSTOMER_EN = "This link does not work"
CUSTOMER_DA = "Linket virker ikke"
STAFF_404 = "There is no such page."
DA = {"Accept-Language": "da-DK,da;q=0.9"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


def text(reply) -> str:
    return reply.get_data(as_text=True)


@pytest.fixture
def api_key(app) -> str:
    from loyalty.api.keys import create_key

    _, key = create_key("tests")
    db.session.commit()
    return key


# --- pages for people ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/triage/999", "/nope", "/triage/not-a-number", "/funnel/x"])
def test_a_staff_404_is_a_staff_page(client, auth, path):
    auth.login("support")
    reply = client.get(path, headers=EN)
    assert (reply.status_code, reply.mimetype) == (404, "text/html")
    assert STAFF_404 in text(reply)
    assert CUSTOMER_EN not in text(reply)


@pytest.mark.parametrize("path", ["/nope", "/triage/not-a-number", "/survey/x"])
def test_a_staff_404_signed_out_is_a_staff_page_too(client, path):
    reply = client.get(path, headers=EN)
    assert reply.status_code == 404
    assert STAFF_404 in text(reply) and CUSTOMER_EN not in text(reply)


def test_a_case_page_signed_out_asks_to_sign_in_first(client):
    reply = client.get("/triage/999")
    assert reply.status_code == 302 and "/login" in reply.headers["Location"]


def test_staff_pages_speak_the_visitors_language(client):
    reply = client.get("/nope", headers=DA)
    assert reply.status_code == 404 and "Siden findes ikke." in text(reply)
    assert CUSTOMER_DA not in text(reply)


@pytest.mark.parametrize(
    "path",
    ["/s/" + "A" * 43, "/s/unknown", "/u/forged", "/u/" + "B" * 43, "/s/"],
)
@pytest.mark.parametrize(("headers", "message"), [(EN, CUSTOMER_EN), (DA, CUSTOMER_DA)])
def test_a_dead_customer_link_gets_the_customers_page(client, auth, path, headers, message):
    for signed_in in (False, True):
        if signed_in:
            auth.login("admin")  # staff clicking a customer's link see what the customer sees
        reply = client.get(path, headers=headers)
        assert reply.status_code == 404
        assert message in text(reply) and STAFF_404 not in text(reply)


def test_a_wrong_method_on_a_staff_page_keeps_allow(client, auth):
    auth.login("admin")
    reply = client.delete("/funnel", headers=EN)
    assert (reply.status_code, reply.mimetype) == (405, "text/html")
    assert "This page cannot be used that way." in text(reply)
    assert set(reply.headers["Allow"].split(", ")) >= {"GET"}
    assert "POST" not in reply.headers["Allow"]


def test_a_wrong_method_on_the_sign_in_page(client):
    reply = client.put("/login")
    assert reply.status_code == 405
    assert set(reply.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_a_body_too_large_for_a_staff_page_is_a_page(client, app):
    too_big = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    reply = client.post("/login", data={"email": too_big}, headers=EN)
    assert (reply.status_code, reply.mimetype) == (413, "text/html")
    assert "too large to receive" in text(reply)


def test_a_server_error_rolls_back_first(app, client):
    @app.get("/test-boom")
    def boom():
        db.session.add(Account(name="Half done", segment="b2b"))
        db.session.flush()
        abort(500)

    reply = client.get("/test-boom", headers=EN)
    assert reply.status_code == 500
    assert "Something went wrong on our side." in text(reply)
    db.session.commit()  # what a later commit would write
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 0


# --- JSON for the API ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/api/v1", True),
        ("/api/v1/", True),
        ("/api/v1/events", True),
        ("/api/v1/x/y", True),
        ("/api/v10", False),
        ("/api/v1x/events", False),
        ("/api", False),
        ("/s/api/v1", False),
    ],
)
def test_is_api(path, api):
    assert errors.is_api(path) is api


def test_json_error_shape(app):
    reply = errors.json_error(409, "already there", "external_id", Allow="POST")
    assert (reply.status_code, reply.mimetype) == (409, "application/json")
    assert reply.json == {"error": "already there", "field": "external_id"}
    assert reply.headers["Allow"] == "POST"
    assert errors.json_error(400, "bad").json == {"error": "bad", "field": None}


@pytest.mark.parametrize("with_key", [True, False])
@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/events/1/x", "/api/v1", "/api/v1/"])
def test_an_unknown_api_path_is_json(client, api_key, path, with_key):
    headers = {"Authorization": f"Bearer {api_key}"} if with_key else {}
    reply = client.get(path, headers=headers)
    assert (reply.status_code, reply.mimetype) == (404, "application/json")
    assert set(reply.json) == {"error", "field"}
    assert reply.json["field"] is None and reply.json["error"]


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_a_wrong_api_method_is_json_with_allow(client, api_key, method):
    reply = getattr(client, method)(
        "/api/v1/events", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert (reply.status_code, reply.mimetype) == (405, "application/json")
    assert reply.json["field"] is None and reply.json["error"]
    assert "POST" in reply.headers["Allow"].split(", ")


def test_a_body_too_large_for_the_api_is_json(client, api_key, app):
    body = '{"product": "' + "x" * app.config["MAX_CONTENT_LENGTH"] + '"}'
    reply = client.post(
        "/api/v1/events",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert (reply.status_code, reply.mimetype) == (413, "application/json")
    assert reply.json["field"] is None and reply.json["error"]


def test_a_server_error_in_the_api_is_json(app, client):
    @app.get("/api/v1/test-boom")
    def api_boom():
        abort(500)

    reply = client.get("/api/v1/test-boom")
    assert (reply.status_code, reply.mimetype) == (500, "application/json")
    assert reply.json["field"] is None and reply.json["error"]
