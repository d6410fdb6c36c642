"""Destructive admin actions ask first: revoking an API key, removing a webhook,
deactivating a user, resetting a password.

The list's button opens a confirmation page (a GET, so nothing changes) that says what will
happen, with a Confirm button that POSTs the CSRF token and :data:`FIELD`, and Cancel back to
the list; no JavaScript. A POST without :data:`FIELD` (an old page, a stray script, a click
that skipped the question) changes nothing and gets a 400 that says why.
"""

from __future__ import annotations

from flask import render_template, request

#: the hidden field only the confirmation page's form sends
FIELD = "confirmed"
VALUE = "yes"


def confirmed() -> bool:
    """Whether this POST came from the confirmation page."""
    return request.form.get(FIELD) == VALUE


def refusal(what: str) -> str:
    """The 400's message when a POST skipped the confirmation."""
    return (
        f"Nothing was changed: {what} must be confirmed first. Use its button on this page, "
        "which asks before it does anything."
    )


def page(
    *,
    title: str,
    consequence: str,
    action: str,
    cancel: str,
    button: str,
    headers: dict[str, str] | None = None,
) -> tuple[str, int, dict[str, str]]:
    """The confirmation page: the question, what will happen, Confirm and Cancel."""
    html = render_template(
        "admin/confirm.html",
        title=title,
        consequence=consequence,
        action=action,
        cancel=cancel,
        button=button,
        field=FIELD,
        value=VALUE,
    )
    return html, 200, headers or {}
