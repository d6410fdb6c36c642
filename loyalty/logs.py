"""Log lines without link tokens: a survey or unsubscribe link is its customer's credential.

Every log line (the access log of gunicorn or of the development server, the app's error
log with its traceback) keeps only a token's first few characters, enough to match a line
to a complaint, never enough to open the link. Pure: gunicorn's logger class and the app
both use :class:`RedactTokens`.
"""

from __future__ import annotations

import logging
import re

#: How many characters of a token a log line keeps.
KEPT = 6
#: ``/s/<token>`` and ``/u/<token>`` anywhere in a line (a path, a request line, a Referer),
#: also percent-encoded; a token is everything up to the next ``/``, ``?``, ``#``, quote or space.
_LINK = re.compile(r"(/[su](?:/|%2[fF]))([^/?#\s\"'%]{" + str(KEPT) + r"})([^/?#\s\"']+)")


def redact(text: str) -> str:
    """``text`` with every link token cut to its first :data:`KEPT` characters and '…'."""
    return _LINK.sub(lambda m: f"{m[1]}{m[2]}…", text)


class RedactTokens(logging.Filter):
    """A filter that rewrites each record's message and traceback through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(*names: str) -> None:
    """Put the filter on each named logger (once, however often the app is built)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
