"""``/admin/keys`` and ``/admin/webhooks``: what ``flask api-key`` and ``flask webhook`` do,
for admins without a shell, through the same service functions (which also audit).

Every change is a plain form POST (CSRF-checked app-wide) that redirects back, so the pages
work without JavaScript; a new key or a new webhook's secret is shown on the reply to its
POST only (never stored in clear, never in a redirect's session), with ``no-store`` so the
browser keeps no copy of that page either.
"""

from __future__ import annotations

import typing as t

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ..api import keys
from ..auth import role_required
from ..db import db
from ..models import ADMIN_ROLES, ApiKey, Webhook, WebhookDelivery
from ..outreach import webhooks
from . import confirm

bp = Blueprint("admin_integrations", __name__, url_prefix="/admin")
#: ids beyond PostgreSQL's integer are no row's: a 404, never a database error
MAX_ID = 2**31 - 1
#: deliveries shown per webhook
RECENT = 10
#: how much of a receiver's answer (or of the error) the page shows
ANSWER_SHOWN = 300

Page = tuple[str, int, dict[str, str]]


def _secret_page(html: str, status: int = 200) -> Page:
    """A page that may show a key or secret: no cache keeps it, no referrer carries off."""
    return html, status, {"Cache-Control": "no-store"}


# --- API keys ------------------------------------------------------------------------------


def _keys_page(status: int = 200, **values: t.Any) -> Page:
    html = render_template("admin/keys.html", keys=keys.all_keys(), **values)
    return _secret_page(html, status)


@bp.get("/keys")
@role_required(*ADMIN_ROLES)
def key_list():
    return _keys_page()


@bp.post("/keys")
@role_required(*ADMIN_ROLES)
def key_create():
    """Make a key and show it on this reply, once."""
    name = request.form.get("name", "")
    try:
        api_key, clear = keys.issue_key(name)
    except ValueError as exc:
        db.session.rollback()
        return _keys_page(400, message=f"The key was not made: {exc}.", name=name)
    db.session.commit()
    return _keys_page(new_key=clear, new_key_row=api_key)


@bp.get("/keys/<int:key_id>/revoke")
@role_required(*ADMIN_ROLES)
def key_revoke_confirm(key_id: int):
    """Ask before revoking: programs using the key are refused at once, for good."""
    api_key = db.session.get(ApiKey, key_id) if key_id <= MAX_ID else None
    if api_key is None:
        return _keys_page(404, message=f"There is no API key {key_id}.")
    if api_key.revoked_at is not None:
        flash(f"Key {api_key.id} ({api_key.name}) is revoked already.", "success")
        return redirect(url_for(".key_list") + f"#key-{api_key.id}", code=303)
    return confirm.page(
        title=f"Revoke key \u2018{api_key.name}\u2019?",
        consequence=f"Programs using it (key {api_key.id}, {api_key.prefix}\u2026) will get 401 "
        "at once. A revoked key cannot be brought back; a program needs a new key.",
        action=url_for(".key_revoke", key_id=api_key.id),
        cancel=url_for(".key_list") + f"#key-{api_key.id}",
        button="Revoke the key",
        headers={"Cache-Control": "no-store"},
    )


@bp.post("/keys/<int:key_id>/revoke")
@role_required(*ADMIN_ROLES)
def key_revoke(key_id: int):
    exists = key_id <= MAX_ID and db.session.get(ApiKey, key_id) is not None
    if not exists:
        return _keys_page(404, message=f"There is no API key {key_id}.")
    if not confirm.confirmed():
        return _keys_page(400, message=confirm.refusal("revoking a key"))
    api_key = t.cast(ApiKey, keys.revoke_key(str(key_id)))  # found just now, in this transaction
    db.session.commit()
    flash(f"Key {api_key.id} ({api_key.name}) is revoked: requests with it get 401.", "success")
    return redirect(url_for(".key_list") + f"#key-{api_key.id}", code=303)


# --- webhooks ------------------------------------------------------------------------------


def _webhooks_page(status: int = 200, **values: t.Any) -> Page:
    listed = webhooks.webhooks_with_counts()
    recent = {w.id: webhooks.recent_deliveries(w.id, RECENT) for w, _ in listed}
    html = render_template(
        "admin/webhooks.html",
        webhooks=listed,
        recent=recent,
        events=webhooks.EVENTS,
        shown=ANSWER_SHOWN,
        **values,
    )
    return _secret_page(html, status)


@bp.get("/webhooks")
@role_required(*ADMIN_ROLES)
def webhook_list():
    return _webhooks_page()


@bp.post("/webhooks")
@role_required(*ADMIN_ROLES)
def webhook_add():
    """Register a URL and show its signing secret on this reply, once."""
    url = request.form.get("url", "").strip()
    events = request.form.getlist("events")
    try:
        webhook = webhooks.register_webhook(url, events)
    except webhooks.WebhookError as exc:
        db.session.rollback()
        return _webhooks_page(
            400, message=f"The webhook was not added: {exc}.", url=url, chosen=events
        )
    db.session.commit()
    return _webhooks_page(new_webhook=webhook)


@bp.get("/webhooks/<int:webhook_id>/remove")
@role_required(*ADMIN_ROLES)
def webhook_remove_confirm(webhook_id: int):
    """Ask before switching a webhook off: its receiver hears nothing more."""
    webhook = db.session.get(Webhook, webhook_id) if webhook_id <= MAX_ID else None
    if webhook is None:
        return _webhooks_page(404, message=f"There is no webhook {webhook_id}.")
    if not webhook.active:
        flash(f"Webhook {webhook.id} is off already.", "success")
        return redirect(url_for(".webhook_list") + f"#webhook-{webhook.id}", code=303)
    return confirm.page(
        title=f"Remove webhook {webhook.id} ({webhook.url})?",
        consequence="Nothing more is sent to it from now on, and its deliveries still "
        "waiting fail. It cannot be switched on again here: add the URL anew (with a new "
        "secret) to send to it again.",
        action=url_for(".webhook_remove", webhook_id=webhook.id),
        cancel=url_for(".webhook_list") + f"#webhook-{webhook.id}",
        button="Remove the webhook",
        headers={"Cache-Control": "no-store"},
    )


@bp.post("/webhooks/<int:webhook_id>/remove")
@role_required(*ADMIN_ROLES)
def webhook_remove(webhook_id: int):
    exists = webhook_id <= MAX_ID and db.session.get(Webhook, webhook_id) is not None
    if not exists:
        return _webhooks_page(404, message=f"There is no webhook {webhook_id}.")
    if not confirm.confirmed():
        return _webhooks_page(400, message=confirm.refusal("removing a webhook"))
    webhook = t.cast(Webhook, webhooks.remove_webhook(webhook_id))  # found just now
    db.session.commit()
    flash(f"Webhook {webhook.id} is off: nothing more is sent to it.", "success")
    return redirect(url_for(".webhook_list") + f"#webhook-{webhook.id}", code=303)


def _tried(delivery: WebhookDelivery | None, what: str, missing: str):
    """Back to the list saying how a delivery tried by hand went."""
    if delivery is None:
        return _webhooks_page(404, message=missing)
    if delivery.status == "delivered":
        flash(f"{what} {delivery.id}: delivered (HTTP {delivery.last_status_code}).", "success")
    else:
        answer = (delivery.last_error or "")[:ANSWER_SHOWN]
        flash(f"{what} {delivery.id} failed: {answer}", "error")
    return redirect(url_for(".webhook_list") + f"#delivery-{delivery.id}", code=303)


@bp.post("/webhooks/<int:webhook_id>/test")
@role_required(*ADMIN_ROLES)
def webhook_test(webhook_id: int):
    """Post a test event now, as every delivery is posted, and say how it went."""
    try:
        delivery = webhooks.send_test(webhook_id) if webhook_id <= MAX_ID else None
    except webhooks.WebhookConflict as exc:
        return _webhooks_page(409, message=f"No test event was sent: {exc}.")
    return _tried(delivery, "Test delivery", f"There is no webhook {webhook_id}.")


@bp.post("/webhooks/deliveries/<int:delivery_id>/retry")
@role_required(*ADMIN_ROLES)
def delivery_retry(delivery_id: int):
    """Try one failed delivery once more, now."""
    try:
        delivery = webhooks.retry_delivery(delivery_id) if delivery_id <= MAX_ID else None
    except webhooks.WebhookConflict as exc:
        return _webhooks_page(409, message=f"Not retried: {exc}.")
    return _tried(delivery, "Delivery", f"There is no webhook delivery {delivery_id}.")
