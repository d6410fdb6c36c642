"""Request bodies without a length: a chunked body over ``MAX_CONTENT_LENGTH`` is a 413.

Werkzeug caps a chunked body at the limit by reading only that much, so a form would be
parsed from the first 64 KiB and the rest dropped without a word: an answer stored cut
short. Here a chunked body is read first, up to one byte past the limit, before anything
(the CSRF check included) looks at the form; over it, the request is refused whole.
"""

from __future__ import annotations

import io
import typing as t

from flask import abort, current_app, request

if t.TYPE_CHECKING:
    from flask import Flask

V = t.TypeVar("V", bound=t.Callable[..., t.Any])

#: the most of an upload's body parsed at once (see ``_raise_limit_for_uploads``)
UPLOAD_PARSE_BUFFER = 1024 * 1024


def init_app(app: Flask) -> None:
    """Register before any other before-request function (call it before CSRF's)."""
    app.before_request(_raise_limit_for_uploads)
    app.before_request(_read_chunked_body)


def large_body(setting: str) -> t.Callable[[V], V]:
    """Mark a view that takes a file upload: its body may be as large as the setting says
    (an admin's CSV), while every other request keeps ``MAX_CONTENT_LENGTH``."""

    def mark(view: V) -> V:
        view.body_limit_setting = setting  # type: ignore[attr-defined]
        return view

    return mark


def _raise_limit_for_uploads() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    setting = getattr(view, "body_limit_setting", None)
    if setting:
        request.max_content_length = int(current_app.config[setting])
        # Werkzeug holds up to this much of a multipart body unparsed at a time, file parts
        # included: the form's small limit would refuse any file over it.
        request.max_form_memory_size = max(
            UPLOAD_PARSE_BUFFER, int(current_app.config["MAX_FORM_MEMORY_SIZE"])
        )


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
