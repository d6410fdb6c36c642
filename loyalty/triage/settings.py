"""The triage settings, checked once: flag rules and severity, the SLA clock, notifications.

A bad value stops start-up with a message naming the setting (``create_app`` calls
:func:`settings`); afterwards every reader gets the same checked, frozen object, rebuilt only
when a setting changed (tests change them in place).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from flask import current_app

from ..accounts.services import InviteError, normalise_email
from ..models import ROLES
from ..sentiment import ThemeBook
from ..specs import THEMES_KEY
from . import flags
from .business_hours import Calendar, CalendarError, calendar_from_settings

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug.local import LocalProxy

_SETTING_NAMES = (
    "FLAG_RULES",
    "FLAG_SEVERITY",
    "CASE_JOIN_HOURS",
    "CASE_DEFAULT_ASSIGNEE",
    "SLA_TIMEZONE",
    "SLA_WORKING_DAYS",
    "SLA_WORKING_HOURS",
    "SLA_HOLIDAYS_COUNTRY",
    "SLA_EXTRA_HOLIDAYS",
    "SLA_FIRST_CONTACT_HOURS",
    "SLA_RESOLUTION_HOURS",
    "NOTIFY_MIN_SEVERITY",
    "DIGEST_HOUR",
    "DIGEST_ROLES",
)


@dataclass(frozen=True)
class Settings:
    """The triage settings, checked: built once per distinct configuration."""

    rules: tuple[flags.Rule, ...]
    severity: flags.Severity
    calendar: Calendar
    join_window: dt.timedelta
    default_assignee: str
    first_contact_hours: float
    resolution_hours: float
    notify_min_severity: int
    digest_hour: int
    digest_roles: tuple[str, ...]


def _build_settings(config: t.Mapping[str, t.Any]) -> Settings:
    def hours(name: str) -> float:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name}: must be a number of hours, at least 0")
        return float(value)

    try:
        calendar = calendar_from_settings(
            timezone=config["SLA_TIMEZONE"],
            workdays=config["SLA_WORKING_DAYS"],
            hours=config["SLA_WORKING_HOURS"],
            country=config["SLA_HOLIDAYS_COUNTRY"] or None,
            extra=config["SLA_EXTRA_HOLIDAYS"] or (),
        )
    except CalendarError as exc:
        raise ValueError(f"SLA settings: {exc}") from None
    notify = config["NOTIFY_MIN_SEVERITY"]
    if isinstance(notify, bool) or not isinstance(notify, int):
        raise ValueError("NOTIFY_MIN_SEVERITY: must be a whole number (3 is high)")
    hour, roles = config["DIGEST_HOUR"], config["DIGEST_ROLES"]
    if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
        raise ValueError(f"DIGEST_HOUR: {hour!r} is not an hour from 0 to 23")
    if isinstance(roles, str) or not all(role in ROLES for role in roles):
        raise ValueError(f"DIGEST_ROLES: {roles!r} must be a list of {', '.join(ROLES)}")
    assignee = str(config["CASE_DEFAULT_ASSIGNEE"] or "").strip()
    if assignee:
        try:
            assignee = normalise_email(assignee)
        except InviteError as exc:
            raise ValueError(f"CASE_DEFAULT_ASSIGNEE: {exc}") from None
    rules = config["FLAG_RULES"]
    if isinstance(rules, t.Mapping):  # laid over the defaults: change one rule, keep the rest
        rules = {**flags.DEFAULT_RULES, **rules}
    return Settings(
        rules=flags.parse_rules(rules),
        severity=flags.parse_severity(config["FLAG_SEVERITY"]),
        calendar=calendar,
        join_window=dt.timedelta(hours=hours("CASE_JOIN_HOURS")),
        default_assignee=assignee,
        first_contact_hours=hours("SLA_FIRST_CONTACT_HOURS"),
        resolution_hours=hours("SLA_RESOLUTION_HOURS"),
        notify_min_severity=notify,
        digest_hour=hour,
        digest_roles=tuple(roles),
    )


def settings(app: Flask | None = None) -> Settings:
    """The app's checked triage settings; rebuilt when a setting changed since last time."""
    app = app or t.cast("LocalProxy[Flask]", current_app)._get_current_object()
    key = repr([app.config[name] for name in _SETTING_NAMES])
    cached = app.extensions.get("loyalty.triage")
    if cached is None or cached[0] != key:
        cached = (key, _build_settings(app.config))
        _check_themes(cached[1].rules, app.extensions.get(THEMES_KEY))
        app.extensions["loyalty.triage"] = cached
    return cached[1]


def _check_themes(rules: t.Iterable[flags.Rule], book: ThemeBook | None) -> None:
    """A theme rule names a theme of forms/themes.toml, or it would never fire."""
    if book is None:
        return
    for rule in rules:
        if rule.theme is not None and rule.theme not in book.ids:
            raise flags.RuleError(
                f"FLAG_RULES[{rule.name!r}]: theme {rule.theme!r} is not in the themes file "
                f"(one of {', '.join(book.ids)})"
            )
