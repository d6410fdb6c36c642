"""A CSV file an admin uploaded at ``/admin/imports``, kept between its check and the
confirmation. Re-exported by :mod:`loyalty.models`, which holds every other model."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .db import Model, db, rowcount
from .models import UTCDateTime, utcnow


class ImportUpload(Model):
    """An uploaded file waiting for its "import" button.

    In the database rather than on one server's disk, so the confirmation may reach any app
    server; removed once imported, and any left unconfirmed go after ``UPLOAD_KEEP`` (it
    holds customers' names and addresses).
    """

    __tablename__ = "import_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: what the confirmation form names: random, so one admin cannot guess another's
    token: Mapped[str] = mapped_column(sa.String(43), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: the survey a "responses" file belongs to
    survey: Mapped[str | None] = mapped_column(sa.String(64))
    filename: Mapped[str] = mapped_column(sa.String(200))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    uploaded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


#: how long an unconfirmed upload is kept
UPLOAD_KEEP = dt.timedelta(hours=24)


def forget_old_uploads(now: dt.datetime | None = None) -> int:
    """Files never confirmed hold customers' data for nobody: they go after ``UPLOAD_KEEP``
    (at the next upload, and in each dispatcher pass); how many went. The caller commits."""
    old = ImportUpload.uploaded_at < (now or utcnow()) - UPLOAD_KEEP
    return rowcount(db.session.execute(sa.delete(ImportUpload).where(old)))
