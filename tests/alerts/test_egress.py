"""Deliveries reach public internet addresses only. Every non-public form of an address is
refused at save (the settings page and `add_channel`) and at delivery (a row written past the
form, sent by the real worker, by "send test" and by `test_channel`), while a listener on
127.0.0.1 receives nothing; ALERT_EGRESS_ALLOW lets an operator's receivers through."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from alerts import egress
from alerts.models import AlertChannel, Delivery
from alerts.services import notify
from tests.conftest import World, login
from tests.httpcapture import capture_server
from tests.server import ROOT
from tests.worker import celery_worker, test_database_url, wait_until

# The machine's own name resolves to loopback here (/etc/hosts); kept only if it does.
_OWN_NAME = socket.gethostname()
_OWN_NAME_IS_LOCAL = not egress.is_public(
    egress.ipaddress.ip_address(socket.gethostbyname(_OWN_NAME))
)

# Every form of 127.0.0.1 and of "this machine" that a listener on 127.0.0.1 could answer.
LOOPBACK = [
    "127.0.0.1", "[::1]", "localhost", "LOCALHOST", "127.1", "2130706433", "0x7f.0.0.1",
    "0177.0.0.1", "0.0.0.0", "0",  # noqa: S104 - a target to refuse, not a bind
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[2002:7f00:1::]",
    "[64:ff9b::7f00:1]", "[::7f00:1]", "127.0.0.2", "[::]",
] + ([_OWN_NAME] if _OWN_NAME_IS_LOCAL else [])  # fmt: skip
# Private, link-local (cloud metadata), shared, unique-local, multicast, reserved, and their
# IPv4-mapped, 6to4 and NAT64 forms.
OTHER_NON_PUBLIC = [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "[fd00:ec2::254]", "[fe80::1]",
    "[fc00::1]", "[fec0::1]", "100.64.0.1", "224.0.0.1", "[ff02::1]", "[ff0e::1]", "240.0.0.1",
    "255.255.255.255", "[::ffff:169.254.169.254]", "[2002:a9fe:a9fe::]", "[64:ff9b::a9fe:a9fe]",
    "198.18.0.1", "192.0.2.1", "192.0.0.8", "[2001:db8::1]", "[::ffff:10.0.0.1]", "[2001::1]",
]  # fmt: skip
NON_PUBLIC = LOOPBACK + OTHER_NON_PUBLIC
KINDS = ["slack", "pagerduty", "webhook"]


def _url(host: str, port: int) -> str:
    return f"http://{host}:{port}/hook"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _direct(world: World, name: str, target: str, kind: str = "webhook") -> AlertChannel:
    """A channel row written past the form, as an older release or a database edit leaves it."""
    return AlertChannel.objects.create(
        tenant=world.tenant, name=name, kind=kind, target=target, secret="s3cret"
    )


def _settled(world: World) -> bool:
    return not Delivery.objects.for_tenant(world.tenant).filter(status="pending").exists()


@pytest.mark.parametrize("host", NON_PUBLIC)
def test_it_refuses_a_non_public_address_on_the_settings_page(world: World, host: str) -> None:
    with capture_server() as listener:
        page = (
            login("owner")
            .post(
                "/settings/",
                {
                    "action": "add_channel",
                    "name": "hook",
                    "kind": "webhook",
                    "target": _url(host, listener.port),
                    "secret": "s3cret",
                },
            )
            .content.decode()
        )
    # The error stands under the target field, between its input and the secret's.
    target_field = page[page.index('id="id_target"') : page.index('id="id_secret"')]
    assert "Address not allowed: alerts go only to public internet addresses" in target_field
    assert not AlertChannel.objects.for_tenant(world.tenant).exists()
    assert listener.requests == []


@pytest.mark.parametrize("host", NON_PUBLIC)
def test_it_refuses_a_non_public_address_in_add_channel(world: World, host: str) -> None:
    with pytest.raises(CommandError, match=r"^--target: Address not allowed"):
        run("add_channel", "acme", "ops", "--kind", "slack", "--target", _url(host, 8080))
    assert not AlertChannel.objects.for_tenant(world.tenant).exists()


def test_it_accepts_public_addresses_at_save(world: World) -> None:
    run("add_channel", "acme", "v4", "--kind", "slack", "--target", "https://8.8.8.8/services/T1")
    run("add_channel", "acme", "v6", "--kind", "webhook", "--target", "https://[2606:4700::1111]/h",
        "--secret", "s")  # fmt: skip
    names = AlertChannel.objects.for_tenant(world.tenant).values_list("name", flat=True)
    assert sorted(names) == ["v4", "v6"]


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_it_refuses_every_form_at_delivery_by_the_worker(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERT_EGRESS_ALLOW", raising=False)
    with capture_server() as listener, celery_worker():
        channels = [
            _direct(world, host, _url(host, listener.port), KINDS[i % 3])
            for i, host in enumerate(NON_PUBLIC)
        ]
        notify(world.tenant, channels, source="budget", title="Over budget", message="m",
               severity="critical")  # fmt: skip
        wait_until(lambda: _settled(world), timeout=60)
    outcomes = {
        d.channel.name: (d.status, d.attempts, d.last_error)
        for d in Delivery.objects.for_tenant(world.tenant).select_related("channel")
    }
    # Refused once and given up: retrying cannot make the address public.
    assert outcomes == {host: ("failed", 1, "address not allowed") for host in NON_PUBLIC}
    assert listener.requests == []


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_it_refuses_send_test_to_a_row_written_past_the_form(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALERT_EGRESS_ALLOW", raising=False)
    client = login("owner")
    with capture_server() as listener, celery_worker():
        for i, host in enumerate(LOOPBACK):
            channel = _direct(world, host, _url(host, listener.port), KINDS[i % 3])
            client.post("/settings/", {"action": "test_channel", "id": channel.pk})
        wait_until(lambda: _settled(world), timeout=60)
        page = client.get("/settings/").content.decode()
    failed = re.findall(
        r'<td class="delivery-failed">failed</td><td class="num">1</td><td>address not allowed</td>',
        page,
    )
    assert len(failed) == len(LOOPBACK)
    assert "Errno" not in page and "refused" not in page
    assert listener.requests == []


@pytest.mark.parametrize("host", LOOPBACK)
def test_it_refuses_test_channel_to_a_row_written_past_the_form(world: World, host: str) -> None:
    with capture_server() as listener:
        _direct(world, "direct", _url(host, listener.port), "slack")
        with pytest.raises(CommandError, match=r"^not delivered to 'direct': address not allowed$"):
            run("test_channel", "acme", "direct")
    assert listener.requests == []
    assert Delivery.objects.for_tenant(world.tenant).get().status == "failed"


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": test_database_url(), "SECRET_KEY": "test-only-key"}
    env.pop("ALERT_EGRESS_ALLOW", None)
    cmd = [sys.executable, "manage.py", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.django_db(transaction=True)
def test_it_exits_non_zero_and_says_why_when_an_address_is_refused(world: World) -> None:
    with capture_server() as listener:
        _direct(world, "direct", _url("127.1", listener.port))
        added = _manage("add_channel", "acme", "ops", "--kind", "webhook", "--target",
                        _url("localhost", listener.port), "--secret", "s")  # fmt: skip
        tested = _manage("test_channel", "acme", "direct")
    assert added.returncode == 1 and "--target: Address not allowed" in added.stderr
    assert tested.returncode == 1
    assert "not delivered to 'direct': address not allowed" in tested.stderr
    assert "Traceback" not in added.stderr + tested.stderr
    assert listener.requests == []


def test_it_lets_an_allowed_network_through_and_nothing_else(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_EGRESS_ALLOW = ["127.0.0.0/8"]
    with capture_server() as listener:
        run("add_channel", "acme", "onprem", "--kind", "webhook", "--target",
            f"{listener.url}/hook", "--secret", "s3cret")  # fmt: skip
        assert "sent to 'onprem'" in run("test_channel", "acme", "onprem")
        with pytest.raises(CommandError, match="Address not allowed"):
            run("add_channel", "acme", "meta", "--kind", "slack", "--target",
                "http://169.254.169.254/latest/meta-data/")  # fmt: skip
    (received,) = listener.requests
    assert received.path == "/hook" and received.json()["title"] == "Test alert for onprem"


def test_it_lets_an_allowed_host_name_through_by_name_only(world: World, settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALERT_EGRESS_ALLOW = ["LocalHost"]
    with capture_server() as listener:
        run("add_channel", "acme", "byname", "--kind", "slack", "--target",
            _url("localhost", listener.port))  # fmt: skip
        run("test_channel", "acme", "byname")
        # The name is allowed, not the address it has: the address itself stays refused.
        with pytest.raises(CommandError, match="Address not allowed"):
            run("add_channel", "acme", "bynumber", "--kind", "slack", "--target", listener.url)
    (received,) = listener.requests
    # Connected to the checked address, yet the request still names the host it was sent to.
    assert received.headers["Host"] == f"localhost:{listener.port}"


def test_it_sends_tests_only_for_its_own_tenants_channels(world: World) -> None:
    channel = _direct(world, "ops", "ops@example.com", "email")
    with pytest.raises(CommandError, match="channel 'ops' does not exist in globex"):
        run("test_channel", "globex", "ops")
    outsider = login("outsider").post("/settings/", {"action": "test_channel", "id": channel.pk})
    assert outsider.status_code == 404
    for role in ("member", "finance"):
        page = login(role).post("/settings/", {"action": "test_channel", "id": channel.pk})
        assert page.status_code == 403
    assert not Delivery.unscoped_all_tenants.exists()
    assert "sent to 'ops'" in run("test_channel", "acme", "ops")  # the owner's tenant: sent


def test_it_refuses_a_second_channel_of_the_same_name(world: World) -> None:
    run("add_channel", "acme", "ops", "--kind", "email", "--target", "ops@example.com")
    with pytest.raises(CommandError, match="--name: There is already a channel named 'ops'"):
        run("add_channel", "acme", "ops", "--kind", "email", "--target", "cfo@example.com")
    run("add_channel", "globex", "ops", "--kind", "email", "--target", "ops@globex.example")
    assert AlertChannel.objects.for_tenant(world.other_tenant).count() == 1
