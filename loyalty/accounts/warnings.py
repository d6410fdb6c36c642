"""Early warnings: raised from a health assessment, resolved when their condition clears,
emailed to the account's owner once, and acknowledged or resolved by people with a note.

One open warning per account and kind. A warning raised today is also posted to other
systems as an ``account.warning`` webhook; one raised by a rebuild of history is not, and
nobody is emailed about it. Which warnings an assessment raises, and when one clears, is
the pure :mod:`.alarms`; this module stores, emails and acts on them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import typing as t

import sqlalchemy as sa

from .. import checks, emails
from ..db import db, rowcount
from ..mailer import MailError
from ..models import ACT_ROLES, Account, HealthWarning, User, utcnow
from ..outreach import webhooks
from . import alarms, health

#: Warnings older than this are history (a rebuild's): nobody is emailed about them now.
NOTIFY_WINDOW = dt.timedelta(days=2)
#: These are emailed to the owner at once; the others wait for the owner's daily digest.
AT_ONCE = ("at_risk", "churn_cue")
#: The digest lists the quieter warnings of the last week (a digest skipped on a holiday
#: still tells of them).
DIGEST_WINDOW = dt.timedelta(days=8)
log = logging.getLogger(__name__)


def raise_warnings(
    account_id: int,
    result: health.Health,
    at: dt.datetime,
    earlier: list[tuple[dt.datetime, int, str]],
    conf: t.Mapping[str, t.Any],
) -> list[HealthWarning]:
    """Raise what ``result`` warns of (one open warning per account and kind) and let open
    warnings whose condition has cleared resolve themselves."""
    open_ = {
        w.kind: w
        for w in db.session.scalars(
            sa.select(HealthWarning).where(
                HealthWarning.account_id == account_id,
                HealthWarning.raised_at <= at,  # as the moment saw it: a rebuild replays
                sa.or_(HealthWarning.status != "resolved", HealthWarning.acted_at > at),
            )
        )
    }
    for kind, warning in open_.items():
        if warning.raised_at < at and alarms.cleared(kind, result, conf):
            warning.status, warning.acted_at = "resolved", at
            warning.note = (warning.note + "\n" if warning.note else "") + "Cleared by itself."
    raised = []
    for alarm in alarms.warnings_for(result, at, earlier, conf):
        existing = open_.get(alarm.kind)
        if existing is not None and (existing.status != "resolved" or existing.acted_at == at):
            continue
        warning = HealthWarning(
            account_id=account_id,
            kind=alarm.kind,
            reasons=json.dumps(list(alarm.reasons), ensure_ascii=False),
            score=result.score,
            raised_at=at,
            status="open",
        )
        db.session.add(warning)
        raised.append(warning)
        if at >= utcnow() - NOTIFY_WINDOW:  # other systems hear of today's, not of history
            webhooks.enqueue(
                "account.warning",
                {
                    "account_id": account_id,
                    "kind": alarm.kind,
                    "reasons": list(alarm.reasons),
                    "score": result.score,
                    "raised_at": at.isoformat().replace("+00:00", "Z"),
                },
                now=at,
            )
    return raised


def warning_reasons(warning: HealthWarning) -> list[str]:
    try:
        value = json.loads(warning.reasons)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def notify_owners(*, now: dt.datetime | None = None) -> int:
    """Email each account's owner about its new open warnings, once (claimed first)."""
    now = now or utcnow()
    ids = list(
        db.session.scalars(
            sa.select(HealthWarning.id).where(
                HealthWarning.notified_at.is_(None),
                HealthWarning.status == "open",
                HealthWarning.kind.in_(AT_ONCE),
                HealthWarning.raised_at >= now - NOTIFY_WINDOW,
            )
        )
    )
    db.session.commit()
    sent = 0
    with emails.transport() as mail:
        for warning_id in ids:
            claimed = rowcount(
                db.session.execute(
                    sa.update(HealthWarning)
                    .where(HealthWarning.id == warning_id, HealthWarning.notified_at.is_(None))
                    .values(notified_at=now)
                )
            )
            db.session.commit()
            warning = db.session.get(HealthWarning, warning_id)
            if claimed != 1 or warning is None:
                continue
            account = warning.account
            owner = account.owner
            if owner is None or not owner.active:
                continue  # nobody to tell: the account page and the list show it
            try:
                mail.send(emails.health_warning(warning, account, owner, warning_reasons(warning)))
                sent += 1
            except MailError as exc:
                log.warning("warning %s: email to %s refused: %s", warning_id, owner.email, exc)
                warning.notified_at = None  # the next pass tries again
            db.session.commit()
    return sent


class WarningError(ValueError):
    """An action on a warning that cannot be done; the message says why, for the person."""


def for_digest(user: User, now: dt.datetime) -> list[HealthWarning]:
    """The quieter warnings (falling, silent) of ``user``'s accounts not told yet."""
    return list(
        db.session.scalars(
            sa.select(HealthWarning)
            .join(Account, Account.id == HealthWarning.account_id)
            .where(
                Account.owner_id == user.id,
                HealthWarning.status == "open",
                HealthWarning.notified_at.is_(None),
                HealthWarning.kind.not_in(AT_ONCE),
                HealthWarning.raised_at >= now - DIGEST_WINDOW,
            )
            .order_by(HealthWarning.score, HealthWarning.id)
            .limit(50)
        )
    )


def mark_told(warnings: list[HealthWarning], now: dt.datetime) -> None:
    for warning in warnings:
        warning.notified_at = now


def act_on_warning(
    warning: HealthWarning,
    actor: User,
    status: str,
    note: str,
    *,
    now: dt.datetime | None = None,
) -> None:
    """Acknowledge a warning (someone is on it) or resolve it, with a note; the caller commits."""
    if actor.role not in ACT_ROLES:
        raise WarningError("Only support and admin staff can act on warnings.")
    if status not in ("acknowledged", "resolved"):
        raise WarningError("Choose acknowledge or resolve.")
    if warning.status == "resolved":
        raise WarningError("The warning is resolved already.")
    text = (note or "").replace("\r\n", "\n").strip()
    if not text:
        raise WarningError("Please write a note: what was done, or what will be.")
    if len(text) > 5000 or not checks.is_free_text(text):
        raise WarningError("The note is at most 5000 characters, without control characters.")
    warning.status, warning.note = status, text
    warning.acted_by, warning.acted_at = actor, now or utcnow()
