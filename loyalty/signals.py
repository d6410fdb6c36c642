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

    Sent with the app as sender and ``response=`` (flushed, so it has an id), ``created=``
    (first save of this response) and ``now=``. Receivers add their rows to the same session
    (flag and case, webhook delivery), so an answer is never stored without them; they must
    not commit.
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
