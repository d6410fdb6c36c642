"""``/admin/keys`` and ``/admin/webhooks``: keys made, shown once, used against the API and
revoked; webhooks added, tested against a real HTTP server on loopback, their deliveries
listed and a failed one retried; markup escaped; every change audited; every route walked
with every role."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_from
from test_audit import events, everything_logged
from test_privacy import COMMENT, EMAIL, person  # noqa: F401 (a fixture)
from test_webhooks import Receiver

from loyalty.db import db
from loyalty.models import ERASED_TEXT, ApiKey, Webhook, WebhookDelivery
from loyalty.outreach.webhooks import TEST_EVENT, add_webhook, verify
from loyalty.privacy import requests


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


#: what the confirmation page of a revoke or a remove sends (``loyalty/admin/confirm.py``)
CONFIRMED = {"confirmed": "yes"}


def _post(client, path: str, data: dict | list | None = None):
    """A form POST with the session's CSRF token (a list of pairs for repeated fields)."""
    pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
    pairs.append(("csrf_token", csrf_from(client.get("/login").get_data(as_text=True))))
    return client.post(path, data=_multi(pairs))


def _multi(pairs):
    from werkzeug.datastructures import MultiDict

    return MultiDict(pairs)


def _deliveries() -> list[WebhookDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)))


# --- every route, every role -----------------------------------------------------------------

#: method, path (``{key}``, ``{webhook}``, ``{delivery}``: ids of rows made for the walk),
#: form data, status for an admin
ROUTES = [
    ("GET", "/admin/keys", None, 200),
    ("POST", "/admin/keys", {"name": "webshop"}, 200),
    ("GET", "/admin/keys/{key}/revoke", None, 200),
    ("POST", "/admin/keys/{key}/revoke", {"confirmed": "yes"}, 303),
    ("GET", "/admin/webhooks", None, 200),
    ("POST", "/admin/webhooks", {"url": "https://crm.example.com/h", "events": "account.warning"},
     200),
    ("POST", "/admin/webhooks/{webhook}/test", {}, 303),
    ("GET", "/admin/webhooks/{webhook}/remove", None, 200),
    ("POST", "/admin/webhooks/{webhook}/remove", {"confirmed": "yes"}, 303),
    ("POST", "/admin/webhooks/deliveries/{delivery}/retry", {}, 303),
]  # fmt: skip


def test_the_route_table_covers_every_route_of_the_blueprint(app):
    covered = {(m, p) for m, p, _, _ in ROUTES}
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("admin_integrations.")]
    assert len(rules) >= 6
    for rule in rules:
        path = re.sub(r"<int:key_id>", "{key}", rule.rule)
        path = re.sub(r"<int:webhook_id>", "{webhook}", path)
        path = re.sub(r"<int:delivery_id>", "{delivery}", path)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in covered, f"{method} {rule.rule} is not in ROUTES"


@pytest.mark.parametrize(("method", "path", "data", "allowed"), ROUTES)
@pytest.mark.parametrize("role", [None, "executive", "support", "admin"])
def test_every_route_with_every_role(client, auth, receiver, role, method, path, data, allowed):
    api_key = ApiKey(name="crm", prefix="loy_walkwalk", key_hash="0" * 64)
    webhook = add_webhook(receiver.url)
    db.session.add(api_key)
    db.session.flush()
    failed = WebhookDelivery(
        webhook_id=webhook.id, event=TEST_EVENT, payload="{}", status="failed", attempts=1
    )
    db.session.add(failed)
    db.session.commit()
    path = path.format(key=api_key.id, webhook=webhook.id, delivery=failed.id)
    if role:
        auth.login(role)
    before = len(events())
    reply = client.get(path) if method == "GET" else _post(client, path, data)
    expected = {None: 302, "executive": 403, "support": 403}.get(role, allowed)
    assert reply.status_code == expected, reply.get_data(as_text=True)[:500]
    if expected == 302:
        assert reply.headers["Location"].startswith("/login?next=")
    changes = [e for e in events()[before:] if not e.action.startswith("sign_in")]
    if role != "admin" or method == "GET":
        assert changes == [] and receiver.requests == []  # nothing happened
        db.session.expire_all()
        assert db.session.get(ApiKey, api_key.id).revoked_at is None
        assert db.session.get(Webhook, webhook.id).active
        assert db.session.get(WebhookDelivery, failed.id).status == "failed"
    else:
        assert len(changes) == 1 and changes[0].actor == "admin@example.com"
        assert changes[0].source == "web" and changes[0].ip == "127.0.0.1"


# --- API keys --------------------------------------------------------------------------------


def test_a_key_is_shown_once_used_against_the_api_and_revoked(client, auth):
    auth.login("admin")
    made = _post(client, "/admin/keys", {"name": "  webshop  "})
    page = made.get_data(as_text=True)
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    (key,) = re.findall(r'id="new-key" type="text" readonly value="(loy_[^"]+)"', page)
    assert "is not shown again" in page
    listed = client.get("/admin/keys")
    assert listed.headers["Cache-Control"] == "no-store"
    listed_page = listed.get_data(as_text=True)
    assert key not in listed_page and f"{key[:12]}…" in listed_page and "webshop" in listed_page
    assert "never" in listed_page  # not used yet

    bearer = {"Authorization": f"Bearer {key}"}
    assert client.get("/api/v1/metrics/nps", headers=bearer).status_code == 200
    row = db.session.scalars(sa.select(ApiKey)).one()
    db.session.refresh(row)
    assert row.last_used_at is not None and row.name == "webshop"
    assert "never" not in client.get("/admin/keys").get_data(as_text=True)

    revoked = _post(client, f"/admin/keys/{row.id}/revoke", CONFIRMED)
    assert revoked.status_code == 303 and revoked.headers["Location"].endswith(f"#key-{row.id}")
    page = client.get("/admin/keys").get_data(as_text=True)
    assert f"Key {row.id} (webshop) is revoked" in page and "Revoke key" not in page
    refused = client.get("/api/v1/metrics/nps", headers=bearer)
    assert refused.status_code == 401 and "revoked" in refused.get_json()["error"]
    assert (
        _post(client, f"/admin/keys/{row.id}/revoke", CONFIRMED).status_code == 303
    )  # stays revoked

    (created,) = events("api_key.create")
    (revoke,) = events("api_key.revoke")  # the second revoke changed nothing
    assert json.loads(created.detail or "{}") == {"name": "webshop"}
    assert created.target == revoke.target == f"api_key:{row.id}"
    assert {created.actor, revoke.actor} == {"admin@example.com"}
    assert key not in everything_logged() and key[:12] not in everything_logged()


@pytest.mark.parametrize(
    ("path", "data", "status", "says"),
    [
        ("/admin/keys", {"name": ""}, 400, "The key was not made: name: 1 to 100 characters"),
        ("/admin/keys", {"name": "two\nlines"}, 400, "on one line"),
        ("/admin/keys", {"name": "x" * 101}, 400, "1 to 100 characters"),
        ("/admin/keys", {}, 400, "The key was not made"),
        ("/admin/keys/999/revoke", CONFIRMED, 404, "There is no API key 999."),
        ("/admin/keys/99999999999999999999/revoke", CONFIRMED, 404, "There is no API key"),
        ("/admin/webhooks", {"url": "ftp://example.com/x", "events": "response.created"}, 400,
         "The webhook was not added: url: must be an http:// or https:// URL"),
        ("/admin/webhooks", {"url": "not a url", "events": "response.created"}, 400, "url:"),
        ("/admin/webhooks", {"url": "http:///path", "events": "response.created"}, 400, "url:"),
        ("/admin/webhooks", {"url": "https://x.example/" + "a" * 2000, "events": "account.warning"},
         400, "at most 2000 characters"),
        ("/admin/webhooks", {"url": "https://x.example/h"}, 400, "events: must be some of"),
        ("/admin/webhooks", {"url": "https://x.example/h", "events": "nope"}, 400, "events:"),
        ("/admin/webhooks", {}, 400, "url:"),
        ("/admin/webhooks/999/remove", CONFIRMED, 404, "There is no webhook 999."),
        ("/admin/webhooks/999/test", {}, 404, "There is no webhook 999."),
        ("/admin/webhooks/99999999999999999999/test", {}, 404, "There is no webhook"),
        ("/admin/webhooks/deliveries/999/retry", {}, 404, "There is no webhook delivery 999."),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_message_and_a_4xx(client, auth, path, data, status, says):
    auth.login("admin")
    before = len(events())
    reply = _post(client, path, data)
    assert reply.status_code == status
    html = reply.get_data(as_text=True)
    assert 'role="alert"' in html and says in html.replace("&#39;", "'")
    assert len(events()) == before  # nothing recorded, nothing made
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Webhook)) == 0


def test_an_unknown_path_id_is_a_404_not_a_500(client, auth):
    auth.login("admin")
    assert _post(client, "/admin/keys/abc/revoke").status_code == 404
    assert _post(client, "/admin/webhooks/-1/test").status_code == 404


# --- webhooks --------------------------------------------------------------------------------


def test_a_webhook_is_added_tested_and_its_delivery_listed(client, auth, receiver):
    auth.login("admin")
    added = _post(client, "/admin/webhooks", [("url", receiver.url), ("events", "account.warning")])
    page = added.get_data(as_text=True)
    assert added.status_code == 200 and added.headers["Cache-Control"] == "no-store"
    (secret,) = re.findall(r'id="new-secret" type="text" readonly value="(whsec_[^"]+)"', page)
    webhook = db.session.scalars(sa.select(Webhook)).one()
    assert webhook.events == "account.warning" and webhook.secret == secret
    listed = client.get("/admin/webhooks").get_data(as_text=True)
    assert secret not in listed and receiver.url in listed and "Nothing sent yet." in listed

    receiver.answers = [(200, b"<i>received</i> by the wrong app?")]
    tested = _post(client, f"/admin/webhooks/{webhook.id}/test")
    assert tested.status_code == 303
    ((headers, body),) = receiver.requests  # posted during the request, signed as always
    assert headers["Loyalty-Event"] == TEST_EVENT
    assert verify(secret, headers["Loyalty-Signature"], body)
    assert json.loads(body)["data"]["webhook_id"] == webhook.id
    (delivery,) = _deliveries()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    assert headers["Loyalty-Delivery"] == str(delivery.id)
    assert tested.headers["Location"].endswith(f"#delivery-{delivery.id}")
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert f"Test delivery {delivery.id}: delivered (HTTP 200)." in page
    row = re.search(
        rf'<tr id="delivery-{delivery.id}" data-status="delivered">.*?</tr>', page, re.S
    )
    assert row and "<td>200</td>" in row.group() and "Retry" not in row.group()
    assert "&lt;i&gt;received&lt;/i&gt; by the wrong app?" in row.group()  # its answer, escaped
    assert "1 delivered" in page

    (add,) = events("webhook.add")
    (test,) = events("webhook.test")
    assert json.loads(add.detail or "{}") == {"host": "127.0.0.1", "events": "account.warning"}
    assert json.loads(test.detail or "{}") == {"delivery": delivery.id}
    assert add.target == test.target == f"webhook:{webhook.id}"
    assert secret not in everything_logged() and receiver.url not in everything_logged()


def test_a_failed_delivery_shows_its_answer_escaped_and_is_retried(client, auth, receiver):
    webhook = add_webhook(receiver.url)
    db.session.commit()
    auth.login("admin")
    receiver.answers = [(500, b"<b>Down</b> for <script>alert(1)</script> maintenance")]
    failed = _post(client, f"/admin/webhooks/{webhook.id}/test")
    assert failed.status_code == 303
    (delivery,) = _deliveries()
    assert (delivery.status, delivery.last_status_code) == ("failed", 500)  # tried once only
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "<b>Down" not in page
    assert "HTTP 500: &lt;b&gt;Down&lt;/b&gt; for &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"Test delivery {delivery.id} failed: HTTP 500: &lt;b&gt;" in page  # the flash
    row = re.search(rf'<tr id="delivery-{delivery.id}" data-status="failed">.*?</tr>', page, re.S)
    assert row and "<td>500</td>" in row.group() and f"Retry delivery {delivery.id}" in row.group()

    retried = _post(client, f"/admin/webhooks/deliveries/{delivery.id}/retry")
    assert retried.status_code == 303 and len(receiver.requests) == 2
    (again,) = _deliveries()
    assert (again.status, again.attempts, again.last_status_code) == ("delivered", 2, 200)
    assert again.last_error is None
    assert receiver.requests[0][1] == receiver.requests[1][1]  # the same delivery, again
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert f"Delivery {delivery.id}: delivered (HTTP 200)." in page

    refused = _post(client, f"/admin/webhooks/deliveries/{delivery.id}/retry")
    assert refused.status_code == 409
    assert "only a failed one is retried" in refused.get_data(as_text=True)
    assert len(receiver.requests) == 2
    (retry,) = events("webhook.retry")
    assert json.loads(retry.detail or "{}") == {"delivery": delivery.id}


def test_a_refused_connection_is_a_failed_test_with_its_error(client, auth):
    webhook = add_webhook("http://127.0.0.1:9/nothing-listens-here")
    db.session.commit()
    auth.login("admin")
    assert _post(client, f"/admin/webhooks/{webhook.id}/test").status_code == 303
    (delivery,) = _deliveries()
    assert delivery.status == "failed" and delivery.last_status_code is None
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert f"Test delivery {delivery.id} failed: URLError" in page


def test_markup_in_a_webhook_url_is_shown_escaped(client, auth):
    auth.login("admin")
    url = 'https://x.example/"><script>alert(1)</script>'
    added = _post(client, "/admin/webhooks", [("url", url), ("events", "response.created")])
    assert added.status_code == 200
    listed = client.get("/admin/webhooks")
    for page in (added.get_data(as_text=True), listed.get_data(as_text=True)):
        assert "<script>alert(1)</script>" not in page
        assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    refused = _post(client, "/admin/webhooks", [("url", "ftp://<b>x</b>"), ("events", "x")])
    assert refused.status_code == 400
    assert "<b>x</b>" not in refused.get_data(as_text=True)  # typed back, escaped


def test_a_removed_webhook_gets_nothing_more(client, auth, receiver):
    webhook = add_webhook(receiver.url)
    db.session.flush()
    failed = WebhookDelivery(
        webhook_id=webhook.id, event=TEST_EVENT, payload="{}", status="failed", attempts=1
    )
    db.session.add(failed)
    db.session.commit()
    auth.login("admin")
    removed = _post(client, f"/admin/webhooks/{webhook.id}/remove", CONFIRMED)
    assert removed.status_code == 303
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert f"Webhook {webhook.id} is off" in page and "Send a test event" not in page
    assert f"Retry delivery {failed.id}" not in page
    test = _post(client, f"/admin/webhooks/{webhook.id}/test")
    assert test.status_code == 409 and "is removed" in test.get_data(as_text=True)
    retry = _post(client, f"/admin/webhooks/deliveries/{failed.id}/retry")
    assert retry.status_code == 409 and receiver.requests == []
    assert _post(client, f"/admin/webhooks/{webhook.id}/remove", CONFIRMED).status_code == 303
    (remove,) = events("webhook.remove")  # removing it again changed nothing
    assert remove.target == f"webhook:{webhook.id}" and remove.actor == "admin@example.com"


def test_test_and_retry_from_the_command_line(runner, receiver):
    webhook = add_webhook(receiver.url)
    db.session.commit()
    receiver.answers = [(503, b"busy")]
    failed = runner.invoke(args=["webhook", "test", str(webhook.id)])
    assert failed.exit_code == 1 and "failed: HTTP 503: busy" in failed.output
    (delivery,) = _deliveries()
    retried = runner.invoke(args=["webhook", "retry", str(delivery.id)])
    assert retried.exit_code == 0 and "delivered (HTTP 200)" in retried.output
    assert runner.invoke(args=["webhook", "retry", str(delivery.id)]).exit_code == 2
    assert runner.invoke(args=["webhook", "test", "999"]).exit_code == 2
    assert runner.invoke(args=["webhook", "retry", "999"]).exit_code == 2
    assert [e.actor.startswith("cli:") for e in events("webhook.test")] == [True]
    assert len(events("webhook.retry")) == 1


def test_an_answer_with_a_nul_byte_is_stored_on_any_database(client, auth, receiver):
    """PostgreSQL refuses NUL in text: a receiver's odd answer must not stop deliveries."""
    webhook = add_webhook(receiver.url)
    db.session.commit()
    auth.login("admin")
    receiver.answers = [(500, b"bad\x00byte"), (200, b"ok\x00")]
    assert _post(client, f"/admin/webhooks/{webhook.id}/test").status_code == 303
    assert _post(client, f"/admin/webhooks/{webhook.id}/test").status_code == 303
    failed, delivered = _deliveries()
    assert failed.status == "failed" and failed.last_error == "HTTP 500: bad\ufffdbyte"
    assert delivered.status == "delivered" and delivered.last_answer == "ok\ufffd"
    assert client.get("/admin/webhooks").status_code == 200


def test_an_erasure_drops_what_a_receiver_echoed_of_her(person):  # noqa: F811
    hers, others = sorted(_deliveries(), key=lambda d: EMAIL not in d.payload)
    assert EMAIL in hers.payload and EMAIL not in others.payload
    echo = f"HTTP 500: got {{'contact': {{'email': '{EMAIL}'}}, 'text': '{COMMENT}'}}"
    hers.last_error, hers.last_answer = echo, echo[10:]
    others.last_error, others.last_answer = "HTTP 500: busy", "busy"
    db.session.commit()
    requests.erase(requests.find_person(EMAIL))
    db.session.expire_all()
    assert hers.last_answer is None and hers.last_error == ERASED_TEXT
    assert (others.last_error, others.last_answer) == ("HTTP 500: busy", "busy")  # not hers


@pytest.mark.parametrize("path", [p for m, p, _, _ in ROUTES if m == "POST"])
def test_a_post_without_the_csrf_token_changes_nothing(client, auth, receiver, path):
    webhook = add_webhook(receiver.url)
    db.session.commit()
    auth.login("admin")
    before = len(events())
    path = path.format(key=1, webhook=webhook.id, delivery=1)
    reply = client.post(path, data={"name": "webshop", "url": receiver.url, **CONFIRMED})
    assert reply.status_code == 400 and len(events()) == before and receiver.requests == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


# --- destructive actions ask first -----------------------------------------------------------


def test_revoking_a_key_and_removing_a_webhook_ask_first(client, auth, receiver):
    """The list's button opens a page that says what will happen (a GET: nothing changes);
    its Confirm posts; Cancel goes back. A POST that skipped the question is a 400 that
    says so, and changes nothing."""
    api_key = ApiKey(name="ci-<bot>", prefix="loy_cicicici", key_hash="0" * 64)
    webhook = add_webhook(receiver.url)
    db.session.add(api_key)
    db.session.commit()
    auth.login("admin")
    listed = client.get("/admin/keys").get_data(as_text=True)
    assert f'action="/admin/keys/{api_key.id}/revoke"' in listed and 'method="get"' in listed

    asked = client.get(f"/admin/keys/{api_key.id}/revoke")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and asked.headers["Cache-Control"] == "no-store"
    assert "Revoke key \u2018ci-&lt;bot&gt;\u2019?" in page and "<bot>" not in page
    assert "Programs using it" in page and "will get 401 at once" in page
    assert f'<form method="post" action="/admin/keys/{api_key.id}/revoke">' in page
    assert 'name="confirmed" value="yes"' in page and 'name="csrf_token"' in page
    assert f'href="/admin/keys#key-{api_key.id}"' in page and ">Cancel</a>" in page

    skipped = _post(client, f"/admin/keys/{api_key.id}/revoke")
    assert skipped.status_code == 400
    assert "Nothing was changed: revoking a key must be confirmed first" in skipped.text
    asked = client.get(f"/admin/webhooks/{webhook.id}/remove")
    assert asked.status_code == 200 and f"Remove webhook {webhook.id}" in asked.text
    assert "Nothing more is sent to it" in asked.text
    skipped = _post(client, f"/admin/webhooks/{webhook.id}/remove", {"confirmed": "no"})
    assert skipped.status_code == 400 and "removing a webhook must be confirmed" in skipped.text
    db.session.expire_all()
    assert db.session.get(ApiKey, api_key.id).revoked_at is None
    assert db.session.get(Webhook, webhook.id).active
    assert events("api_key.revoke") == events("webhook.remove") == []

    assert _post(client, f"/admin/keys/{api_key.id}/revoke", CONFIRMED).status_code == 303
    assert _post(client, f"/admin/webhooks/{webhook.id}/remove", CONFIRMED).status_code == 303
    db.session.expire_all()
    assert db.session.get(ApiKey, api_key.id).revoked_at is not None
    assert not db.session.get(Webhook, webhook.id).active
    # Asked again once done: back to the list, which says so.
    again = client.get(f"/admin/keys/{api_key.id}/revoke")
    assert again.status_code == 303 and again.headers["Location"].endswith(f"#key-{api_key.id}")
    assert "is revoked already" in client.get("/admin/keys").text
    assert client.get(f"/admin/webhooks/{webhook.id}/remove").status_code == 303
    assert client.get("/admin/keys/999/revoke").status_code == 404
    assert client.get("/admin/webhooks/99999999999999/remove").status_code == 404
