"""Request bodies without a length: a chunked body over ``MAX_CONTENT_LENGTH`` is a 413.

Werkzeug caps a chunked body at the limit by reading only that much, so a form would be
parsed from the first 64 KiB and the rest dropped without a word: an answer stored cut
short. Here a chunked body is read first, up to one byte past the limit, before anything
(the CSRF check included) looks at the form; over it, the request is refused whole.
"""

from __future__ import annotations

import io
import typing as t

from flask import abort, request

if t.TYPE_CHECKING:
    from flask import Flask


def init_app(app: Flask) -> None:
    """Register before any other before-request function (call it before CSRF's)."""
    app.before_request(_read_chunked_body)


def _read_chunked_body() -> None:
    environ = request.environ
    if (
        environ.get("CONTENT_LENGTH")
        or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        return
    limit = request.max_content_length
    if limit is None:
        return
    stream, body = environ["wsgi.input"], bytearray()
    while len(body) <= limit:
        chunk = stream.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        abort(413)
    environ["wsgi.input"] = io.BytesIO(bytes(body))
    environ["CONTENT_LENGTH"] = str(len(body))
