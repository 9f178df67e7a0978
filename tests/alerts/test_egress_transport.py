"""How an allowed delivery travels: no redirect followed, the answer read only up to a cap,
TLS verified against the host name, and every failure told in words, never errno text."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts.egress import READ_CAP_BYTES
from alerts.models import AlertChannel, Delivery
from tests.alerts.receivers import CLAIMED_BYTES, closed_port, endless_answer, silent_port
from tests.conftest import World, login
from tests.httpcapture import capture_server

pytestmark = pytest.mark.usefixtures("loopback_receivers")


def _channel(world: World, target: str, kind: str = "webhook") -> AlertChannel:
    return AlertChannel.objects.create(
        tenant=world.tenant, name="hook", kind=kind, target=target, secret="s3cret"
    )


def _test_channel() -> str:
    """`test_channel acme hook`: what it prints, or the error it exits with."""
    out = StringIO()
    try:
        call_command("test_channel", "acme", "hook", stdout=out)
    except CommandError as refused:
        return str(refused)
    return out.getvalue()


def test_it_does_not_follow_a_redirect_and_says_so(world: World) -> None:
    with (
        capture_server() as elsewhere,
        capture_server(302, {"Location": f"{elsewhere.url}/internal"}) as receiver,
    ):
        _channel(world, f"{receiver.url}/hook")
        said = _test_channel()
    assert said == (
        "not delivered to 'hook': the receiver answered with a redirect (HTTP 302), not followed"
    )
    assert len(receiver.requests) == 1 and elsewhere.requests == []
    page = login("owner").get("/settings/").content.decode()
    assert "redirect (HTTP 302), not followed" in page


def test_it_reads_a_huge_answer_only_up_to_the_cap(world: World) -> None:
    with endless_answer() as receiver:
        _channel(world, receiver.url, "slack")
        started = time.monotonic()
        said = _test_channel()
        elapsed = time.monotonic() - started
        assert receiver.done.wait(10), "the receiver was still writing"
    assert said.endswith("sent to 'hook'\n")
    # Stopped after the cap: what the receiver managed to write is the cap plus the kernel's
    # socket buffers, a sliver of the gibibyte it announced.
    assert READ_CAP_BYTES <= receiver.written < CLAIMED_BYTES // 32
    assert elapsed < 5


def test_it_counts_an_answer_whose_body_stalls_as_delivered(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_DELIVERY_TIMEOUT_SECONDS = 1
    with endless_answer(stall=True) as receiver:
        _channel(world, receiver.url, "slack")
        started = time.monotonic()
        said = _test_channel()
        assert receiver.done.wait(10)
    # The 200 arrived, so the alert did: a body that stops coming does not make it a failure.
    assert said.endswith("sent to 'hook'\n") and time.monotonic() - started < 5


def test_it_says_connection_refused_in_words(world: World) -> None:
    _channel(world, f"http://127.0.0.1:{closed_port()}/hook")
    assert _test_channel() == "not delivered to 'hook': connection refused"
    delivery = Delivery.objects.for_tenant(world.tenant).get()
    assert (delivery.status, delivery.last_error) == ("failed", "connection refused")
    page = login("owner").get("/settings/").content.decode()
    assert "<td>connection refused</td>" in page and "Errno" not in page


def test_it_says_timed_out_in_words(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_DELIVERY_TIMEOUT_SECONDS = 1
    with silent_port() as port:
        _channel(world, f"http://127.0.0.1:{port}/hook")
        started = time.monotonic()
        said = _test_channel()
    assert said == "not delivered to 'hook': timed out"
    assert time.monotonic() - started < 5


def test_it_says_host_name_not_found_at_save_and_at_delivery(world: World) -> None:
    target = "http://costboard-receiver.invalid/hook"  # .invalid never resolves (RFC 2606)
    with pytest.raises(CommandError, match=r"^--target: Host name not found\.$"):
        call_command("add_channel", "acme", "hook", "--kind", "slack", "--target", target)
    _channel(world, target)
    assert _test_channel() == "not delivered to 'hook': host name not found"


def test_it_says_what_is_wrong_with_a_url_in_words(world: World) -> None:
    page = (
        login("owner")
        .post(
            "/settings/",
            {
                "action": "add_channel",
                "name": "hook",
                "kind": "slack",
                "target": "http://user:pw@hooks.example/x",
            },
        )
        .content.decode()
    )
    assert "A user name or password in the URL is not supported." in page
    for bad in (
        "http://8.8.8.8:99999/x",
        "http://8.8.8.8:0/x",
        "http://[::1/x",
        "http://8.8.8.8/a b",
    ):
        with pytest.raises(CommandError, match=r"^--target: Not a valid URL\.$"):
            call_command("add_channel", "acme", "hook", "--kind", "slack", "--target", bad)
    assert not AlertChannel.objects.for_tenant(world.tenant).exists()


@pytest.fixture
def localhost_cert(tmp_path: Path) -> str:
    """A self-signed certificate (with its key) for the name localhost only."""
    pem = tmp_path / "localhost.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(pem), "-out", str(pem)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(pem)


def test_it_verifies_tls_against_the_host_name_it_pinned(
    world: World, settings, localhost_cert: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_EGRESS_ALLOW = ["localhost", "127.0.0.1"]
    with capture_server(certfile=localhost_cert) as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        channel = _channel(world, by_name)
        assert _test_channel() == "not delivered to 'hook': TLS certificate not trusted"
        monkeypatch.setenv("SSL_CERT_FILE", localhost_cert)  # the operator trusts this CA
        assert _test_channel().endswith("sent to 'hook'\n")
        channel.target = receiver.url  # the same server by address: not the certificate's name
        channel.save()
        said = _test_channel()
    assert said == "not delivered to 'hook': TLS certificate does not match the host name"
    assert len(receiver.requests) == 1


def test_it_says_why_an_email_failed_in_words(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port()
    _channel(world, "ops@example.com", "email")
    assert _test_channel() == "not delivered to 'hook': mail server: connection refused"


def _refusing_smtp_server() -> tuple[int, threading.Thread]:
    """An SMTP server on 127.0.0.1 that answers every recipient 550, as a real one may."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines, listener:
            conn.sendall(b"220 test ESMTP\r\n")
            for line in lines:
                verb = line[:4].upper()
                if verb == b"RCPT":
                    conn.sendall(b"550 5.1.1 no such user\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_it_says_the_mail_server_refused_the_message(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    # smtplib's errors are OSErrors: a refusal was once told as "could not connect".
    port, server = _refusing_smtp_server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    _channel(world, "nobody@example.com", "email")
    assert _test_channel() == "not delivered to 'hook': the mail server refused the message"
    server.join(timeout=10)
