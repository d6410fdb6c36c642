"""API keys: made once and shown once, stored as a SHA-256 hash, revoked by id or prefix.

A key is 256 random bits, so a plain hash is enough to make a copy of the database useless
for calling the API; it is sent as ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa

from ..audit import log as audit_log
from ..checks import CheckError, one_line
from ..db import db
from ..models import ApiKey, utcnow

#: ``last_used_at`` is written at most this often, so a busy client does not make every
#: request a write.
TOUCH_EVERY = dt.timedelta(minutes=5)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(name: str) -> tuple[ApiKey, str]:
    """A new key; the clear key is returned once and never stored."""
    try:
        name = one_line(name, max_length=100)
    except CheckError:
        raise ValueError("name: 1 to 100 characters on one line") from None
    key = "loy_" + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, prefix=key[:12], key_hash=hash_key(key))
    db.session.add(api_key)
    return api_key, key


def issue_key(name: str) -> tuple[ApiKey, str]:
    """A new key, as the command and the admin page make it: recorded in the audit log by
    its name only (the caller commits, then shows the clear key this once)."""
    api_key, key = create_key(name)
    db.session.flush()
    audit_log.record(
        "api_key.create", target=f"api_key:{api_key.id}", detail={"name": api_key.name}
    )
    return api_key, key


def revoke_key(id_or_prefix: str) -> ApiKey | None:
    """Revoke a key by id or prefix and record it (the caller commits); a key revoked
    already stays as it was. None: no such key."""
    query = sa.select(ApiKey).where(ApiKey.prefix == id_or_prefix)
    if id_or_prefix.isdigit():
        if len(id_or_prefix) > 9:  # beyond any id stored (and PostgreSQL's integer)
            return None
        query = sa.select(ApiKey).where(ApiKey.id == int(id_or_prefix))
    api_key = db.session.scalar(query)
    if api_key is not None and api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        audit_log.record("api_key.revoke", target=f"api_key:{api_key.id}")
    return api_key


def all_keys() -> list[ApiKey]:
    return list(db.session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))


def authenticate(key: str, *, now: dt.datetime | None = None) -> ApiKey | None:
    """The live key ``key`` is, or None; notes when it was last used (and commits that)."""
    api_key = db.session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if api_key is None or api_key.revoked_at is not None:
        return None
    now = now or utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at > TOUCH_EVERY:
        api_key.last_used_at = now
        db.session.commit()
    return api_key
