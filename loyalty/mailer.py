"""Outgoing mail: building safe messages and handing them to the configured transport.

``LOYALTY_MAIL_URL`` picks the transport: ``smtp://[user:password@]host[:port][?starttls=1]``
for a real server, or ``outbox:[folder]`` (the default) to write each message as an
``.eml`` file under ``instance/outbox/`` so a newcomer can read them without a server.
"""

from __future__ import annotations

import re
import smtplib
import ssl
import typing as t
import uuid
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from .checks import CONTROL

_CONTROL = re.compile(f"[{CONTROL}]+")


class MailError(Exception):
    """The transport refused a message; the text is the server's answer."""


def clean_header_text(value: str) -> str:
    """Collapse line breaks and control characters, which could otherwise inject headers.

    RFC 2047 encoded words (``=?UTF-8?Q?Bob=0D=0ABcc:...?=``) are decoded first: a mail
    library writing the header may decode them too, and their line breaks would then be real.
    """
    if "=?" in value:
        try:
            value = str(make_header(decode_header(value)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            value = value.replace("=?", "= ?")  # undecodable: never an encoded word again
    return _CONTROL.sub(" ", value).strip()


def build_message(
    *,
    sender: str,
    to_name: str,
    to_email: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: t.Mapping[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message; every header value is cleaned first."""
    message = EmailMessage()
    message["From"] = clean_header_text(sender)
    message["To"] = _recipient(clean_header_text(to_name), to_email)
    message["Subject"] = clean_header_text(subject)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    # After the body: setting content clears every Content-* header set before it.
    for name, value in (headers or {}).items():
        message[name] = clean_header_text(value)
    return message


def _recipient(name: str, address: str) -> Address:
    """The ``To`` address with as much of the display name as survives folding.

    CPython's email package can drop a long display name's quotes when it folds the header,
    and address-like text in the name then becomes a real recipient; so the header is
    written and read back, and the name shortened until exactly one address comes back.
    """
    username, _, domain = address.rpartition("@")
    for limit in (len(name), 60, 40, 20, 0):
        display = name if limit >= len(name) else (name[:limit].rstrip() + "…" if limit else "")
        header = Address(display, username, domain)
        probe = EmailMessage()
        probe["To"] = header
        parsed = message_from_bytes(probe.as_bytes(), policy=policy.default)
        if [a.addr_spec for a in parsed["To"].addresses] == [header.addr_spec]:
            return header
    return Address("", username, domain)


class Transport(t.Protocol):
    """Sends one message at a time; ``with transport:`` around a batch lets it reuse what it
    opened (an SMTP connection) until the block ends."""

    def send(self, message: EmailMessage) -> None: ...
    def __enter__(self) -> t.Self: ...
    def __exit__(self, *exc_info: object) -> None: ...


class OutboxTransport:
    """Writes messages into a folder, one ``.eml`` file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> t.Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}.eml"
        path.write_bytes(message.as_bytes())


class SMTPTransport:
    """Sends through an SMTP server, with STARTTLS and login when the URL asks for them.

    Outside a ``with`` block each message gets its own connection. Inside one, the
    connection stays open for the next message (checked with NOOP first, as servers drop
    idle ones), up to ``max_per_connection`` messages: connecting, STARTTLS and login cost
    more than sending. Any error closes it, so the next message starts clean.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30,
        max_per_connection: int = 100,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.username, self.password, self.starttls = username, password, starttls
        self.max_per_connection = max_per_connection
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._keep_open = False

    def __enter__(self) -> t.Self:
        self._keep_open = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._keep_open = False
        self._close()

    def send(self, message: EmailMessage) -> None:
        try:
            self._connection().send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            self._close()
            raise MailError(f"{type(exc).__name__}: {exc}") from exc
        self._sent_on_connection += 1
        if not self._keep_open or self._sent_on_connection >= self.max_per_connection:
            self._close()

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._close()
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            smtp.close()
            raise
        self._smtp, self._sent_on_connection = smtp, 0
        return smtp

    def _close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def outbox_folder(url: str, instance_path: str | Path) -> Path | None:
    """The folder an ``outbox:`` URL writes to; None for any other transport."""
    parts = urlsplit(url)
    if parts.scheme != "outbox":
        return None
    return Path(unquote(parts.path)) if parts.path else Path(instance_path) / "outbox"


def transport_from_url(url: str, instance_path: str | Path) -> Transport:
    """Parse ``LOYALTY_MAIL_URL`` into a transport; a bad URL fails with a clear message."""
    parts = urlsplit(url)
    folder = outbox_folder(url, instance_path)
    if folder is not None:
        return OutboxTransport(folder)
    if parts.scheme == "smtp":
        if not parts.hostname:
            raise ValueError(f"LOYALTY_MAIL_URL {url!r}: no host")
        options = parse_qs(parts.query)
        return SMTPTransport(
            parts.hostname,
            parts.port or 25,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=options.get("starttls", ["0"])[0].lower() in ("1", "true", "yes"),
            timeout=float(options.get("timeout", ["30"])[0]),
        )
    raise ValueError(f"LOYALTY_MAIL_URL {url!r}: scheme must be smtp: or outbox:")
