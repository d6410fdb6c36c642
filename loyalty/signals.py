"""The named events of the flow of data, each declared once with what it carries.

Modules that raise an event import it from here; who listens is decided in one place, the
ordered block of receivers in :func:`loyalty.create_app`, so a reader sees the whole way from
"answer saved" to "case opened" in one screen. Nothing of ours is imported here.
"""

from __future__ import annotations

from blinker import Namespace

_events = Namespace()

response_saved = _events.signal(
    "response-saved",
    doc="""A response was created or changed, inside the transaction that stores it.

    Sent with the app as sender and ``response_id=``, ``invitation_id=`` (None for an
    imported answer), ``created=`` (first save of this response), ``complete=`` and
    ``now=``: ids, not objects, because the first answer to a link is written without the
    ORM. Only what must be true the moment the answer is committed listens here (the
    invitation is answered and its reminder called off, so no dispatcher pass can remind
    someone who has answered); receivers add to the same session and must not commit.
    Everything else listens to ``response_committed``.
    """,
)

response_committed = _events.signal(
    "response-committed",
    doc="""A saved response's follow-ups are due: its answer is committed, the reply sent.

    Sent by the follow-up outbox (``loyalty.survey.follow_ups``), in a worker, the
    dispatcher's pass or the app's background thread, with the app as sender and
    ``response=``, ``created=`` (that save created the response) and ``now=`` (when the
    answer was saved). Receivers (flag and case, webhook deliveries, rollups, health) add
    their rows to the session; they must not commit: the transaction that stores their
    work also removes the outbox row, so the work is done once, or not at all and retried.
    The same response may be followed up again after a later change: receivers read the
    response as it is now.
    """,
)

dispatch_tick = _events.signal(
    "dispatch-tick",
    doc="""A dispatcher pass has ended (``flask dispatch`` and each turn of its loop).

    Sent with the app as sender and ``now=``, so periodic work (severe-case emails that did
    not go out, daily digests) runs wherever the dispatcher runs. Receivers commit their own
    work and must not raise: the invitations keep going out whatever happens in them.
    """,
)

account_changed = _events.signal(
    "account-changed",
    doc="""An account's owner or segment changed, inside the transaction that changes it.

    Sent with the app as sender and ``account=`` (flushed or not). Receivers that count by
    owner or segment (the metric rollups) mark the account's rows to be counted again; they
    must not commit.
    """,
)
