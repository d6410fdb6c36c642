"""Failed sign-ins: slowing down, then a temporary lock, counted in the database.

Each failure is a row per key: the typed address (as a keyed hash, so an unknown address
counts and locks exactly like a real one, and a lock says nothing about whether the address
exists) and the client's address. Past ``SIGN_IN_SLOW_AFTER`` failures of one address each
further try waits a little longer before its answer; at ``SIGN_IN_LOCK_FAILURES`` of one
address, or ``SIGN_IN_LOCK_CLIENT_FAILURES`` from one client, within
``SIGN_IN_LOCK_MINUTES``, sign-in is refused for that address (or client) until the oldest
of those failures is older than the window, the right password included. Counted in the
database, every gunicorn worker and every app server sees the same count.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from .db import db
from .models import SignInFailure, utcnow

#: Longest pause before answering one failed sign-in, in seconds.
MAX_DELAY = 3.0


def keys(address_hint: str, client: str | None) -> tuple[str, str]:
    """The two counters a sign-in attempt touches: its typed address and its client."""
    return f"addr:{address_hint}", f"ip:{(client or 'unknown')[:64]}"


def _window() -> dt.timedelta:
    return dt.timedelta(minutes=float(current_app.config["SIGN_IN_LOCK_MINUTES"]))


def _limits() -> tuple[int, int]:
    conf = current_app.config
    return int(conf["SIGN_IN_LOCK_FAILURES"]), int(conf["SIGN_IN_LOCK_CLIENT_FAILURES"])


def _recent(key: str, now: dt.datetime) -> list[dt.datetime]:
    q = (
        sa.select(SignInFailure.at)
        .where(SignInFailure.key == key, SignInFailure.at > now - _window())
        .order_by(SignInFailure.at)
    )
    return list(db.session.scalars(q))


def locked_for(
    address: str, client: str, *, now: dt.datetime | None = None, counted: bool = False
) -> int:
    """Seconds until the address or the client may try again; 0 when not locked.
    ``counted``: the attempt asking is already counted (:func:`count_attempt`)."""
    now = now or utcnow()
    wait = 0.0
    for key, limit in zip((address, client), _limits(), strict=True):
        if limit <= 0:
            continue
        limit += counted
        recent = _recent(key, now)
        if len(recent) >= limit:
            # Free again once enough of these failures have left the window.
            freed_at = recent[len(recent) - limit] + _window()
            wait = max(wait, (freed_at - now).total_seconds())
    return math.ceil(wait) if wait > 0 else 0


def count_attempt(address: str, client: str, *, now: dt.datetime | None = None) -> Attempt:
    """Count the attempt as a failure for both keys before its password is checked, and
    commit that: attempts made at the same moment (several workers, several servers) each
    see the others, so no more than the limit ever get their password checked. A success
    takes its count back (:func:`succeeded`). Rows older than the window go here."""
    now = now or utcnow()
    db.session.execute(sa.delete(SignInFailure).where(SignInFailure.at <= now - _window()))
    rows = [SignInFailure(key=address, at=now), SignInFailure(key=client, at=now)]
    db.session.add_all(rows)
    db.session.commit()
    return Attempt(address, client, [row.id for row in rows], len(_recent(address, now)))


@dataclass(frozen=True)
class Attempt:
    address: str
    client: str
    row_ids: list[int]
    #: failures of the address in the window, this attempt included
    failures: int


def slow_down(failures: int) -> float:
    """Wait before answering the ``failures``-th failure of an address; returns the wait."""
    free = int(current_app.config["SIGN_IN_SLOW_AFTER"])
    delay = min(MAX_DELAY, 0.5 * (failures - free)) if failures > free else 0.0
    if delay > 0:
        time.sleep(delay)
    return delay


def succeeded(attempt: Attempt) -> None:
    """The address signed in: its count starts again; the client's earlier failures stay,
    only this attempt's count is taken back."""
    db.session.execute(
        sa.delete(SignInFailure).where(
            (SignInFailure.key == attempt.address) | SignInFailure.id.in_(attempt.row_ids)
        )
    )
