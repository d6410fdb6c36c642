"""``/admin/privacy``: an admin serves a person's privacy request by their address: the
export as a JSON download, or the erasure, confirmed by typing the address again; and the
requests served so far (the receipts, with no personal data)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, Response, render_template, request
from flask_login import current_user

from ..auth import role_required
from ..db import db
from ..models import ADMIN_ROLES, PrivacyRequest
from . import requests

bp = Blueprint("privacy", __name__)
SHOWN = 50


def _page(status: int = 200, **values: object) -> tuple[str, int]:
    served = db.session.scalars(
        sa.select(PrivacyRequest).order_by(PrivacyRequest.id.desc()).limit(SHOWN)
    ).all()
    counts = {r.id: json.loads(r.counts) for r in served}
    return render_template("privacy/index.html", served=served, counts=counts, **values), status


@bp.get("/admin/privacy")
@role_required(*ADMIN_ROLES)
def index():
    return _page()


@bp.post("/admin/privacy/export")
@role_required(*ADMIN_ROLES)
def export():
    """Everything held about the person, downloaded as one JSON file."""
    email = request.form.get("email", "")
    try:
        contact = requests.find_person(email)
    except requests.PrivacyError as exc:
        return _page(400, message=str(exc), email=email)
    document = requests.export(contact, actor=current_user, via="admin")
    body = json.dumps(document, ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="privacy-export-{contact.id}.json"'},
    )


@bp.post("/admin/privacy/erase")
@role_required(*ADMIN_ROLES)
def erase():
    """Erase the person everywhere, once the address was typed twice alike."""
    email, again = request.form.get("email", ""), request.form.get("confirm", "")
    try:
        contact = requests.find_person(email)
    except requests.PrivacyError as exc:
        return _page(400, message=str(exc), email=email)
    if again.strip().lower() != contact.email:
        return _page(
            400, message="Type the address a second time to confirm the erasure.", email=email
        )
    receipt = requests.erase(contact, actor=current_user, via="admin")
    return _page(receipt=requests.receipt_text(receipt))
