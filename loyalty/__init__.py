"""Loyalty: post-sale surveys, sentiment, triage, account health and trends."""

from __future__ import annotations

import typing as t

from flask import Flask, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from jinja2 import pass_context

from . import config
from .i18n import best_language
from .i18n import text as ui_text

csrf = CSRFProtect()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the app: config layers, extensions, survey definitions, blueprints, CLI."""
    app = Flask(
        __name__,
        instance_path=config.instance_path(test_config),
        instance_relative_config=True,
        template_folder=str(config.PROJECT_ROOT / "templates"),
    )
    config.load(app, test_config)

    from . import auth, cli, db, responses, survey, surveys
    from .cases import init_app as init_triage

    db.init_app(app)
    auth.init_app(app)
    csrf.init_app(app)
    # Flags, cases, the triage queue, notifications and responsiveness (issue 5); the flag
    # rules and SLA settings are checked here, so a bad one stops start-up.
    init_triage(app)
    # Survey definitions are checked now: a broken file stops start-up, naming file and field.
    app.extensions["loyalty.surveys"] = surveys.load_folder(app.config["FORMS_FOLDER"])

    app.register_blueprint(auth.bp)
    app.register_blueprint(survey.bp)
    app.register_blueprint(responses.bp)
    # The survey form checks its own CSRF token so it can keep the customer's answers;
    # one-click unsubscribe (RFC 8058) comes from mail clients that have no token.
    csrf.exempt("loyalty.survey.submit")
    csrf.exempt("loyalty.survey.unsubscribe")
    cli.init_app(app)
    # Events in (API, imports), scheduling, the dispatcher, webhooks, the funnel (issue 4).
    from . import api, dispatch, funnel, imports, invitations, webhooks

    app.register_blueprint(api.bp)
    app.register_blueprint(funnel.bp)
    csrf.exempt(api.bp)  # API clients send a bearer key, not a session cookie
    for module in (api, dispatch, imports, invitations, webhooks):
        module.init_app(app)
    _register_pages(app)
    return app


def _register_pages(app: Flask) -> None:
    @app.template_global("_")
    @pass_context
    def translate(context: t.Any, key: str, **values: t.Any) -> str:
        return ui_text(key, context.get("language") or "en", **values)

    @app.get("/")
    def index():
        """Staff start on the latest responses; everyone else is asked to sign in."""
        if current_user.is_authenticated:
            return redirect(url_for("responses.index"))
        return redirect(url_for("auth.login"))

    @app.get("/healthz")
    def healthz():
        """For load balancers: the process answers."""
        return {"status": "ok"}

    def error_page(status: int, key: str):
        language = best_language(request.accept_languages)
        message = ui_text(key, language)
        return render_template("error.html", language=language, message=message), status

    from .survey import not_found_page

    app.register_error_handler(404, not_found_page)
    app.register_error_handler(CSRFError, lambda e: error_page(400, "error_expired_form"))
    app.register_error_handler(400, lambda e: error_page(400, "error_bad_request"))
    app.register_error_handler(403, lambda e: error_page(403, "error_forbidden"))
    app.register_error_handler(405, lambda e: (*error_page(405, "error_method"), e.get_headers()))
    app.register_error_handler(413, lambda e: error_page(413, "error_too_large"))

    @app.errorhandler(500)
    def server_error(error: Exception):
        from .db import db

        db.session.rollback()
        return error_page(500, "error_server")
