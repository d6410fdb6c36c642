"""Loyalty: post-sale surveys, sentiment, triage, account health and trends."""

from __future__ import annotations

import typing as t

from flask import Flask, redirect, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

if t.TYPE_CHECKING:
    from flask.json.provider import DefaultJSONProvider

from . import config

csrf = CSRFProtect()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the app; the one place where the parts are put together.

    Read top to bottom it is the flow of data in the design: settings and definitions are
    checked first (a bad one stops start-up, naming what is wrong), then the pages, then who
    listens to each event, then the commands.
    """
    from . import (
        auth,
        bodies,
        cli,
        db,
        errors,
        healthz,
        logs,
        ratelimits,
        security,
        signals,
        specs,
        templating,
    )
    from .accounts import health, rollup
    from .accounts import views as accounts
    from .admin import integrations as admin_integrations
    from .admin import uploads as admin_uploads
    from .admin import views as admin
    from .api import views as api
    from .audit import views as audit
    from .dashboard import funnel, responses, rollups, schedule
    from .dashboard import views as dashboard
    from .outreach import dispatch, webhooks
    from .privacy import retention
    from .privacy import views as privacy_views
    from .survey import follow_ups
    from .survey import views as survey
    from .triage import clock, flagging, notifications, responsiveness, settings
    from .triage import views as triage

    app = Flask(
        __name__,
        instance_path=config.instance_path(test_config),
        instance_relative_config=True,
        template_folder=str(config.bundled_folder("templates")),
    )
    config.load(app, test_config)
    # Link tokens are credentials: the app's error log and the development server's access
    # log keep a short prefix only (gunicorn's logs: gunicorn.conf.py).
    logs.install(app.logger.name, "werkzeug")
    if int(app.config["PROXY_HOPS"]):
        # Behind nginx every request comes from 127.0.0.1: the client's address (which the
        # survey link limit counts by) is what the trusted proxies say it is.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    # Security headers on every response, trusted hosts, cookie flags (loyalty/security.py).
    security.init_app(app)

    # Extensions, then what is checked at start-up: the triage settings (flag rules, the
    # SLA clock, the digest), every survey definition in forms/ and its themes.
    db.init_app(app)
    bodies.init_app(app)  # before CSRF's check reads the form
    auth.init_app(app)
    csrf.init_app(app)
    app.extensions[specs.THEMES_KEY] = specs.load_theme_book(app.config["FORMS_FOLDER"])
    settings.settings(app)  # after the themes: a flag rule may name one
    health.parse_rules(app.config["HEALTH"])
    app.extensions[specs.REGISTRY_KEY] = specs.load_folder(app.config["FORMS_FOLDER"])
    app.extensions[specs.REPORTS_KEY] = specs.load_reports(app.config["REPORTS_FOLDER"])
    schedule.parse(app.config["REPORT_SCHEDULE"], app.extensions[specs.REPORTS_KEY])

    # Pages: the customer's survey, staff sign-in and pages, the API; errors and filters.
    for blueprint in (survey.bp, auth.bp, responses.bp, funnel.bp, triage.bp, accounts.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(responsiveness.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(privacy_views.bp)
    app.register_blueprint(audit.bp)  # /admin/audit
    app.register_blueprint(admin_integrations.bp)  # /admin/keys, /admin/webhooks
    app.register_blueprint(admin.bp)  # /admin: staff users, survey definitions
    app.register_blueprint(admin_uploads.bp)  # /admin/imports
    app.register_blueprint(healthz.bp)  # for load balancers: database and schema ready
    # Rate limits on sign-in, the survey's posts and the API (loyalty/ratelimits.py).
    ratelimits.init_app(app)
    # The survey form (and its partial save) checks its own token, bound to the link rather
    # than to a session cookie, so a customer whose browser blocks cookies can answer, and
    # so it can keep the customer's answers; one-click unsubscribe (RFC 8058) comes from
    # mail clients that have no token; API clients send a bearer key, not a session cookie.
    csrf.exempt(survey.submit)
    csrf.exempt(survey.save_partial)
    csrf.exempt(survey.unsubscribe)
    csrf.exempt(api.bp)
    # API clients need not guess the charset.
    t.cast("DefaultJSONProvider", app.json).mimetype = "application/json; charset=utf-8"
    errors.init_app(app)
    templating.init_app(app)
    _register_start_pages(app)

    # Who listens to what. An answer is saved (survey page, a score tapped in the email): in
    # the same transaction its reminder is called off (no dispatcher pass may remind someone
    # who answered) and its follow-up is queued in the outbox. Once it is committed and the
    # customer has their reply, the follow-up (an app thread, `flask work` or the
    # dispatcher) flags it and opens or joins a case, tells other systems by webhook and
    # marks health and trends out of date, all in one transaction with the outbox row.
    # Blinker promises no order among receivers, so none may depend on another's work.
    signals.response_saved.connect(dispatch.mark_answered, app)
    signals.response_saved.connect(follow_ups.queue_on_save, app)
    signals.response_committed.connect(flagging.flag_on_save, app)
    signals.response_committed.connect(webhooks.queue_response_created, app)
    signals.response_committed.connect(rollup.on_response_saved, app)  # health is out of date
    signals.response_committed.connect(rollups.on_response_saved, app)  # so is its day's count
    signals.response_committed.connect(clock.on_response_committed, app)  # recovered?
    # An account changes hands or segment: the trends split by owner and segment recount.
    signals.account_changed.connect(rollups.on_account_changed, app)
    # After each dispatcher pass: follow-ups nobody has done yet, severe-case emails that did
    # not go out, and the digests;
    # today's health of the accounts that changed, and the warnings it raises.
    signals.dispatch_tick.connect(follow_ups.on_dispatch_tick, app)  # cases, webhooks
    signals.dispatch_tick.connect(notifications.on_dispatch_tick, app)
    signals.dispatch_tick.connect(rollup.on_dispatch_tick, app)
    signals.dispatch_tick.connect(rollups.on_dispatch_tick, app)  # invitations went out
    signals.dispatch_tick.connect(clock.on_dispatch_tick, app)  # cases' SLA figures
    signals.dispatch_tick.connect(retention.on_dispatch_tick, app)  # old personal data goes
    signals.dispatch_tick.connect(schedule.on_dispatch_tick, app)  # a period ended: reports

    cli.register(app)
    return app


def _register_start_pages(app: Flask) -> None:
    from .auth import start_page

    @app.get("/")
    def index():
        """Staff start on their role's page; everyone else is asked to sign in."""
        if current_user.is_authenticated:
            return redirect(start_page())
        return redirect(url_for("auth.login"))
