"""The JSON API: keys, events in (idempotent, strictly checked), bounces, JSON errors
everywhere, and schemathesis generating requests from the served OpenAPI document."""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading

import pytest
import sqlalchemy as sa

from loyalty.db import db
from loyalty.models import Account, ApiKey, Contact, Event, Invitation, utcnow
from loyalty.outreach.events import record_event

EVENT = {
    "external_id": "order-1001",
    "kind": "delivery",
    "occurred_at": "2026-11-20T09:30:00+01:00",
    "account": {
        "external_ref": "C-17",
        "name": "Acme A/S",
        "segment": "b2b",
        "annual_value": 125000.5,
    },
    "contact": {"email": "Mette@Acme.example.com", "name": "Mette Hansen", "language": "da"},
    "amount": 4999.95,
    "product": "Standing desk",
}


@pytest.fixture
def api_key(app) -> str:
    from loyalty.api.keys import create_key

    _, key = create_key("tests")
    db.session.commit()
    return key


@pytest.fixture
def api(client, api_key):
    """POST JSON with the key; returns the response."""

    def post(path: str, body, *, key: str | None = api_key, **kwargs):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        kwargs.setdefault("content_type", "application/json")
        return client.post(f"/api/v1{path}", data=data, headers=headers, **kwargs)

    return post


def event(**changes) -> dict:
    """EVENT with changes; dotted keys reach into account and contact, None deletes."""
    body = copy.deepcopy(EVENT)
    for key, value in changes.items():
        target, _, name = key.rpartition(".")
        holder = body[target] if target else body
        if value is None:
            holder.pop(name)
        else:
            holder[name] = value
    return body


def test_an_event_schedules_its_survey(api):
    reply = api("/events", event(occurred_at=utcnow().isoformat()))
    assert reply.status_code == 201, reply.json
    body = reply.json
    (invitation,) = body["invitations"]
    assert body["created"] is True and body["external_id"] == "order-1001"
    assert invitation["survey"] == "post-sale" and invitation["status"] == "scheduled"
    stored = db.session.get(Invitation, invitation["id"])
    assert stored.due_at - stored.event.occurred_at == dt.timedelta(days=2)  # after delivery
    assert stored.expires_at - stored.due_at == dt.timedelta(days=30)
    contact = db.session.scalar(sa.select(Contact))
    assert (contact.email, contact.name, contact.language) == (
        "mette@acme.example.com",  # addresses are stored in lower case
        "Mette Hansen",
        "da",
    )
    account = contact.account
    assert (account.external_ref, account.segment, str(account.annual_value)) == (
        "C-17",
        "b2b",
        "125000.50",
    )
    stored_event = db.session.scalar(sa.select(Event))
    assert str(stored_event.amount) == "4999.95" and stored_event.product == "Standing desk"


def test_the_same_event_twice_makes_one_invitation(api):
    first = api("/events", EVENT)
    again = api("/events", EVENT)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["event_id"] == first.json["event_id"]
    assert [i["id"] for i in again.json["invitations"]] == [
        i["id"] for i in first.json["invitations"]
    ]
    assert again.json["created"] is False
    assert db.session.scalar(sa.select(sa.func.count(Invitation.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1


def test_two_identical_posts_at_once_make_one_event(app, api, api_key):
    """The second post passes the "already there?" check while the first is not yet
    committed; its insert then fails on the unique external id, and it answers with the
    first one's ids."""
    from loyalty.outreach.events import event_from_json

    assert api("/bounces", {"email": "nobody@example.com"}).status_code == 404  # key used
    recorded = record_event(event_from_json(EVENT))
    db.session.flush()  # holds SQLite's write lock / PostgreSQL's row locks
    replies = []

    def second() -> None:
        replies.append(
            app.test_client().post(
                "/api/v1/events",
                json=EVENT,
                headers={"Authorization": f"Bearer {api_key}"},
            )
        )

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=0.5)  # let it reach the insert and wait for the lock
    db.session.commit()
    thread.join(timeout=30)
    (reply,) = replies
    assert reply.status_code == 200, reply.json
    assert reply.json["event_id"] == recorded.event.id
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1
    assert db.session.scalar(sa.select(sa.func.count(Contact.id))) == 1


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (event(colour="red"), "colour", "unknown field"),
        (event(**{"account.colour": "red"}), "account.colour", "unknown field"),
        (event(**{"contact.phone": "+45"}), "contact.phone", "unknown field"),
        (event(external_id=None), "external_id", "is required"),
        (event(**{"contact.email": None}), "contact.email", "is required"),
        (event(kind="refund"), "kind", "must be one of sale, delivery"),
        (event(kind=3), "kind", "must be a string"),
        (event(amount="12.50"), "amount", "must be a number"),
        (event(amount=True), "amount", "must be a number"),
        (event(amount=-1), "amount", "must be at least 0"),
        (event(amount=10**13), "amount", "must be at most"),
        (event(**{"account.annual_value": "big"}), "account.annual_value", "must be a number"),
        (event(account="Acme"), "account", "must be an object"),
        (event(**{"contact.email": "not-an-email"}), "contact.email", "not a valid email"),
        (event(**{"contact.email": "a@b@example.com"}), "contact.email", "not a valid email"),
        (event(**{"contact.name": "Mette\r\nBcc: x@evil"}), "contact.name", "line breaks"),
        (event(**{"account.name": "Acme\nA/S"}), "account.name", "line breaks"),
        (event(**{"contact.name": "   "}), "contact.name", "visible text"),
        (event(**{"contact.name": ""}), "contact.name", "must not be empty"),
        (event(**{"contact.name": "x" * 201}), "contact.name", "at most 200 characters"),
        (event(external_id="x" * 101), "external_id", "at most 100 characters"),
        (event(**{"contact.language": "sv"}), "contact.language", "must be one of da, en"),
        (event(**{"account.segment": "b2g"}), "account.segment", "must be one of b2b, b2c"),
        (event(occurred_at="2026-11-20T09:30:00"), "occurred_at", "with a time zone"),
        (event(occurred_at="2026-02-30T09:30:00Z"), "occurred_at", "with a time zone"),
        (event(occurred_at="yesterday"), "occurred_at", "with a time zone"),
        (event(occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at", "with a time zone"),
        (event(occurred_at="2999-01-01T00:00:00Z"), "occurred_at", "in the future"),
        ([EVENT], None, "must be a JSON object"),
        ("null", None, "must be a JSON object"),
    ],
)
def test_bad_events_get_422_naming_the_field(api, body, field, message):
    reply = api("/events", body)
    assert reply.status_code == 422, reply.json
    assert reply.json["field"] == field
    assert message in reply.json["error"]
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Account.id))) == 0


def test_an_account_name_owned_by_another_ref_is_a_409_conflict(api):
    """Well-formed, but it clashes with what is stored: 409, and nothing of it is kept."""
    assert api("/events", EVENT).status_code == 201
    other = event(external_id="order-2", **{"account.external_ref": "C-99"})
    reply = api("/events", other)
    assert (reply.status_code, reply.json["field"]) == (409, "account.name")
    assert "another account" in reply.json["error"]
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b'{"amount": NaN}', "application/json", 400, "not a number JSON allows"),
        (b'{"a": "\xff"}', "application/json", 400, "not UTF-8"),
        (b"[" * 100_000, "application/json", 413, ""),
        (b"[" * 30_000, "application/json", 400, "not valid JSON"),
        (json.dumps(EVENT).encode(), "text/plain", 415, "application/json"),
        (b"external_id=1", "application/x-www-form-urlencoded", 415, "application/json"),
    ],
)
def test_unreadable_bodies_are_refused_in_json(api, data, content_type, status, message):
    reply = api("/events", data, content_type=content_type)
    assert reply.status_code == status
    assert reply.mimetype == "application/json"
    assert message in reply.json["error"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Authorization: Bearer"),
        ({"Authorization": "Bearer"}, "Authorization: Bearer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization: Bearer"),
        ({"Authorization": "Bearer loy_not-a-real-key"}, "unknown or revoked"),
    ],
)
def test_requests_without_a_good_key_get_401(client, headers, message):
    reply = client.post("/api/v1/events", json=EVENT, headers=headers)
    assert reply.status_code == 401 and reply.mimetype == "application/json"
    assert message in reply.json["error"]
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0


def test_unknown_paths_and_methods_answer_json(client, api_key):
    headers = {"Authorization": f"Bearer {api_key}"}
    missing = client.get("/api/v1/nothing-here", headers=headers)
    assert (missing.status_code, missing.mimetype) == (404, "application/json")
    wrong = client.get("/api/v1/events", headers=headers)
    assert (wrong.status_code, wrong.mimetype) == (405, "application/json")
    assert "POST" in wrong.headers["Allow"]
    # Outside the API the friendly HTML pages stay.
    assert client.get("/nothing-here").mimetype == "text/html"


def test_api_keys_from_the_command_line_are_shown_once_and_revocable(runner, client):
    created = runner.invoke(args=["api-key", "create", "--name", "webshop"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[0]
    assert key.startswith("loy_") and len(key) > 40
    stored = db.session.scalar(sa.select(ApiKey))
    assert key not in (stored.key_hash, stored.prefix) and key.startswith(stored.prefix)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/api/v1/events", json=EVENT, headers=headers).status_code == 201
    listed = runner.invoke(args=["api-key", "list"])
    assert "webshop" in listed.output and key not in listed.output
    revoked = runner.invoke(args=["api-key", "revoke", stored.prefix])
    assert revoked.exit_code == 0, revoked.output
    assert client.post("/api/v1/events", json=EVENT, headers=headers).status_code == 401
    assert runner.invoke(args=["api-key", "revoke", "nope"]).exit_code == 2
    assert runner.invoke(args=["api-key", "create", "--name", " "]).exit_code == 2


def test_bounces_are_recorded_and_stop_sending(api, app):
    from loyalty.outreach.dispatch import send_due

    api("/events", event(occurred_at=utcnow().isoformat(), kind="sale"))
    reply = api("/bounces", {"email": "mette@ACME.example.com"})
    assert reply.status_code == 200, reply.json
    contact = db.session.scalar(sa.select(Contact))
    assert reply.json == {
        "contact_id": contact.id,
        "email": contact.email,
        "bounced_at": reply.json["bounced_at"],
    }
    assert contact.bounced_at is not None
    earlier = "2026-01-01T00:00:00Z"
    assert api("/bounces", {"email": contact.email, "bounced_at": earlier}).status_code == 200
    assert db.session.get(Contact, contact.id).bounced_at > dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    result = send_due(now=utcnow() + dt.timedelta(days=4))
    assert result.skipped == 1 and result.sent == 0
    assert db.session.scalar(sa.select(Invitation.skip_reason)) == "bounced"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"email": "unknown@example.com"}, 404, "email"),
        ({"email": "nope"}, 422, "email"),
        ({}, 422, "email"),
        ({"email": "a@example.com", "why": "full"}, 422, "why"),
        ({"email": "a@example.com", "bounced_at": "soon"}, 422, "bounced_at"),
    ],
)
def test_bad_bounces(api, body, status, field):
    reply = api("/bounces", body)
    assert (reply.status_code, reply.json["field"]) == (status, field)


def test_the_openapi_document_is_served_without_a_key(client):
    reply = client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    doc = reply.json
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/events",
        "/bounces",
        "/accounts/{external_ref}/health",
        "/accounts/{external_ref}/churn",
        "/metrics/{metric}",
        "/openapi.json",
    }
    event_schema = doc["components"]["schemas"]["Event"]
    assert event_schema["additionalProperties"] is False
    assert event_schema["properties"]["kind"]["enum"] == [
        "sale",
        "delivery",
        "support_ticket_closed",
        "renewal",
    ]


# --- schemathesis --------------------------------------------------------------------------


@pytest.fixture
def api_formats():
    """Emails and times as the API accepts them, which a JSON schema cannot say: an
    address email-validator takes (no reserved domains such as .test) and a time that is
    not in the future. Everything else is generated from the document as it stands."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import strategies as st
    from schemathesis.specs.openapi.formats import STRING_FORMATS

    saved = {name: STRING_FORMATS.get(name) for name in ("email", "date-time")}
    email = r"\A[a-z][a-z0-9]{0,9}(\.[a-z0-9]{1,8})?@[a-z][a-z0-9]{0,10}\.(dk|com|org)\Z"
    schemathesis.openapi.format("email", st.from_regex(email))
    times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2026, 1, 1))
    offsets = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=1))])
    schemathesis.openapi.format(
        "date-time", st.builds(lambda t, z: t.replace(tzinfo=z).isoformat(), times, offsets)
    )
    yield schemathesis
    for name, strategy in saved.items():
        if strategy is not None:
            STRING_FORMATS[name] = strategy


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_nothing_wrong(app, api_key, api_formats, mode):
    """Requests generated from the served document (valid ones, then ones that break it):
    no 500s, every answer's status, type and body as documented, invalid input refused."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = api_formats.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {api_key}"}

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(generation_mode=api_formats.GenerationMode(mode)))
    def check(case):
        # A trend's query parameters depend on each other (from before to, ten years at
        # most, an owner who exists), which OpenAPI cannot say: there, a refusal of data the
        # schema allows is right, as long as it is a 4xx with the documented error body.
        excluded = [positive_data_acceptance] if case.path == "/metrics/{metric}" else []
        case.call_and_validate(headers=headers, excluded_checks=excluded)

    check()


# --- account health ---------------------------------------------------------------------------


def test_an_accounts_health_and_churn_through_the_api(client, api, api_key):
    from loyalty.accounts import rollup
    from loyalty.models import Account

    month_ago = (utcnow() - dt.timedelta(days=30)).isoformat()
    assert api("/events", event(occurred_at=month_ago)).status_code == 201
    account = db.session.scalar(sa.select(Account))
    rollup.refresh([account.id])
    db.session.commit()
    headers = {"Authorization": f"Bearer {api_key}"}
    reply = client.get("/api/v1/accounts/C-17/health", headers=headers)
    assert reply.status_code == 200, reply.json
    assert reply.json["external_ref"] == "C-17" and 0 <= reply.json["score"] <= 100
    assert reply.json["band"] in ("healthy", "watch", "at_risk")
    assert reply.json["churned_at"] is None
    yesterday = (utcnow() - dt.timedelta(days=1)).replace(microsecond=0)
    when = yesterday.isoformat().replace("+00:00", "Z")
    gone = client.put("/api/v1/accounts/C-17/churn", json={"churned_at": when}, headers=headers)
    assert gone.status_code == 200 and gone.json["churned_at"] == when
    back = client.delete("/api/v1/accounts/C-17/churn", headers=headers)
    assert back.status_code == 200 and back.json["churned_at"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("get", "/accounts/NOPE/health", None, 404, "no account"),
        ("put", "/accounts/C-17/churn", {"churned_at": "2999-01-01T00:00:00Z"}, 422, "future"),
        ("put", "/accounts/C-17/churn", {"churned_at": "soon"}, 422, "a date and time"),
        ("put", "/accounts/C-17/churn", {"when": "2026-01-01T00:00:00Z"}, 422, "unknown field"),
        ("put", "/accounts/C-17/churn", {"churned_at": "2001-01-01T00:00:00Z"}, 422, "first known"),
        ("delete", "/accounts/NOPE/churn", None, 404, "no account"),
    ],
)
def test_bad_health_requests(client, api, api_key, method, path, body, status, message):
    assert api("/events", event(occurred_at=utcnow().isoformat())).status_code == 201
    headers = {"Authorization": f"Bearer {api_key}"}
    reply = getattr(client, method)(f"/api/v1{path}", json=body, headers=headers)
    assert reply.status_code == status and message in json.dumps(reply.json)


def test_json_says_its_charset(client):
    reply = client.get("/api/v1/openapi.json")
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert client.get("/api/v1/nope").headers["Content-Type"] == "application/json; charset=utf-8"
