"""Every route has a table that walks it with every role and anonymously: a new blueprint
cannot arrive without one (issue 14, "roles checked everywhere")."""

from __future__ import annotations

import importlib

#: endpoint prefix -> the test module whose table walks its routes (and whose own test fails
#: when a route of it is missing from that table)
WALKED_BY = {
    "triage.": "test_triage",
    "dashboard.": "test_triage",
    "responses.": "test_triage",
    "funnel.": "test_triage",
    "responsiveness.": "test_triage",
    "accounts.": "test_accounts_views",
    "privacy.": "test_privacy_views",
    "audit.": "test_audit",
    "admin.": "test_admin_views",
    "admin_imports.": "test_admin_views",
    "admin_integrations.": "test_admin_integrations",
    "api.": "test_api",
}
#: public on purpose: the customer's survey and unsubscribe links, sign-in and the
#: set-password link, static files, the start page and the load balancer's check
PUBLIC = ("survey.", "auth.", "static", "index", "healthz")


def test_every_route_has_a_table_that_walks_it(app):
    unowned = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if not rule.endpoint.startswith((*WALKED_BY, *PUBLIC))
    ]
    assert unowned == [], "routes no role table walks"
    for module in set(WALKED_BY.values()):
        assert importlib.import_module(module).__doc__, module


def _paths(app):
    import re

    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(PUBLIC):
            continue
        path = re.sub(r"<(?:\w+:)?\w+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def test_nobody_signed_in_gets_past_any_route(app, client):
    """Anonymous: every staff page sends to sign-in, every API route wants its key, and
    nothing is written."""
    for endpoint, method, path in _paths(app):
        reply = client.open(path, method=method, data={})
        if endpoint == "api.openapi":
            assert reply.status_code == 200
        elif endpoint.startswith("api."):
            assert reply.status_code == 401, (method, path)
        elif endpoint == "accounts.charts.plotly_js":
            assert reply.status_code in (200, 404), path
        else:
            assert reply.status_code in (302, 400), (method, path, reply.status_code)
            if reply.status_code == 302:
                assert reply.headers["Location"].startswith("/login"), path


def test_an_executive_changes_nothing(app, client, auth):
    """An executive reads; every POST, PUT and DELETE of a staff page is refused (403), and
    the CSRF check passes, so the refusal is the role's."""
    from conftest import csrf_from

    auth.login("executive")
    token = csrf_from(client.get("/login").get_data(as_text=True))
    for endpoint, method, path in _paths(app):
        if method == "GET" or endpoint.startswith("api."):
            continue
        reply = client.open(path, method=method, data={"csrf_token": token})
        assert reply.status_code == 403, (method, path, reply.status_code)
