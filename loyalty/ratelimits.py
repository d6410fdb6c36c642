"""Rate limits (Flask-Limiter) on what a stranger can hammer: the sign-in form, the
customer's survey posts and the public API (per client address and per API key).

A breach is a 429 with ``Retry-After``: the customer sees a page in their own language
(their invitation's), an API client the API's JSON error, staff a short page. Counters
live in memory by default (one process: fine for one gunicorn worker, or as a floor); with
several workers or app servers set ``RATELIMIT_STORAGE_URI`` to a shared store such as
``redis://host:6379/0`` (README, "Security"). A store that is down lets requests through
(``RATELIMIT_SWALLOW_ERRORS``) rather than taking the survey down with it.

Each app gets its own :class:`Limiter`, so two apps in one process (tests) never share
counters; the limits are read from the config on each request, so a changed setting holds.
"""

from __future__ import annotations

import hashlib
import typing as t

from flask import current_app, render_template, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from .errors import is_api, json_error
from .i18n import best_language
from .i18n import text as ui_text

if t.TYPE_CHECKING:
    from flask import Flask

#: The survey's endpoints that store something (GETs are never limited here).
SURVEY_POSTS = ("survey.submit", "survey.save_partial")


def api_key_or_client() -> str:
    """The presented API key (a hash of it: the key itself is a credential), else the client."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "key:" + hashlib.sha256(key.strip().encode()).hexdigest()[:24]
    return "ip:" + (get_remote_address() or "unknown")


def _setting(name: str) -> t.Callable[[], str]:
    return lambda: str(current_app.config[name])


def init_app(app: Flask) -> Limiter:
    """A limiter for this app, with its limits; call after every blueprint is registered."""
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter = Limiter(get_remote_address, app=app)
    views = t.cast("dict[str, t.Any]", app.view_functions)
    views["auth.login"] = limiter.limit(_setting("SIGN_IN_RATE_LIMIT"), methods=["POST"])(
        views["auth.login"]
    )
    for endpoint in SURVEY_POSTS:
        views[endpoint] = limiter.limit(
            _setting("SURVEY_RATE_LIMIT"), methods=["POST"], scope="survey-posts"
        )(views[endpoint])
    api: t.Any = app.blueprints["api"]  # typed as the sansio base; it is a flask.Blueprint
    limiter.limit(_setting("API_CLIENT_RATE_LIMIT"), scope="api-client")(api)
    limiter.limit(_setting("API_RATE_LIMIT"), key_func=api_key_or_client, scope="api-key")(api)
    app.register_error_handler(RateLimitExceeded, _too_many)
    app.extensions["loyalty.limiter"] = limiter  # its limits hold it only weakly
    return limiter


def _too_many(exc: RateLimitExceeded) -> t.Any:
    """The 429 in the asker's terms; Flask-Limiter adds ``Retry-After`` to it."""
    if is_api(request.path):
        return json_error(429, f"too many requests ({exc.description}); see Retry-After")
    if request.endpoint in SURVEY_POSTS:
        language = _customer_language()
        page = render_template(
            "survey/too_many.html", language=language, body_key="too_many_answers_body"
        )
        return page, 429
    language = best_language(request.accept_languages)
    message = ui_text("error_too_many", language)
    return render_template("error.html", language=language, message=message), 429


def _customer_language() -> str:
    """The language of the invitation the link belongs to, else the browser's."""
    from .outreach.invitations import find_open

    token = (request.view_args or {}).get("token", "")
    invitation = find_open(token) if isinstance(token, str) and len(token) < 200 else None
    if invitation is not None and invitation.contact.language in ("da", "en"):
        return invitation.contact.language
    return best_language(request.accept_languages)
