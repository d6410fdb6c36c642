"""Mail messages and transports, against a real SMTP server on loopback."""

from __future__ import annotations

import pytest

from loyalty.mailer import (
    MailError,
    OutboxTransport,
    SMTPTransport,
    build_message,
    transport_from_url,
)


def message(**overrides):
    fields = dict(
        sender="Loyalty <loyalty@example.com>",
        to_name="Mette Hansen",
        to_email="mette@example.com",
        subject="Hej",
        text="Plain body",
        html="<p>HTML body</p>",
    )
    return build_message(**{**fields, **overrides})


@pytest.mark.parametrize(
    "name",
    ["Evil\r\nBcc: victim@example.com", "Evil\nBcc: victim@example.com", "Evil\x00\rX-Y: z"],
)
def test_names_cannot_inject_headers(name):
    msg = message(to_name=name, subject=f"Hi {name}")
    raw = msg.as_bytes()
    assert b"\nBcc:" not in raw and b"\nX-Y:" not in raw
    assert msg["Bcc"] is None
    assert "Evil" in str(msg["To"]) and str(msg["To"]).endswith("<mette@example.com>")


def test_message_has_text_and_html_parts_and_extra_headers():
    msg = message(headers={"Content-Language": "da", "List-Unsubscribe": "<http://x/u/1>"})
    assert msg["Content-Language"] == "da" and msg["List-Unsubscribe"] == "<http://x/u/1>"
    assert msg.get_body(("plain",)).get_content().strip() == "Plain body"
    assert msg.get_body(("html",)).get_content().strip() == "<p>HTML body</p>"
    assert msg["Message-ID"]


def test_smtp_transport_delivers(smtp_server):
    transport_from_url(smtp_server.url, "/tmp").send(message())
    assert smtp_server.messages[0]["Subject"] == "Hej"


def test_smtp_refusal_is_a_mail_error_with_the_servers_answer(smtp_server):
    smtp_server.refuse = "554 5.7.1 Rejected by policy"
    with pytest.raises(MailError, match="Rejected by policy"):
        transport_from_url(smtp_server.url, "/tmp").send(message())


def test_a_batch_shares_one_connection(smtp_server):
    with transport_from_url(smtp_server.url, "/tmp") as transport:
        for n in range(3):
            transport.send(message(subject=f"batch {n}"))
    transport.send(message(subject="alone 1"))  # outside a batch: a connection each
    transport.send(message(subject="alone 2"))
    assert [m["Subject"] for m in smtp_server.messages] == [
        "batch 0", "batch 1", "batch 2", "alone 1", "alone 2"
    ]  # fmt: skip
    assert len(set(smtp_server.peers[:3])) == 1 and len(set(smtp_server.peers)) == 3


def test_a_batch_opens_a_new_connection_after_the_limit_or_an_error(smtp_server):
    host, port = smtp_server.url.removeprefix("smtp://").split(":")
    with SMTPTransport(host, int(port), max_per_connection=2) as transport:
        for n in range(3):
            transport.send(message(subject=f"{n}"))
        smtp_server.refuse = "550 No such user"
        with pytest.raises(MailError, match="No such user"):
            transport.send(message(subject="refused"))
        smtp_server.refuse = None
        transport.send(message(subject="after"))
    assert [m["Subject"] for m in smtp_server.messages] == ["0", "1", "2", "after"]
    peers = smtp_server.peers
    assert peers[0] == peers[1] != peers[2] != peers[3]


def test_a_connection_the_server_dropped_is_opened_again():
    import time

    from aiosmtpd.controller import Controller
    from conftest import Collector, free_port

    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port(), timeout=0.3)
    controller.start()
    try:
        with SMTPTransport("127.0.0.1", controller.port) as transport:
            transport.send(message(subject="first"))
            time.sleep(0.6)  # the server closes the idle connection
            transport.send(message(subject="second"))
    finally:
        controller.stop()
    assert [m["Subject"] for m in collector.messages] == ["first", "second"]
    assert len(set(collector.peers)) == 2


def test_unreachable_server_is_a_mail_error():
    from conftest import free_port

    with pytest.raises(MailError):
        SMTPTransport("127.0.0.1", free_port(), timeout=2).send(message())


def test_outbox_writes_eml_files(tmp_path):
    transport = transport_from_url(f"outbox:{tmp_path / 'box'}", tmp_path)
    assert isinstance(transport, OutboxTransport)
    transport.send(message())
    (eml,) = (tmp_path / "box").glob("*.eml")
    assert b"Subject: Hej" in eml.read_bytes()


def test_outbox_defaults_to_instance_folder(tmp_path):
    assert transport_from_url("outbox:", tmp_path).folder == tmp_path / "outbox"


def test_smtp_url_options():
    transport = transport_from_url("smtp://user%40x:p%3Ass@mail.example.com:587?starttls=1", "/")
    assert (transport.host, transport.port) == ("mail.example.com", 587)
    assert (transport.username, transport.password, transport.starttls) == ("user@x", "p:ss", True)


@pytest.mark.parametrize("url", ["http://example.com", "smtp://", "nonsense"])
def test_bad_mail_url_is_a_clear_error(url):
    with pytest.raises(ValueError, match="LOYALTY_MAIL_URL"):
        transport_from_url(url, "/")


@pytest.mark.parametrize(
    "name",
    [
        "=?UTF-8?Q?Bob=0D=0ABcc:_evil@example.com?=",
        "=?UTF-8?B?Qm9iDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?=",
        "Bob =?utf-8?q?=0ABcc=3A_evil=40example=2Ecom?= Jensen",
        "=?bogus-charset?Q?Bob=0D=0ABcc:_evil@example.com?=",
        "A very long name " * 12 + "=?UTF-8?Q?=0D=0ABcc:_evil@example.com?=",
    ],
)
def test_an_encoded_word_cannot_add_a_header(name):
    from email import message_from_bytes, policy

    from loyalty.mailer import build_message

    built = build_message(
        sender="Loyalty <loyalty@localhost>",
        to_name=name,
        to_email="bob@example.com",
        subject=name,
        text="hello",
    )
    wire = built.as_bytes()
    head = wire.partition(b"\n\n")[0]
    assert b"\nBcc:" not in head and b"\nbcc:" not in head.lower()
    parsed = message_from_bytes(wire, policy=policy.default)
    assert "Bcc" not in parsed
    assert [a.addr_spec for a in parsed["To"].addresses] == ["bob@example.com"]
