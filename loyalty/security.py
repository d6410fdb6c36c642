"""What every response carries and what every request must be: security headers, trusted
hosts and session cookie flags, set in one place for the whole app.

The headers come from Flask-Talisman, a maintained library, rather than a list of our own:
a Content-Security-Policy whose scripts are this site's files only (or carry the page's
nonce, ``{{ csp_nonce() }}``), never inline ones, so an injected ``<script>`` in a comment
would not run even if escaping ever failed; ``frame-ancestors 'none'`` (no page of ours in
another site's frame); ``nosniff``; HSTS behind ``https://``. Styles may be inline: the
templates use ``style=`` attributes and Plotly styles what it draws.

The Referrer-Policy is ``same-origin``: a link or a script the page loads never tells
another site which page it came from, yet a staff form posted over HTTPS still carries the
Referer that Flask-WTF's CSRF check asks for. The customer's pages (a survey link is the
customer's credential) send no Referer at all, not even to this site.
"""

from __future__ import annotations

import typing as t
from urllib.parse import urlsplit

from flask import request
from flask_talisman import Talisman
from werkzeug.exceptions import SecurityError

from .errors import is_api, json_error

if t.TYPE_CHECKING:
    from flask import Flask, Response

#: Scripts: this site's files (and a nonce, for a page that must have an inline one).
CSP: dict[str, str | list[str]] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

#: Host names always answered to: a load balancer's health check or a shell on the server
#: itself. Links never come from the Host header, so these cannot leak into one.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: Blueprints whose pages are opened with a link token in the URL.
PUBLIC_BLUEPRINTS = ("survey",)

talisman = Talisman()


def trusted_hosts(base_url: str, extra: t.Iterable[str]) -> list[str]:
    """The Host headers the app answers: ``BASE_URL``'s host, loopback and ``extra``."""
    host = urlsplit(base_url).hostname or ""
    return list(dict.fromkeys([host, *LOOPBACK_HOSTS, *extra]))


def init_app(app: Flask) -> None:
    """Trusted hosts, cookie flags and the headers; call once, early in ``create_app``."""
    https = str(app.config["BASE_URL"]).startswith("https://")
    # A request for any other host is a 400 before a view runs (Flask's TRUSTED_HOSTS).
    app.config["TRUSTED_HOSTS"] = trusted_hosts(
        app.config["BASE_URL"], app.config.get("EXTRA_HOSTS") or ()
    )
    app.register_error_handler(SecurityError, _unknown_host)
    # Runs after Talisman's (after-request functions run last registered first).
    app.after_request(_public_pages_send_no_referrer)
    talisman.init_app(
        app,
        # TLS ends at the proxy in front (README, "Deployment"), which redirects http.
        force_https=False,
        strict_transport_security=https,
        strict_transport_security_include_subdomains=False,
        content_security_policy=CSP,
        content_security_policy_nonce_in=["script-src"],
        frame_options="DENY",
        referrer_policy="same-origin",
        session_cookie_secure=https,
        session_cookie_http_only=True,
        session_cookie_samesite="Lax",
        x_content_type_options=True,
    )


def _public_pages_send_no_referrer(response: Response) -> Response:
    if request.blueprint in PUBLIC_BLUEPRINTS:
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _unknown_host(exc: SecurityError) -> t.Any:
    """A Host we do not serve: a short 400 in plain words. No page template, as every link
    in one is built for the request's host, which is exactly what is not to be trusted."""
    if is_api(request.path):
        return json_error(400, "Unknown host.")
    text = "400 Bad Request: this address is not served here. / Denne adresse findes ikke her."
    return text, 400, {"Content-Type": "text/plain; charset=utf-8"}
