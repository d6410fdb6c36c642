"""Configuration layering: defaults, then ``instance/config.py``, then ``LOYALTY_*`` env.

Every setting lives in :data:`SETTINGS` with its default and a line of help, so the
README and a test can check that each one is documented.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import secrets
import typing as t
from pathlib import Path

from sqlalchemy.engine import make_url

from .accounts.health import DEFAULT_RULES as HEALTH_RULES
from .triage.flags import DEFAULT_RULES, DEFAULT_SEVERITY

if t.TYPE_CHECKING:
    from flask import Flask

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent  # the repository, when running from a checkout
_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()  # editable installs too, never a wheel

#: connections each process keeps open (gunicorn.conf.py: 8 threads a worker, plus one)
POOL_SIZE = 10


def bundled_folder(name: str) -> Path:
    """``templates``, ``forms`` or ``reports``: a checkout keeps them beside ``loyalty/``, a
    wheel carries them inside it (see ``pyproject.toml``). The checkout's wins when it exists."""
    checkout = PROJECT_ROOT / name
    return checkout if _CHECKOUT and checkout.is_dir() else PACKAGE_ROOT / name


# An installed app keeps its instance in the working directory, never in site-packages.
_DEFAULT_INSTANCE = PROJECT_ROOT / "instance" if _CHECKOUT else Path.cwd() / "instance"

#: name -> (default, help). ``None`` defaults are computed at start-up.
SETTINGS: dict[str, tuple[t.Any, str]] = {
    "DATABASE_URL": (None, "SQLAlchemy URL; default is SQLite at instance/loyalty.db."),
    "BASE_URL": ("http://127.0.0.1:5000", "Public address used in every link in an email."),
    "MAIL_URL": ("outbox:", "smtp://user:pass@host:port[?starttls=1] or outbox:[folder]."),
    "MAIL_FROM": ("Loyalty <loyalty@localhost>", "From address of survey emails."),
    "COMPANY_NAME": ("Loyalty Demo A/S", "Company name shown in surveys and emails."),
    "INVITATION_DAYS": (30, "Days a survey link stays open for answers and changes."),
    "STAFF_IDLE_MINUTES": (60, "Staff are signed out after this many minutes without a request."),
    "SET_PASSWORD_HOURS": (72, "Hours a set-password link (an invitation or a reset) stays valid."),
    "STAFF_SESSION_HOURS": (12, "A staff sign-in lasts at most this many hours."),
    "COMMENT_MAX_LENGTH": (5000, "Longest free-text answer, in UTF-16 units as maxlength counts."),
    "MAX_CONTENT_LENGTH": (64 * 1024, "Largest request body accepted, in bytes."),
    "IMPORT_MAX_BYTES": (5 * 1024 * 1024, "Largest CSV an admin may upload at /admin/imports."),
    "IMPORT_MAX_ROWS": (10_000, "Most rows of a CSV uploaded at /admin/imports."),
    "MAX_FORM_PARTS": (100, "Most fields and files one multipart form may have; more: 413."),
    "MAX_FORM_MEMORY_SIZE": (32 * 1024, "Largest text field of a multipart form, in bytes."),
    "EXTRA_HOSTS": ([], "Host names answered beside BASE_URL's and loopback; others: 400."),
    "LINK_MISS_LIMIT": (30, "Unknown survey links one client may open per window; then 429."),
    "LINK_MISS_WINDOW": (60, "Seconds of that window."),
    "SIGN_IN_SLOW_AFTER": (3, "Failed sign-ins of one address before each further one waits."),
    "SIGN_IN_LOCK_FAILURES": (10, "Failed sign-ins of one address that lock it for the window."),
    "SIGN_IN_LOCK_CLIENT_FAILURES": (50, "Failed sign-ins from one client that lock it out."),
    "SIGN_IN_LOCK_MINUTES": (15, "The window failed sign-ins are counted in, and the lock."),
    "SIGN_IN_RATE_LIMIT": ("10 per minute", "Sign-in posts one client may make (Flask-Limiter)."),
    "SURVEY_RATE_LIMIT": ("20 per minute", "Survey answers and saves one client may post."),
    "API_RATE_LIMIT": ("300 per minute", "Requests one API key may make to /api/v1."),
    "API_CLIENT_RATE_LIMIT": ("600 per minute", "Requests one client may make to /api/v1."),
    "RATELIMIT_ENABLED": (True, "Rate limits on; false switches every limit off."),
    "RATELIMIT_STORAGE_URI": ("memory://", "Where the limits count: memory:// or redis://host."),
    "PROXY_HOPS": (0, "Proxies in front that set X-Forwarded-For (nginx: 1); 0 trusts none."),
    "PARTIAL_SAVE_SECONDS": (4, "Seconds a survey must be in view before a tapped score is saved."),
    "FORMS_FOLDER": (str(bundled_folder("forms")), "Folder of survey definitions (TOML)."),
    "REPORTS_FOLDER": (str(bundled_folder("reports")), "Folder of report definitions (TOML)."),
    "INSTANCE_PATH": (
        str(_DEFAULT_INSTANCE),
        "Folder for the database, key and outbox; installed: ./instance of the working directory.",
    ),
    "SECRET_KEY": (None, "Signs sessions and links; generated into instance/secret_key."),
    # Scheduling and sending (issue 4): see README, "Scheduling rules" and "The dispatcher".
    "CONTACT_THROTTLE_DAYS": (30, "A contact is surveyed at most once within these days."),
    "ACCOUNT_THROTTLE_DAYS": (7, "Window of the B2B account throttle, in days."),
    "ACCOUNT_THROTTLE_CONTACTS": (2, "Most contacts of one B2B account surveyed in that window."),
    "REMINDER_DAYS": (4, "Days after sending to remind an unanswered invitation; 0: never."),
    "DISPATCH_INTERVAL": (30, "Seconds between passes of `flask dispatch --loop`."),
    "FOLLOW_UPS_IN_APP": (
        True,
        "Each app process does its answers' follow-ups (flag, case, webhooks) in a background"
        " thread right after the reply; false where `flask work` does them.",
    ),
    "WORK_INTERVAL": (1, "Seconds between passes of `flask work` (answers' follow-ups)."),
    "WEBHOOK_TIMEOUT": (10, "Seconds to wait for a webhook receiver to answer."),
    # Triage (issue 5): see README, "Triage" and "SLA clock".
    "FLAG_RULES": (
        DEFAULT_RULES,
        "Rules that flag a response: name -> metric/sentiment/cues/theme.",
    ),
    "FLAG_SEVERITY": (DEFAULT_SEVERITY, "How severity rises: cue points, annual value, B2B."),
    "CASE_JOIN_HOURS": (72, "A flag joins its account's open case opened within these hours."),
    "CASE_DEFAULT_ASSIGNEE": ("", "Email of who gets cases when the account has no owner."),
    "SLA_TIMEZONE": ("Europe/Copenhagen", "Time zone of the business-hours clock."),
    "SLA_WORKING_DAYS": ("mon-fri", "Working days, e.g. mon-fri or mon,tue,wed,thu."),
    "SLA_WORKING_HOURS": ("08:00-17:00", "Working hours of each working day, local time."),
    "SLA_HOLIDAYS_COUNTRY": ("DK", "Country whose public holidays are days off; empty: none."),
    "SLA_EXTRA_HOLIDAYS": (["12-24", "12-31"], "More days off: MM-DD yearly, YYYY-MM-DD once."),
    "SLA_FIRST_CONTACT_HOURS": (8, "Business hours from a case opening to first contact."),
    "SLA_RESOLUTION_HOURS": (40, "Business hours from a case opening to its resolution."),
    "NOTIFY_MIN_SEVERITY": (3, "New cases this severe (3 high, 4 critical) email the assignee."),
    "DIGEST_HOUR": (8, "Local hour on working days after which the daily digest goes out."),
    "DIGEST_ROLES": (["admin", "support", "executive"], "Staff roles that get the daily digest."),
    # The dashboard, the metrics API and the reports: see README, "The dashboard".
    "MIN_N": (30, "A point resting on fewer answers is low confidence: drawn hollow, never bare."),
    "REPORT_SCHEDULE": (
        [
            {"report": "executive-monthly", "every": "month", "roles": ["executive"]},
            {"report": "support-weekly", "every": "week", "roles": ["support"]},
        ],
        "Reports emailed when a period ends: report, every (week/month/quarter), roles, "
        "language (en/da), hour (local, default 7).",
    ),
    # Privacy: see README, "Privacy requests".
    "RETENTION_MONTHS": (
        0,
        "Comments and personal data older than this many months are removed; 0: kept.",
    ),
    # Account health (issue 10): see README, "Account health".
    "HEALTH": (HEALTH_RULES, "Account health: base, bands, windows, signal points, warnings."),
}


def instance_path(test_config: t.Mapping[str, t.Any] | None) -> str:
    """Where the instance folder is; needed before the app exists, so read on its own."""
    if test_config and test_config.get("INSTANCE_PATH"):
        return str(test_config["INSTANCE_PATH"])
    return os.environ.get("LOYALTY_INSTANCE_PATH") or SETTINGS["INSTANCE_PATH"][0]


def load(app: Flask, test_config: t.Mapping[str, t.Any] | None) -> None:
    """Apply the layers in order; later layers win."""
    # Copies, so an app that changes a list or dict setting in place changes only its own.
    app.config.update({name: copy.deepcopy(default) for name, (default, _) in SETTINGS.items()})
    app.config.update(
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session; a customer may take their time
    )
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("LOYALTY")
    if test_config is not None:
        app.config.update(test_config)
    app.config["INSTANCE_PATH"] = app.instance_path

    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    if not app.config["DATABASE_URL"]:
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'loyalty.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = app.config["DATABASE_URL"]
    # The pool keeps a connection for each of a gunicorn worker's 8 threads and its
    # follow-up thread: with fewer kept, every busy moment closed and opened connections
    # again (on PostgreSQL a new server process each time).
    in_memory = make_url(app.config["DATABASE_URL"]).database in (None, "", ":memory:")
    pool = {} if in_memory else {"pool_size": POOL_SIZE}  # one shared connection: no pool
    if app.config["DATABASE_URL"].startswith("sqlite"):
        # Writers wait for each other instead of failing with "database is locked".
        app.config.setdefault(
            "SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 15}, **pool}
        )
    else:
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, **pool})
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(
        hours=float(app.config["STAFF_SESSION_HOURS"])
    )
    if str(app.config["BASE_URL"]).startswith("https://"):
        # Served over TLS: the cookie never travels in the clear, and the __Host- prefix
        # keeps other hosts of the domain from setting it.
        app.config["SESSION_COOKIE_SECURE"] = True
        if app.config.get("SESSION_COOKIE_NAME", "session") == "session":
            app.config["SESSION_COOKIE_NAME"] = "__Host-loyalty"
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")
    app.config["BASE_URL"] = str(app.config["BASE_URL"]).rstrip("/")


def _instance_secret(path: Path) -> str:
    """Read the instance's secret key, creating it (readable by the owner only) once."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()
