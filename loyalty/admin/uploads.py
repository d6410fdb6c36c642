"""``/admin/imports``: a CSV file uploaded, checked whole and previewed before anything is
written, then imported on confirmation, by the same code as ``flask import``
(:mod:`loyalty.outreach.imports`: every bad row with its line and column, and then nothing;
a clean file in one transaction)."""

from __future__ import annotations

import secrets
import typing as t

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import bodies
from ..audit import log as audit_log
from ..auth import role_required
from ..db import db
from ..import_tables import UPLOAD_KEEP, forget_old_uploads
from ..models import ADMIN_ROLES, ImportUpload, utcnow
from ..outreach import imports
from ..outreach.import_rows import ImportFailed, read_csv
from ..specs import surveys

bp = Blueprint("admin_imports", __name__, url_prefix="/admin/imports")

KINDS = ("accounts", "contacts", "events", "responses")
#: rows of a clean file shown before the import
PREVIEW_ROWS = 20


def _kind(name: str, survey: str | None) -> imports.Kind:
    if name not in KINDS:
        raise ValueError(f"kind: must be one of {', '.join(KINDS)}")
    return imports.make_kind(name, survey=survey or None)


def _page(status: int = 200, **values: t.Any):
    survey_specs = surveys(current_app)
    columns = {name: _kind(name, next(iter(survey_specs), None)) for name in KINDS}
    return (
        render_template(
            "admin/imports.html",
            kinds=KINDS,
            columns=columns,
            surveys=survey_specs,
            max_mb=int(current_app.config["IMPORT_MAX_BYTES"]) // (1024 * 1024),
            **values,
        ),
        status,
    )


@bp.get("")
@role_required(*ADMIN_ROLES)
def index():
    return _page()


def _errors_page(exc: ImportFailed, **values: t.Any):
    db.session.rollback()
    return _page(422, errors=exc.errors, **values)


@bp.post("")
@role_required(*ADMIN_ROLES)
@bodies.large_body("IMPORT_MAX_BYTES")
def upload():
    """Check the file and show what it would do; nothing is imported yet."""
    kind_name, survey = request.form.get("kind", ""), request.form.get("survey", "")
    file = request.files.get("file")
    chosen: dict[str, t.Any] = {"kind": kind_name, "survey": survey}
    if file is None or not file.filename:
        return _page(400, message="file: choose a CSV file to upload", **chosen)
    try:
        kind = _kind(kind_name, survey if kind_name == "responses" else None)
    except ValueError as exc:
        return _page(400, message=str(exc), **chosen)
    # As the browser sent it, less what no database text takes (a NUL) or a page should show.
    filename = "".join(c for c in file.filename if c.isprintable())[-200:] or "upload.csv"
    data = file.read()
    try:
        items = imports.check(kind, data)
        if len(items) > int(current_app.config["IMPORT_MAX_ROWS"]):
            return _too_many(len(items), filename, chosen)
        outcome = imports.apply(kind, items, keep=False)
    except ImportFailed as exc:
        return _errors_page(exc, filename=filename, **chosen)
    forget_old_uploads()
    pending = ImportUpload(
        token=secrets.token_urlsafe(32),
        kind=kind_name,
        survey=survey if kind_name == "responses" else None,
        filename=filename,
        data=data,
        uploaded_by_id=current_user.id,
    )
    db.session.add(pending)
    db.session.commit()
    rows, _ = read_csv(data, kind.required, kind.optional)
    header = list(rows[0][1]) if rows else []
    return _page(
        pending=pending,
        outcome=outcome,
        header=header,
        rows=rows[:PREVIEW_ROWS],
        row_count=len(rows),
        **chosen,
    )


def _too_many(rows: int, filename: str, chosen: dict[str, t.Any]):
    """A page request must end within the server's timeout: a file this large is imported
    from the command line, which shows its progress and has no timeout."""
    limit = int(current_app.config["IMPORT_MAX_ROWS"])
    message = (
        f"{filename} has {rows:,} rows; a file uploaded here may have {limit:,}. Import it "
        f"with flask --app loyalty import {chosen['kind']} FILE, or split it."
    )
    return _page(413, message=message, **chosen)


def _pending_or_404(token: str) -> ImportUpload:
    pending = db.session.scalar(sa.select(ImportUpload).where(ImportUpload.token == token))
    if pending is None or pending.uploaded_at < utcnow() - UPLOAD_KEEP:
        abort(404)
    return pending


@bp.post("/<token>")
@role_required(*ADMIN_ROLES)
def confirm(token: str):
    """Import the checked file: checked once more (data may have changed since), then all
    of it in one transaction with its audit event, or none of it."""
    pending = _pending_or_404(token)
    kind_name, survey, filename = pending.kind, pending.survey, pending.filename
    try:
        kind = _kind(kind_name, survey)
        items = imports.check(kind, pending.data)
    except ValueError as exc:  # a survey removed from forms/ since the upload
        return _page(409, message=str(exc), kind=kind_name, survey=survey or "")
    except ImportFailed as exc:
        return _errors_page(exc, filename=filename, kind=kind_name, survey=survey or "")
    audit_log.record(
        f"import.{kind_name}", target=f"file:{filename[:80]}", detail={"rows": len(items)}
    )
    db.session.delete(pending)
    try:
        result = imports.apply(kind, items)  # commits the rows, the event and the deletion
    except ImportFailed as exc:
        return _errors_page(exc, filename=filename, kind=kind_name, survey=survey or "")
    flash(f"Imported {filename}: {result}")
    return redirect(url_for(".index"), 303)


@bp.post("/<token>/discard")
@role_required(*ADMIN_ROLES)
def discard(token: str):
    pending = _pending_or_404(token)
    db.session.delete(pending)
    db.session.commit()
    flash(f"{pending.filename} was not imported.")
    return redirect(url_for(".index"), 303)
