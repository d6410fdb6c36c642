"""Security headers on every route, trusted hosts, form limits and cookie flags (issue 14)."""

from __future__ import annotations

import re

import pytest
from conftest import BASE_URL, _config, csrf_from

from loyalty.db import db

#: Every header each answer must carry, whatever the route, the method or the status.
REQUIRED = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (p.split() for p in csp.split(";") if p.strip())
    return {p[0]: p[1:] for p in parts}


def _check_headers(path: str, response) -> None:
    for name in REQUIRED:
        assert response.headers.get(name), f"{path}: no {name} ({response.status_code})"
    csp = _directives(response.headers["Content-Security-Policy"])
    script_src = csp.get("script-src", csp.get("default-src"))
    assert script_src is not None, f"{path}: no script-src"
    assert "'unsafe-inline'" not in script_src, f"{path}: script-src allows inline scripts"
    assert "'unsafe-eval'" not in script_src and "*" not in script_src, path
    assert csp["frame-ancestors"] == ["'none'"], path
    assert csp["object-src"] == ["'none'"], path
    assert response.headers["X-Content-Type-Options"] == "nosniff", path
    assert response.headers["X-Frame-Options"] == "DENY", path
    policy = response.headers["Referrer-Policy"]
    if path.startswith(("/s/", "/u/")):  # the link token is the customer's credential
        assert policy == "no-referrer", path
    else:
        assert policy in ("no-referrer", "same-origin"), path


def _url(rule) -> str:
    """A concrete path for a rule: 1 for numbers, a word for the rest."""
    path = rule.rule
    for converter, name in re.findall(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", path):
        value = "1" if converter == "int" else "x"
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?" + name + ">", value, path, count=1)
    return path


def _walk(app, client) -> int:
    walked = 0
    for rule in app.url_map.iter_rules():
        path = _url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(path, method=method, data={})
            _check_headers(f"{method} {path}", response)
            walked += 1
    return walked


def test_every_route_carries_the_security_headers(app, client, auth):
    """Anonymous, then as an admin (who sees every page): every route and method answers
    with a CSP whose scripts are this site's own, no framing, nosniff and a referrer rule."""
    routes = _walk(app, client)
    assert routes >= 35  # every rule was visited (the map has them all)
    auth.login("admin")
    assert _walk(app, client) == routes
    # Not only the routes: a path that matches none, and the error pages.
    _check_headers("/nowhere", client.get("/nowhere"))
    _check_headers("/api/v1/nowhere", client.get("/api/v1/nowhere"))


def test_a_page_with_inline_script_would_need_the_nonce(app, client):
    """The CSP names a fresh nonce each response, the one ``csp_nonce()`` gives a template."""
    first = _directives(client.get("/login").headers["Content-Security-Policy"])["script-src"]
    second = _directives(client.get("/login").headers["Content-Security-Policy"])["script-src"]
    assert first[0] == "'self'" and first[1].startswith("'nonce-")
    assert first[1] != second[1]
    with app.test_request_context("/login"):
        app.preprocess_request()
        nonce = app.jinja_env.globals["csp_nonce"]()
        assert nonce and len(nonce) >= 16


def test_no_template_has_an_inline_script():
    """Scripts are files (or carry ``csp_nonce()``): a strict CSP would block any other."""
    from loyalty.config import bundled_folder

    for template in bundled_folder("templates").rglob("*.html"):
        text = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)
        for tag in re.findall(r"<script\b[^>]*>", text):
            allowed = "src=" in tag or 'type="application/json"' in tag or "csp_nonce()" in tag
            assert allowed, f"{template.name}: inline script {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template.name}: an event attribute"


@pytest.fixture
def https_app(database_url, tmp_path):
    """The app as deployed behind TLS: ``BASE_URL`` is https."""
    from loyalty import create_app

    config = {**_config(tmp_path, database_url), "BASE_URL": "https://feedback.example.com"}
    app = create_app(config)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_hsts_only_when_served_over_https(client, https_app):
    secure = https_app.test_client().get("/login", base_url="https://feedback.example.com")
    assert secure.status_code == 200
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31556926")
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_https_session_cookie_is_secure_httponly_and_lax(https_app, client, auth):
    """Signed in behind https: the cookie is Secure, HttpOnly, SameSite=Lax; over plain
    http (development) it cannot be Secure, the other two stay."""
    https = https_app.test_client()
    page = https.get("/login", base_url="https://feedback.example.com")
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("__Host-loyalty=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    plain = auth.login("support").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Secure" not in plain


def test_a_staff_form_posts_over_https(https_app):
    """Over https Flask-WTF wants a same-site Referer with every staff POST; the
    Referrer-Policy (same-origin) lets the browser send it, so signing in works."""
    from loyalty.auth import create_user

    create_user("lead@example.com", "support", "correct horse battery")
    db.session.commit()
    https = https_app.test_client()
    base = "https://feedback.example.com"
    token = csrf_from(https.get("/login", base_url=base).text)
    data = {"email": "lead@example.com", "password": "correct horse battery", "csrf_token": token}
    signed_in = https.post("/login", base_url=base, data=data, headers={"Referer": f"{base}/login"})
    assert signed_in.status_code == 302
    assert signed_in.headers["Referrer-Policy"] == "same-origin"


def test_a_foreign_host_is_refused(client):
    """A Host that is not BASE_URL's (nor loopback) is a 400 page, before any view runs."""
    refused = client.get("/login", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert "evil.example" not in refused.text
    _check_headers("/login", refused)
    assert client.get("/login", headers={"Host": "survey.test"}).status_code == 200
    assert client.get("/login", headers={"Host": "127.0.0.1:8000"}).status_code == 200
    api = client.post("/api/v1/events", headers={"Host": "evil.example"}, json={})
    assert api.status_code == 400 and api.is_json


def test_extra_hosts_are_answered(app, tmp_path, database_url):
    from loyalty import create_app

    other = create_app({**_config(tmp_path, database_url), "EXTRA_HOSTS": ["lb.internal"]})
    try:
        assert other.test_client().get("/login", headers={"Host": "lb.internal"}).status_code == 200
    finally:
        with other.app_context():
            db.engine.dispose()


def test_links_in_emails_come_from_the_base_url(app, invite):
    """An email composed while answering a request for another (trusted) host still links
    to BASE_URL, never to the Host header: the survey and unsubscribe links alike."""
    from loyalty import emails

    invitation, token = invite()
    with app.test_request_context("/api/v1/events", base_url="http://127.0.0.1:9999"):
        message = emails.invitation(invitation)
    text = message.as_string()
    links = re.findall(r"https?://[^\s\"'<>]+", text)
    assert any(f"{BASE_URL}/s/{token}" in u for u in links)
    assert any(u.startswith(f"{BASE_URL}/u/") for u in links)
    assert "127.0.0.1" not in text


def _multipart(fields: list[tuple[str, str]]) -> tuple[bytes, str]:
    boundary = "loyaltyboundary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    "fields",
    [
        [(f"f{i}", "x") for i in range(101)],  # MAX_FORM_PARTS is 100
        [("email", "a@example.com"), ("password", "p" * 40_000)],  # MAX_FORM_MEMORY_SIZE 32 KiB
    ],
    ids=["too many parts", "too big a field"],
)
def test_oversized_forms_are_a_413_page(client, invite, fields):
    """Under MAX_CONTENT_LENGTH, still refused: a clear 413, never a 500, on the sign-in
    form and on the customer's survey form alike."""
    body, content_type = _multipart(fields)
    assert len(body) < 64 * 1024
    english = {"Accept-Language": "en"}
    signed = client.post("/login", data=body, content_type=content_type, headers=english)
    assert signed.status_code == 413 and "too large" in signed.text.lower()
    _, token = invite()
    survey = client.post(f"/s/{token}", data=body, content_type=content_type)
    assert survey.status_code == 413
    assert client.get("/login").status_code == 200
