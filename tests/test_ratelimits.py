"""Rate limits (issue 14): sign-in posts and survey posts per client, the API per client and
per key; each breach a 429 with Retry-After, the customer's in their own language."""

from __future__ import annotations

import pytest
from conftest import _config, csrf_from

from loyalty.db import db

LIMITS = {
    "RATELIMIT_ENABLED": True,
    "SIGN_IN_RATE_LIMIT": "3 per minute",
    "SURVEY_RATE_LIMIT": "2 per minute",
    "API_RATE_LIMIT": "3 per minute",
    "API_CLIENT_RATE_LIMIT": "5 per minute",
}


@pytest.fixture
def limited(database_url, tmp_path):
    """The app as it runs outside the test suite: limits on (small ones, to reach them)."""
    from loyalty import create_app

    app = create_app({**_config(tmp_path, database_url), **LIMITS})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_sign_in_posts_are_limited_per_client(limited):
    client = limited.test_client()
    token = csrf_from(client.get("/login").text)
    data = {"email": "x@example.com", "password": "guess", "csrf_token": token}
    english = {"Accept-Language": "en"}
    assert [client.post("/login", data=data).status_code for _ in range(3)] == [401] * 3
    refused = client.post("/login", data=data, headers=english)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "Too many attempts from your connection" in refused.text
    assert "Content-Security-Policy" in refused.headers
    assert client.get("/login").status_code == 200  # only posts count
    other = limited.test_client()
    elsewhere = other.post("/login", data=data, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert elsewhere.status_code == 400  # its own count (and no CSRF token of its own)


def test_survey_posts_are_limited_with_a_page_in_the_customers_language(limited, invite):
    _, token = invite("da")
    client = limited.test_client()
    english = {"Accept-Language": "en"}  # the browser's; the invitation is in Danish
    posts = [client.post(f"/s/{token}", data={"nps": "9"}, headers=english) for _ in range(3)]
    assert all(p.status_code != 429 for p in posts[:2])
    refused = posts[2]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert 'lang="da"' in refused.text and "for mange svar" in refused.text
    assert refused.headers["Referrer-Policy"] == "no-referrer"
    assert client.get(f"/s/{token}").status_code == 200  # opening the page is never limited


def test_the_api_is_limited_per_key_and_per_client(limited):
    from loyalty.api.keys import create_key

    keys = [create_key(name)[1] for name in ("shop", "crm", "erp", "bi")]
    db.session.commit()
    client = limited.test_client()

    def get(key: str, ip: str = "127.0.0.1"):
        return client.get(
            "/api/v1/metrics/nps",
            headers={"Authorization": f"Bearer {key}"},
            environ_base={"REMOTE_ADDR": ip},
        )

    assert [get(keys[0], ip=f"10.0.0.{n}").status_code for n in range(3)] == [200] * 3
    per_key = get(keys[0], ip="10.0.0.9")  # a fourth use of one key, from anywhere
    assert per_key.status_code == 429 and per_key.is_json
    assert "Retry-After" in per_key.headers and "too many requests" in per_key.get_json()["error"]
    assert get(keys[1], ip="10.0.0.9").status_code == 200  # another key has its own count
    # One client using many keys, none past its own limit: the per-client limit (5) holds.
    answers = [get(k).status_code for k in (keys[1], keys[1], keys[2], keys[2], keys[3])]
    assert answers == [200] * 5
    per_client = get(keys[3])
    assert per_client.status_code == 429 and "Retry-After" in per_client.headers


def test_limits_are_off_in_the_rest_of_the_suite(app, client):
    """The suite's config switches them off, so no other test is tripped by them."""
    assert app.config["RATELIMIT_ENABLED"] is False
    token = csrf_from(client.get("/login").text)
    data = {"email": "x@example.com", "password": "guess", "csrf_token": token}
    app.config["SIGN_IN_LOCK_FAILURES"] = 100
    app.config["SIGN_IN_SLOW_AFTER"] = 100
    assert {client.post("/login", data=data).status_code for _ in range(15)} == {401}
