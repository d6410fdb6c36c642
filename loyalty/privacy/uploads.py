"""A person in a CSV file an admin uploaded at ``/admin/imports`` and has not confirmed
yet: the file waits in ``import_uploads`` for up to a day (``UPLOAD_KEEP``), holding
customers' names and addresses, so a privacy request must find it there too.

Found by the person's address anywhere in the file's text, in any case. The export lists
each such file (its name, when and by whom it was uploaded) with the rows that mention
them; the erasure deletes the whole file (an upload is a draft of an import: the admin
uploads it again without the person, or with them once they ask to be included again).
"""

from __future__ import annotations

import csv
import io
import typing as t

import sqlalchemy as sa

from ..db import db
from ..models import ImportUpload, User


def _text(upload: ImportUpload) -> str:
    """The file's text; an upload passed its check, so it is UTF-8 (a byte that is not
    cannot hide an address)."""
    return bytes(upload.data).decode("utf-8-sig", errors="replace")


def uploads_about(email: str) -> list[ImportUpload]:
    """The pending uploads whose text holds the address, in any case, oldest first.

    Read in Python rather than matched in SQL: the file is stored as bytes, and there are
    only the few of one day."""
    needle = email.strip().lower()
    query = sa.select(ImportUpload).order_by(ImportUpload.uploaded_at, ImportUpload.id)
    return [u for u in db.session.scalars(query) if needle in _text(u).lower()]


def _rows_mentioning(text: str, needle: str) -> list[dict[str, t.Any]]:
    """Each row holding the address, with its line number and cells by column name (the
    header as written); a row the CSV reader cannot split is given whole."""
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    found: list[dict[str, t.Any]] = []
    try:
        header = next(reader, [])
        line = reader.line_num + 1
        for cells in reader:
            if any(needle in cell.lower() for cell in cells):
                found.append({"line": line, "cells": dict(zip(header, cells, strict=False))})
            line = reader.line_num + 1
    except csv.Error:
        lines = text.splitlines()
        found = [
            {"line": n, "text": lines[n - 1]}
            for n in range(1, len(lines) + 1)
            if needle in lines[n - 1].lower()
        ]
    return found


def export_uploads(email: str) -> list[dict[str, t.Any]]:
    """For the person's export: each pending upload that mentions them, and the rows."""
    needle = email.strip().lower()
    found = []
    for upload in uploads_about(email):
        by = db.session.get(User, upload.uploaded_by_id) if upload.uploaded_by_id else None
        found.append(
            {
                "file": upload.filename,
                "kind": upload.kind,
                "uploaded_at": upload.uploaded_at.isoformat().replace("+00:00", "Z"),
                "uploaded_by": by.email if by else None,
                "rows": _rows_mentioning(_text(upload), needle),
            }
        )
    return found


def erase_uploads(email: str) -> int:
    """Delete the pending uploads that mention the person (in the caller's transaction);
    how many."""
    found = uploads_about(email)
    for upload in found:
        db.session.delete(upload)
    return len(found)
