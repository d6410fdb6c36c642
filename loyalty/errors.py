"""Every error answer, in one place: JSON under ``/api``, pages for people everywhere else.

A customer who follows a dead survey or unsubscribe link sees the friendly "this link does
not work" page in their language; staff who mistype an address see a staff page that says
so; an API client always gets ``{"error": ..., "field": ...}``, even for a path that matches
no route. A 500 rolls the session back first, so nothing half-done is committed later.
"""

from __future__ import annotations

import typing as t

from flask import Response, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from . import storage
from .api import PREFIX as API_PREFIX
from .db import db
from .i18n import best_language
from .i18n import text as ui_text

if t.TYPE_CHECKING:
    from flask import Flask

#: The customer's pages: a link to them that does not open gets the customer's 404 page.
PUBLIC_PREFIXES = ("/s/", "/u/")
#: The message of each page a person may see, by status code (see ``loyalty/i18n.py``).
_PAGES = {
    400: "error_bad_request",
    403: "error_forbidden",
    404: "error_page_not_found",
    405: "error_method",
    413: "error_too_large",
    500: "error_server",
}


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _expired_form)
    app.register_error_handler(DBAPIError, _storage_refused)


def json_error(status: int, message: str, field: str | None = None, **headers: str) -> Response:
    """The API's one error shape: ``{"error": message, "field": field}``."""
    # DefaultJSONProvider.response builds ``app.response_class``; flask types it as
    # werkzeug's sansio base class only.
    response = t.cast(Response, current_app.json.response({"error": message, "field": field}))
    response.status_code = status
    response.headers.update(headers)
    return response


def is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _http_error(exc: HTTPException) -> t.Any:
    code = exc.code or 500
    if code >= 500:
        db.session.rollback()
    headers = {}
    valid_methods = getattr(exc, "valid_methods", None) if code == 405 else None
    if valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    if is_api(request.path):
        return json_error(code, exc.description or exc.name, **headers)
    if code == 404 and (request.blueprint == "survey" or request.path.startswith(PUBLIC_PREFIXES)):
        return survey_not_found()
    if code not in _PAGES:
        return exc
    return _page(code, _PAGES[code], headers)


def _storage_refused(exc: DBAPIError) -> t.Any:
    """The database cannot store anything now (full or read-only disk): 503 and Retry-After,
    rolled back; any other database error is the app's fault, a 500."""
    db.session.rollback()
    if not storage.is_refusal(exc):
        raise exc
    storage.note_refusal()
    if is_api(request.path):
        return json_error(
            503,
            "the database cannot store anything now; try again in a moment",
            **storage.retry_after(),
        )
    if request.blueprint == "survey" and request.method == "POST":
        return _try_again_form()
    return _page(503, "error_storage_page", storage.retry_after())


def _try_again_form() -> t.Any:
    """A customer's answer that met a database it cannot even read: the friendly page, with
    everything they posted (the form's CSRF token too) in hidden fields and a "Try again"
    button that sends it to the same address, so nothing they typed is lost. No JavaScript:
    a plain form re-posts it. Jinja escapes every name and value."""
    language = best_language(request.accept_languages)
    try:
        fields = list(request.form.items(multi=True))
    except HTTPException:  # a body too large to read still gets the friendly page
        fields = []
    html = render_template(
        "survey/try_again.html", language=language, fields=fields, action=request.path
    )
    return html, 503, storage.retry_after()


def _expired_form(exc: CSRFError) -> t.Any:
    if is_api(request.path):  # the API is exempt from CSRF; kept for safety
        return json_error(400, exc.description)
    return _page(400, "error_expired_form", {})


def _page(code: int, key: str, headers: dict[str, str]) -> t.Any:
    language = best_language(request.accept_languages)
    html = render_template("error.html", language=language, message=ui_text(key, language))
    return html, code, headers


def survey_not_found() -> t.Any:
    """The one friendly page for every link that does not open a survey."""
    language = best_language(request.accept_languages)
    return render_template("survey/not_found.html", language=language), 404
