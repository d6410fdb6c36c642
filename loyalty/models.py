"""Database models: who we ask (accounts, contacts), why (events), how (invitations),
what they said (responses, answers) and who works with it (users)."""

from __future__ import annotations

import datetime as dt
import secrets
import typing as t
from decimal import Decimal

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .db import Model
from .outreach.scheduling import EVENT_KINDS

SEGMENTS = ("b2b", "b2c")
LANGUAGES = ("da", "en")
ROLES = ("admin", "support", "executive")
#: The role sets, one definition each: who reads the staff pages, who acts on cases (assign,
#: note, contact, resolve), who administers. ``auth.role_required(*READ_ROLES)`` guards a view.
READ_ROLES = ROLES
ACT_ROLES = ("admin", "support")
ADMIN_ROLES = ("admin",)
INVITATION_STATES = ("scheduled", "sending", "sent", "failed", "skipped")
SENTIMENT_LABELS = ("negative", "neutral", "positive")
#: what an erased comment (or any erased text) reads: still a comment in every count, its
#: score kept, its words gone (and never scored again)
ERASED_TEXT = "[erased]"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator[dt.datetime]):
    """Stores UTC without a zone (SQLite has none) and always hands back aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: t.Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime; use an aware UTC datetime")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: t.Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


def _choice(name: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{name} IN ({quoted})", name=name)


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (_choice("role", ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: always in lower case (admin.staff.create_user), so the unique constraint ignores case
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the last daily digest of new and overdue cases sent to this user
    digest_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: part of every session cookie of this user; a new one on sign-out ends them all,
    #: copies of the old cookie included
    session_token: Mapped[str | None] = mapped_column(sa.String(43))

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:  # what Flask-Login keeps in the session cookie
        if not self.session_token:
            self.session_token = secrets.token_urlsafe(32)
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active


class Account(Model):
    """A B2C customer or a B2B company; B2B accounts have several contacts."""

    __tablename__ = "accounts"
    __table_args__ = (_choice("segment", SEGMENTS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    external_ref: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    segment: Mapped[str] = mapped_column(sa.String(3))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    annual_value: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2), default=Decimal(0))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the customer left; churned accounts leave the live views but keep their history
    churned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: today's health (0-100), its band and why (a JSON list of contributions), kept current
    #: by loyalty.accounts.rollup; empty until first computed
    health_score: Mapped[int | None] = mapped_column(sa.SmallInteger, index=True)
    health_band: Mapped[str | None] = mapped_column(sa.String(8))
    health_contributions: Mapped[str | None] = mapped_column(sa.Text)
    health_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: set when something the score reads changed (an answer, a case); the dispatcher's
    #: tick recomputes these accounts
    health_stale: Mapped[bool] = mapped_column(default=True, server_default=sa.true(), index=True)

    owner: Mapped[User | None] = relationship()
    contacts: Mapped[list[Contact]] = relationship(back_populates="account")


class Contact(Model):
    __tablename__ = "contacts"
    __table_args__ = (_choice("language", LANGUAGES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    language: Mapped[str] = mapped_column(sa.String(2))
    is_decision_maker: Mapped[bool] = mapped_column(default=False)
    unsubscribed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bounced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: set by a privacy request: personal data is gone and nothing is ever sent again
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship(back_populates="contacts")

    @property
    def unreachable_reason(self) -> str | None:
        """Why no survey may go to this contact, or None when one may."""
        if self.erased_at is not None:
            return "erased"
        if self.unsubscribed_at is not None:
            return "unsubscribed"
        if self.bounced_at is not None:
            return "bounced"
        return None

    @property
    def reachable(self) -> bool:
        return self.unreachable_reason is None


class Event(Model):
    """Something that happened to a customer (a sale, a delivery) and may trigger a survey."""

    __tablename__ = "events"
    __table_args__ = (_choice("kind", EVENT_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2))
    product: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[Account] = relationship()
    contact: Mapped[Contact | None] = relationship()


class Invitation(Model):
    """One survey sent to one contact; its link token is stored only as a hash."""

    __tablename__ = "invitations"
    __table_args__ = (
        _choice("status", INVITATION_STATES),
        sa.Index("ix_invitations_status_due_at", "status", "due_at"),
        # the rollups count each day's invitations, whatever their status
        sa.Index("ix_invitations_due_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(sa.ForeignKey("events.id"), index=True)
    survey: Mapped[str] = mapped_column(sa.String(64))
    #: random per invitation; the link token is derived from it with the secret key
    token_nonce: Mapped[str] = mapped_column(sa.String(64))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="scheduled")
    skip_reason: Mapped[str | None] = mapped_column(sa.String(64))
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: when a dispatcher took it; lets an operator see sends cut off mid-way
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: committed just before the SMTP transaction starts: a claim cut off without it sent
    #: nothing and goes back to the queue; with it, the email may have left
    send_began_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminder_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the one reminder falls due; set on sending, cleared when a dispatcher takes it
    reminder_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    reminder_attempts: Mapped[int] = mapped_column(default=0, server_default="0")

    contact: Mapped[Contact] = relationship()
    event: Mapped[Event | None] = relationship()
    response: Mapped[Response | None] = relationship(back_populates="invitation")

    def is_open(self, now: dt.datetime | None = None) -> bool:
        return link_is_open(self.status, self.expires_at, now)


def link_is_open(status: str, expires_at: dt.datetime, now: dt.datetime | None = None) -> bool:
    """Whether an invitation's link opens the survey: not skipped and not expired.

    A function of plain values, so pages that read an invitation's columns without loading
    the object (the survey page) apply the same rule.
    """
    return status != "skipped" and (now or utcnow()) < expires_at


class Response(Model):
    """A contact's answer to one invitation; updated in place when they change it.

    The headline metrics (NPS, CSAT, CES) are columns because every chart and rule reads
    them; every other answer, free text above all, is an :class:`Answer` row.
    """

    __tablename__ = "responses"
    #: a contact's answers in time order: "their next answer after …" (recovery) is a seek
    __table_args__ = (sa.Index("ix_responses_contact_submitted", "contact_id", "submitted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: empty for responses imported from another tool
    invitation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invitations.id"), unique=True)
    #: "survey" (answered here) or "import" (history brought from another tool)
    source: Mapped[str] = mapped_column(sa.String(16), default="survey")
    #: identifies an imported row, so importing the same file twice changes nothing
    import_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id"), index=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    survey: Mapped[str] = mapped_column(sa.String(64))
    survey_version: Mapped[int]
    language: Mapped[str] = mapped_column(sa.String(2))
    nps: Mapped[int | None] = mapped_column(sa.SmallInteger)
    csat: Mapped[int | None] = mapped_column(sa.SmallInteger)
    ces: Mapped[int | None] = mapped_column(sa.SmallInteger)
    #: False while only a score tapped in the email has been saved
    complete: Mapped[bool] = mapped_column(default=True)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    invitation: Mapped[Invitation | None] = relationship(back_populates="response")
    contact: Mapped[Contact] = relationship()
    account: Mapped[Account] = relationship()
    answers: Mapped[list[Answer]] = relationship(
        back_populates="response", cascade="all, delete-orphan", order_by="Answer.id"
    )


class Answer(Model):
    """One non-metric answer; free text carries its sentiment and the scorer's version."""

    __tablename__ = "answers"
    __table_args__ = (sa.UniqueConstraint("response_id", "question", name="response_question"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    response_id: Mapped[int] = mapped_column(sa.ForeignKey("responses.id"), index=True)
    question: Mapped[str] = mapped_column(sa.String(64))
    number: Mapped[int | None]
    text: Mapped[str | None] = mapped_column(sa.Text)
    #: indexed: the dashboard reads the period's most negative comments lowest first
    polarity: Mapped[float | None] = mapped_column(index=True)
    sentiment: Mapped[str | None] = mapped_column(sa.String(8))
    sentiment_language: Mapped[str | None] = mapped_column(sa.String(8))
    #: churn/escalation cues, comma-separated names ("cancel,refund")
    cues: Mapped[str | None] = mapped_column(sa.String(200))
    #: the themes, JSON: [{"id", "sentiment", "polarity", "words", "evidence"}] (answer_themes)
    themes: Mapped[str | None] = mapped_column(sa.Text)
    scorer_version: Mapped[int | None] = mapped_column(index=True)

    response: Mapped[Response] = relationship(back_populates="answers")


class ApiKey(Model):
    """A key other systems send as a bearer token; only its hash is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    #: the first characters of the key, shown to tell keys apart
    prefix: Mapped[str] = mapped_column(sa.String(12))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Webhook(Model):
    """An admin-registered URL that receives signed event notifications."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    #: shared secret for the HMAC signature; needed in clear to sign each delivery
    secret: Mapped[str] = mapped_column(sa.String(100))
    #: comma-separated event names, e.g. "response.created"
    events: Mapped[str] = mapped_column(sa.String(200), default="response.created")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


WEBHOOK_DELIVERY_STATES = ("pending", "delivered", "failed")


class WebhookDelivery(Model):
    """One event for one webhook, retried with backoff until delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        _choice("status", WEBHOOK_DELIVERY_STATES),
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id"), index=True)
    event: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status_code: Mapped[int | None]
    #: the start of the receiver's last answer, whatever its status (the admin page shows it)
    last_answer: Mapped[str | None] = mapped_column(sa.String(500))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    webhook: Mapped[Webhook] = relationship()


HEALTH_BANDS = ("healthy", "watch", "at_risk")
WARNING_KINDS = ("at_risk", "falling", "churn_cue", "silent")
WARNING_STATES = ("open", "acknowledged", "resolved")


class HealthSnapshot(Model):
    """An account's health at the end of one week, as it was known then."""

    __tablename__ = "health_snapshots"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "at", name="account_at"),
        _choice("band", HEALTH_BANDS),
        # the dashboard counts the accounts per band of a few weeks from this index alone
        sa.Index("ix_health_snapshots_at_band", "at", "band", "account_id"),
        # ... and the movers, each account's score at two weeks' ends, from this one
        sa.Index("ix_health_snapshots_at_score", "at", "account_id", "score", "band"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"), index=True)
    #: the end of the week (local midnight starting Monday, in UTC)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    score: Mapped[int] = mapped_column(sa.SmallInteger)
    band: Mapped[str] = mapped_column(sa.String(8))
    #: JSON list of {"signal", "points", "detail"}: why the score is what it is
    contributions: Mapped[str] = mapped_column(sa.Text)

    account: Mapped[Account] = relationship()


class HealthWarning(Model):
    """An early warning about an account: its kind, why in words, and what was done."""

    __tablename__ = "health_warnings"
    __table_args__ = (
        _choice("kind", WARNING_KINDS),
        _choice("status", WARNING_STATES),
        sa.Index("ix_health_warnings_account_kind_status", "account_id", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    #: JSON list of sentences ("NPS fell from +40 to -10 over 90 days")
    reasons: Mapped[str] = mapped_column(sa.Text)
    score: Mapped[int] = mapped_column(sa.SmallInteger)
    raised_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    note: Mapped[str | None] = mapped_column(sa.Text)
    acted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    acted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: when the owner was emailed (empty: not yet, or nobody to tell)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    account: Mapped[Account] = relationship()
    acted_by: Mapped[User | None] = relationship()


class LinkMiss(Model):
    """A request for a survey or unsubscribe link that opens nothing, by client address: a
    client with too many in a window is answered 429 (a table, so every gunicorn worker and
    every server counts the same misses). Rows older than the window are deleted."""

    __tablename__ = "link_misses"
    __table_args__ = (sa.Index("ix_link_misses_client_at", "client", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True, default=utcnow)


# The triage loop's tables and the dashboard's and reports' own tables live beside this
# module; every model is still imported from here.
from .case_tables import CASE_OUTCOMES as CASE_OUTCOMES  # noqa: E402
from .case_tables import CASE_STATES as CASE_STATES  # noqa: E402
from .case_tables import Case as Case  # noqa: E402
from .case_tables import CaseEvent as CaseEvent  # noqa: E402
from .case_tables import Flag as Flag  # noqa: E402
from .follow_up_tables import FollowUp as FollowUp  # noqa: E402
from .import_tables import ImportUpload as ImportUpload  # noqa: E402
from .privacy_tables import PrivacyRequest as PrivacyRequest  # noqa: E402
from .rollup_tables import HealthBandWeek as HealthBandWeek  # noqa: E402
from .rollup_tables import HealthStaleWeek as HealthStaleWeek  # noqa: E402
from .rollup_tables import MetricDay as MetricDay  # noqa: E402
from .rollup_tables import MetricDayTotal as MetricDayTotal  # noqa: E402
from .rollup_tables import MetricStaleDay as MetricStaleDay  # noqa: E402
from .rollup_tables import ReportDelivery as ReportDelivery  # noqa: E402
from .security_tables import AuditEvent as AuditEvent  # noqa: E402
from .security_tables import SignInFailure as SignInFailure  # noqa: E402
